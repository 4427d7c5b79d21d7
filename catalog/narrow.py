"""The resources table narrowed by facet values, answered by the full-text index.

A search narrowed by a topic (``?_search=ill&_topic=borrowing``) is, in Datasette's SQL,
``where id in (select resource_id from resource_tags where ...) and rowid in (select rowid
from resources_fts where resources_fts match escape_fts(:search))``: on a million resources
it looks up every match of the search (a word of the catalog is in 10-94% of them) to test
the filter, for its count, its first page and its facets, 0.2-1.5 s each. The full-text
index also holds each resource's type, organization, source, topics and systems as tokens
(pipeline/ftsfacets.py, migration m2201), so the same rows are one full-text query,
``("ill") AND "iht…0"``, which the index answers by merging its lists of rows in C.

:func:`fold` rewrites such a query into that form: the filters Datasette and illhub add for
a facet value (``content_type=``, ``organization=``, ``source_id=``: ``"column" = :p0``;
``_topic=``, ``_system=``: :func:`catalog.facets.tag_filters`), when they are all the query
has beside the search, become tokens of the full-text query (the parameter
:data:`TOKENS_PARAM`). The rows are the same: the triggers keep the index in step with the
resources. The folded query is then a plain search to :mod:`catalog.search` (its count from
the index, its first page by walking the ``published`` index, its facets from a sample of
the newest matches when there are more than ``FACET_SAMPLE``, and the page says so).

A table narrowed with no search (``?_topic=borrowing``, ``?organization=...``) is folded
too, for its count and its first page: on a million resources the first page of a topic
walked ``resource_tags`` for 0.3 s, of an organization looked up some 3,000 resources of the
``published`` index for 25-60 ms, against about 5 ms each from the index's list. Its facets
stay exact (:func:`catalog.facetcache.folded_search` folds only a search's; the warmer
precomputes those of the large selections).
"""

from __future__ import annotations

import re

from pipeline.ftsfacets import exact, token

#: The parameter that carries the facet values' tokens, as a full-text query.
TOKENS_PARAM = "illhub_fts"

_FTS_CLAUSE = (r"rowid in \(select rowid from resources_fts where resources_fts match "
               r"(?P<match>escape_fts\(:search\)|:search)\)")
_VALUE_CLAUSE = re.compile(r'"(?P<col>content_type|organization|source_id)" = :(?P<p>p\d+)')
_TAG_CLAUSE = re.compile(r"id in \(select resource_id from resource_tags where col = '(?P<col>topics|systems)' "
                         r"and value = :(?P<p>illhub_(?:topic|system)\d+)\)")
_QUERY = re.compile(r"^(?P<head>select .+? from resources where )(?P<where>.+?)"
                    r"(?P<tail>(?: order by [^()]+ limit \d+)?)\s*$", re.DOTALL)


def _filters(where: str, params: dict) -> tuple[list[tuple[str, str]], str | None] | None:
    """The (column, value) filters of ``where`` and its full-text match (None when it has
    none), or None when ``where`` holds anything else."""
    found: list[tuple[str, str]] = []
    match = None
    rest = where
    while rest:
        m = _VALUE_CLAUSE.match(rest) or _TAG_CLAUSE.match(rest)
        if m:
            value = params.get(m["p"])
            if not isinstance(value, str):
                return None
            found.append((m["col"], value))
        else:
            m = re.match(_FTS_CLAUSE, rest)
            if m is None or match is not None:
                return None
            match = m["match"]
        rest = rest[m.end():]
        if rest.startswith(" and "):
            rest = rest[5:]
        elif rest:
            return None
    return found, match


def _grouped(query: str) -> bool:
    """Whether a raw full-text query stays one group inside ``( ... )``: its strings end and
    its parentheses close in order. ``nothing) OR (rapido``, which FTS5 refuses, would
    otherwise become ``(nothing) OR (rapido) AND "iht…0"``: rows without the facet value.
    Nor a special query (``*reads``: FTS5's own statistics, no resource) is one."""
    if query.lstrip().startswith("*"):
        return False
    depth, i = 0, 0
    while i < len(query):
        if query[i] == '"':  # a string, where "" is a quote
            while True:
                i = query.find('"', i + 1)
                if i < 0:
                    return False
                if query[i + 1:i + 2] != '"':
                    break
                i += 1
        elif query[i] in "()":
            depth += 1 if query[i] == "(" else -1
            if depth < 0:
                return False
        i += 1
    return depth == 0


def fold(sql: str, params) -> tuple[str, dict] | None:
    """``sql`` (a query of the resources table: a count, a page, a facet's inner query) with
    its facet-value filters folded into one full-text query, and its parameters; None when
    it is not such a query."""
    if not isinstance(params, dict):
        return None
    m = _QUERY.match(sql)
    if m is None:
        return None
    parsed = _filters(m["where"], params)
    if parsed is None or not parsed[0]:
        return None
    found, match = parsed
    if not all(exact(col, value) for col, value in found):
        return None  # a value too long for its token to be its own: Datasette's query
    if match == ":search" and not (isinstance(params.get("search"), str) and _grouped(params["search"])):
        return None  # a raw search that is not one group: Datasette's own query (and error)
    used = set(re.findall(r":(\w+)", m["where"]))
    if set(params) != used:
        return None  # a parameter the filters do not explain: leave the query alone
    tokens = " AND ".join(f'"{token(col, value)}"' for col, value in found)
    folded = f":{TOKENS_PARAM}" if match is None else f"'(' || {match} || ') AND ' || :{TOKENS_PARAM}"
    where = f"rowid in (select rowid from resources_fts where resources_fts match {folded})"
    new_params = {TOKENS_PARAM: tokens, **({"search": params["search"]} if match else {})}
    return m["head"] + where + m["tail"], new_params


def has_tokens(conn) -> bool:
    """Whether the catalog's full-text index holds the facet tokens (migration m2201)."""
    row = conn.execute("select sql from sqlite_master where name = 'resources_fts'").fetchone()
    return bool(row and re.search(r"\bfacets\b", row[0] or ""))

