"""Pages after the first of a table sorted newest first, answered through an index.

Datasette 0.65 pages with keys (``?_next=``): the page after a row whose sort value is ``v``
and key ``k`` is ``where ... (c < v or c is null or (c = v and id > k)) order by c desc, id``.
The ``or c is null`` (rows without a value sort last, newest first) keeps SQLite from using
the index on ``c`` as a range: it reads the whole table, or every row newer than ``v``, for
each page. On 200,000 resources page 2 of the default sort cost 0.5 s where page 1 cost
14 ms, and a full CSV stream, 200 pages of 1,000, some 950 s of CPU.

:func:`install` routes a database's queries through :func:`split_next_page`, which answers
that shape as the two queries it is the union of, in order:

1. the rows with a value: ``... and c <= v and (c < v or (c = v and id > k))`` — a range of
   the index on ``c``, read newest first from ``v``, a page long;
2. only when (1) falls short of a page, the rows without one: ``... and c is null``.

The rows, their order and the page are the same; each page reads about a page of the index.
(The catalog's index on ``published`` is on ``(published desc, id)``, the whole order:
migration m2101.)

The first page is ordered by the sort column alone (``order by c desc``), while the next
pages assume that rows with the same value come in key order: rows sharing a value across
the end of page 1 were repeated on page 2 and others never shown (3 of 20,000 resources in
a full walk). :func:`first_page_order` adds the key to the first page's order, as Datasette
does for the next ones. :func:`without_next` gives a facet the page's query without the
``_next`` condition, so a facet counts the same rows on page 2 as on page 1 (and its counts
are kept once for all).
"""

from __future__ import annotations

import re
from typing import Any

from datasette.database import Results

_NAME = r"(?:\[[^\]]+\]|\w+)"
#: Datasette 0.65's page after a row with a value, newest first (views/table.py).
NEXT_DESC = re.compile(
    rf"^select (?P<cols>.+?) from (?P<table>{_NAME}) where (?P<where>.*?)"
    rf"\((?P<col>{_NAME}) < :(?P<p>p\d+) or (?P=col) is null or \((?P=col) = :(?P=p) and (?P<key>.+)\)\) "
    rf"order by (?P=col) desc, (?P<pks>.+?) limit (?P<limit>\d+)\s*$",
    re.DOTALL,
)
#: The ``_next`` conditions Datasette adds, in every shape (by key only; after a value, newest
#: first or oldest first; after a row without a value, either way).
_KEY = r"(?:rowid > :p\d+|\(.*\))"
NEXT_CLAUSE = re.compile(
    rf"^(?:{_KEY}"
    rf"|\((?P<c1>{_NAME}) < :(?P<p1>p\d+) or (?P=c1) is null or \((?P=c1) = :(?P=p1) and {_KEY}\)\)"
    rf"|\((?P<c2>{_NAME}) > :(?P<p2>p\d+) or \((?P=c2) = :(?P=p2) and {_KEY}\)\)"
    rf"|\((?P<c3>{_NAME}) is null and {_KEY}\)"
    rf"|\((?P<c4>{_NAME}) is not null or \((?P=c4) is null and {_KEY}\)\))$",
    re.DOTALL,
)
_PARAM = re.compile(r":(p\d+)\b")
#: Datasette 0.65's first page of a sorted table (views/table.py): the sort column alone.
FIRST_PAGE = re.compile(
    rf"^(?P<head>select .+? from (?P<table>{_NAME}) (?:where .* )?)order by (?P<col>{_NAME})(?P<desc> desc)? "
    rf"limit (?P<limit>\d+)\s*$",
    re.DOTALL,
)


def split_next_page(sql: str) -> tuple[str, str, int] | None:
    """(rows with a value, rows without, page length) for Datasette's page after a row with a
    value newest first; None for any other query."""
    m = NEXT_DESC.match(sql)
    if m is None:
        return None
    head = f"select {m['cols']} from {m['table']} where {m['where']}"
    col, p, order = m["col"], m["p"], f"order by {m['col']} desc, {m['pks']} limit {m['limit']}"
    valued = f"{head}{col} <= :{p} and ({col} < :{p} or ({col} = :{p} and {m['key']})) {order}"
    unvalued = f"{head}{col} is null {order}"
    return valued, unvalued, int(m["limit"])


def first_page_order(sql: str, keys: list[str] | None) -> str | None:
    """The first page of a sorted table ordered by the sort column and then the table's
    ``keys`` (None: not that shape, or no keys known)."""
    m = FIRST_PAGE.match(sql)
    if m is None or not keys or m["col"] in keys:
        return None
    return f"{m['head']}order by {m['col']}{m['desc'] or ''}, {', '.join(keys)} limit {m['limit']}"


async def _keys(db, cache: dict[str, list[str] | None], sql: str) -> list[str] | None:
    """The keys Datasette pages a table by (its primary key, else rowid; None for a view)."""
    m = FIRST_PAGE.match(sql)
    if m is None:
        return None
    table = m["table"].strip("[]")
    if table not in cache:
        if not await db.table_exists(table):
            cache[table] = None
        else:
            pks = await db.primary_keys(table)
            cache[table] = [f"[{k}]" if not re.fullmatch(r"\w+", k) else k for k in pks] or ["rowid"]
    return cache[table]


def install(db) -> bool:
    """Route ``db``'s queries through :func:`first_page_order` and :func:`split_next_page`
    (once)."""
    if getattr(db, "_illhub_keyset", False):
        return False
    original = db.execute
    keys: dict[str, list[str] | None] = {}

    async def execute(sql, params=None, **kwargs):
        split = split_next_page(sql) if isinstance(sql, str) else None
        if split is None:
            ordered = first_page_order(sql, await _keys(db, keys, sql)) if isinstance(sql, str) else None
            return await original(ordered or sql, params, **kwargs)
        valued, unvalued, limit = split
        first = await original(valued, params, **kwargs)
        rows = list(first.rows)
        if len(rows) < limit:
            rest = await original(unvalued, params, **kwargs)
            rows += list(rest.rows)[: limit - len(rows)]
        return Results(rows, first.truncated, first.description)

    db.execute = execute
    db._illhub_keyset = True
    return True


def _top_level_and(where: str) -> list[str]:
    """A WHERE clause's conditions joined by ``and`` at the top level (not inside parentheses
    or quotes)."""
    parts, depth, quote, start, i = [], 0, None, 0, 0
    while i < len(where):
        c = where[i]
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and where.startswith(" and ", i):
            parts.append(where[start:i])
            start = i + 5
            i += 5
            continue
        i += 1
    parts.append(where[start:])
    return parts


def without_next(sql: str, params: Any, request: Any) -> tuple[str, Any]:
    """A table page's SQL (``select ... from t where ...``, as Datasette gives its facets)
    without the ``_next`` condition, and the parameters without its values: the rows of
    every page of the table, as on its first page."""
    if request is None or "_next" not in request.args or not isinstance(params, dict):
        return sql, params
    head, sep, where = sql.partition(" where ")
    if not sep:
        return sql, params
    clauses = _top_level_and(where.rstrip())
    if not NEXT_CLAUSE.match(clauses[-1].strip()):
        return sql, params
    kept = clauses[:-1]
    new_sql = f"{head} where {' and '.join(kept)} " if kept else f"{head} "
    used = set(_PARAM.findall(new_sql))
    dropped = set(_PARAM.findall(clauses[-1])) - used
    return new_sql, {k: v for k, v in params.items() if k not in dropped}
