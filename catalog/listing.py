"""The hub's lists of resources: one query builder behind the browse and search page, the topic,
system and source pages, their feeds and their downloads.

A list is narrowed by what the URL asks (:class:`ListArgs`: words, a topic, a system, a type,
an organization, a source, a date range or a quick choice of one) and sorted newest first,
oldest first, by title or by relevance. Words go through :mod:`catalog.wording` first: each
concept is one clause (its phrases in the full-text index, or its topic, system or type), and
a resource matches when it matches every clause; when none does, the list falls back to any
clause, ranked by how many it matches. Topics and systems are looked up in ``resource_tags``
and sources in ``resource_sources`` (indexed), never by parsing JSON. How a list is answered
on a large catalog without reading every match (exactly, driven by its rarest word, or counted
and ranked among the newest resources, said so in the page) is :mod:`catalog.listplan`'s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from catalog import listplan, wording

#: Sort choices: (label, ORDER BY).
SORTS = {
    # (published desc, id) is the index's own order (NULLs last): the first page reads ~25 rows of it
    "newest": ("Newest first", "r.published desc, r.id"),
    "oldest": ("Oldest first", "r.published is null, r.published, r.id"),
    "title": ("Title (A–Z)", "r.title collate nocase, r.id"),
    "relevance": ("Best match", None),
}
#: Quick date choices: (label, days back).
WHEN = {"week": ("This week", 7), "month": ("This month", 31), "year": ("This year", 366)}
#: The query parameters a list understands, in the order its links write them.
PARAMS = ("q", "topic", "system", "type", "organization", "source", "when", "since", "until", "added", "sort")
PAGE_SIZE = 25
#: The deepest page offered (deeper lists are narrowed instead).
MAX_PAGE = 40


def _date(value: str) -> str | None:
    """An ISO date (``2026-01-31``) or None when the value is not one."""
    try:
        return datetime.strptime(value.strip()[:10], "%Y-%m-%d").date().isoformat()
    except ValueError:
        return None


@dataclass(frozen=True)
class ListArgs:
    q: str = ""
    topic: str = ""
    system: str = ""
    type: str = ""
    organization: str = ""
    source: str = ""
    when: str = ""
    since: str = ""
    until: str = ""
    added: str = ""
    sort: str = ""
    page: int = 1
    #: what the page itself fixes (a topic page's topic): kept out of its links' "remove" choices
    fixed: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_request(cls, args: Any, **fixed: str) -> ListArgs:
        values = {p: (args.get(p) or "").strip()[:200] for p in PARAMS}
        values.update({k: v for k, v in fixed.items() if v})
        for d in ("since", "until"):
            values[d] = _date(values[d]) or "" if values[d] else ""
        if values["when"] not in WHEN:
            values["when"] = ""
        if values["added"] not in WHEN:
            values["added"] = ""
        if values["sort"] not in SORTS:
            values["sort"] = ""
        try:
            page = max(1, min(MAX_PAGE, int(args.get("page") or 1)))
        except ValueError:
            page = 1
        return cls(**values, page=page, fixed=tuple(k for k, v in fixed.items() if v))

    @property
    def order(self) -> str:
        return self.sort or ("relevance" if self.q else "newest")

    def query(self, **changes: Any) -> str:
        """The list's query string with ``changes`` (None or "" removes a parameter; the page
        goes back to 1 unless given)."""
        changed = replace(self, **{k: (v or "") for k, v in changes.items() if k != "page"})
        page = changes.get("page", 1)
        pairs = [(p, getattr(changed, p)) for p in PARAMS if getattr(changed, p) and p not in self.fixed]
        if page and page > 1:
            pairs.append(("page", page))
        return urlencode(pairs)

    def narrowed_beyond_tags(self) -> bool:
        """Whether anything but a topic or a system narrows the list."""
        return any(getattr(self, p) for p in PARAMS if p not in ("sort", "topic", "system"))

    def narrowed(self) -> bool:
        return any(getattr(self, p) for p in PARAMS if p not in ("sort",) and p not in self.fixed)


def _since(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def filters(a: ListArgs, tested: frozenset[str] = frozenset()) -> tuple[list[str], dict[str, Any]]:
    """The WHERE clauses (and their parameters) of everything but the words; a topic or system
    named in ``tested`` is asked of each row instead of listed (:mod:`catalog.listplan`)."""
    where: list[str] = []
    params: dict[str, Any] = {}
    for col, value in (("topics", a.topic), ("systems", a.system)):
        if value and col in tested:
            where.append(listplan.tag_test(col, (value,), f"f_{col}", params))
        elif value:
            where.append(f"r.id in (select resource_id from resource_tags where col = '{col}' and value = :{col})")
            params[col] = value
    if a.type:
        where.append("r.content_type = :type")
        params["type"] = a.type
    if a.organization:
        where.append("r.organization = :organization")
        params["organization"] = a.organization
    if a.source:
        where.append("r.id in (select resource_id from resource_sources where source_id = :source)")
        params["source"] = a.source
    if a.when:
        where.append("r.published >= :when_since")
        params["when_since"] = _since(WHEN[a.when][1])
    if a.since:
        where.append("r.published >= :since")
        params["since"] = a.since
    if a.until:
        where.append("r.published < :until")
        params["until"] = (datetime.fromisoformat(a.until) + timedelta(days=1)).date().isoformat()
    if a.added:
        where.append("r.first_seen >= :added_since")
        params["added_since"] = _since(WHEN[a.added][1])
    return where, params


def concept_clause(c: wording.Concept, i: int, params: dict[str, Any]) -> str:
    """One concept as SQL: the rowids its phrases find in the index, united with those of its
    topics, systems and types (one set, built once per query, not a test per resource)."""
    params[f"m{i}"] = c.fts()
    parts = [f"select rowid from resources_fts where resources_fts match :m{i}"]
    for col, values in (("topics", c.topics), ("systems", c.systems)):
        if values:
            parts.append(f"select rowid from resources where id in (select resource_id from resource_tags "
                         f"where col = '{col}' and value in ({listplan.names(f'c{i}_{col}', values, params)}))")
    if c.types:
        parts.append(f"select rowid from resources where content_type in "
                     f"({listplan.names(f'c{i}_type', c.types, params)})")
    return f"r.rowid in ({' union '.join(parts)})"


@dataclass
class Result:
    rows: list[dict[str, Any]]
    total: int
    partial: bool = False
    plan: wording.Plan | None = None
    where: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    #: the total is scaled from the newest ``window`` resources (0: counted exactly)
    window: int = 0
    #: the rowids a broad list's facets are counted over (None: every match)
    sample: list[int] | None = None
    #: the WHERE clauses and parameters of everything but the words
    filters: tuple[list[str], dict[str, Any]] = ((), {})
    #: the matches among the newest resources, when the count was estimated from them (kept for
    #: the facets, which would otherwise ask for the same window again)
    newest: list[int] | None = None


COLUMNS = ("r.id, r.title, r.url, r.description, r.content_type, r.organization, r.source_id, r.published, "
           "r.first_seen, r.topics, r.systems, r.thumbnail, r.link_status, r.archived_url, r.starts_at, r.ends_at, "
           "r.timezone, r.location, r.event_name, r.presenters, r.recording_url, r.slides_url, r.author")


async def fetch(db: Any, a: ListArgs, *, limit: int = PAGE_SIZE, offset: int | None = None,
                columns: str = COLUMNS) -> Result:
    """One page of the list ``a`` asks for, and how many resources it holds (the plan:
    :mod:`catalog.listplan`)."""
    plan = wording.plan(a.q) if a.q else None
    if plan and not plan.concepts:
        plan = None
    offset = (a.page - 1) * limit if offset is None else offset
    tags = {col: v for col, v in (("topics", a.topic), ("systems", a.system)) if v}
    sizes = await listplan.sizes(db, plan, tags)
    if sizes.broad() and plan and a.order == "relevance":
        return await _ranked_window(db, a, plan, sizes, limit, offset, columns)
    if plan and a.order == "relevance" and len(plan.concepts) > 1:
        found = await _ranked_driven(db, a, plan, sizes, limit, offset, columns)
        if found.total:
            return found
        if max(sizes.concepts) > listplan.SET_MAX:  # resources matching some of the words: among the newest
            return await _ranked_window(db, a, plan, sizes, limit, offset, columns)
    return await _exact(db, a, plan, sizes, limit, offset, columns, estimate=sizes.broad())


async def _ranked_window(db: Any, a: ListArgs, plan: wording.Plan, sizes: listplan.Sizes, limit: int, offset: int,
                         columns: str) -> Result:
    """A broad search by relevance: ranked and counted among the newest resources."""
    where, params = filters(a, frozenset(sizes.tags))
    w = await listplan.window(db, plan, where, params, sizes.rows, offset + limit)
    ids = listplan.rank_order(w, offset + limit)[offset:offset + limit]
    rows = await _by_rowid(db, ids, columns)
    return Result(rows, w.estimate(), w.partial, plan, where, params,
                  window=w.size if w.size < w.rows else 0, sample=w.sample_ids(), filters=(where, params))


async def _ranked_driven(db: Any, a: ListArgs, plan: wording.Plan, sizes: listplan.Sizes, limit: int, offset: int,
                         columns: str) -> Result:
    """A search of several concepts, one of them small: its matches listed once (none: the
    exact query looks for resources matching some of the words)."""
    where, params = filters(a, frozenset(c for c, n in sizes.tags.items() if n > listplan.SET_MAX))
    d = min(range(len(plan.concepts)), key=lambda i: sizes.concepts[i])
    p = dict(params)
    w = await listplan.driven(db, plan, where, p, sizes.rows, d, concept_clause(plan.concepts[d], d, p))
    ids = listplan.rank_order(w, offset + limit)[offset:offset + limit]
    return Result(await _by_rowid(db, ids, columns), len(w.matches), False, plan, where, params,
                  sample=w.sample_ids(), filters=(where, params))


async def _by_rowid(db: Any, ids: list[int], columns: str) -> list[dict[str, Any]]:
    if not ids:
        return []
    found = {r["rid"]: dict(r) for r in await db.execute(
        f"select r.rowid as rid, {columns} from resources r where r.rowid in (select value from json_each(:ids))",
        {"ids": json.dumps(ids)})}
    out = []
    for i in ids:
        row = found[i]
        row.pop("rid")
        out.append(row)
    return out


async def _exact(db: Any, a: ListArgs, plan: wording.Plan | None, sizes: listplan.Sizes, limit: int, offset: int,
                 columns: str, estimate: bool = False) -> Result:
    """Ordered exactly: the small parts listed once, the large asked of each row; counted
    exactly, or (``estimate``, a broad list) in the newest resources, scaled."""
    where, params = filters(a, frozenset(c for c, n in sizes.tags.items() if n > listplan.SET_MAX))
    kept = (list(where), dict(params))
    clauses = []
    for i, c in enumerate(plan.concepts if plan else ()):
        big = sizes.concepts[i] > listplan.SET_MAX
        clauses.append(listplan.concept_test(c, i, params) if big else concept_clause(c, i, params))
    rank_join, rank = "", None
    if plan:
        params["rank_match"] = plan.fts_any()
        if sum(sizes.concepts) <= 2 * listplan.SET_MAX:
            rank_join = (f"left join (select rowid as fts_rowid, {listplan.RANK} as fts_rank "
                         "from resources_fts where resources_fts match :rank_match) f on f.fts_rowid = r.rowid")
            rank = "f.fts_rank"
        else:  # the rank of each matching row only
            rank = (f"(select {listplan.RANK} from resources_fts where resources_fts match :rank_match "
                    "and resources_fts.rowid = r.rowid)")
    for partial in (False, True) if clauses else (False,):
        if partial and len(clauses) < 2:
            break
        if partial:
            score = " + ".join(clauses)
            cond = where + [f"({' or '.join(clauses)})"]
            order = f"({score}) desc, {rank} is null, {rank}, r.published desc"
        else:
            cond = where + clauses
            order = f"{rank} is null, {rank}, r.published desc" if rank else ""
        if a.order != "relevance" or not rank:
            order = SORTS[a.order if a.order != "relevance" else "newest"][1]
        where_sql = (" where " + " and ".join(cond)) if cond else ""
        single_tag = not plan and not a.narrowed_beyond_tags() and len(sizes.tags) == 1
        if estimate and not single_tag:  # a broad list: its page first, walking the published index when newest first
            walk = " indexed by idx_resources_published" if a.order == "newest" else ""
            rows = await _page(db, columns, walk, "", where_sql, order, limit, offset, params)
            if not rows and offset == 0:
                continue
            w = await listplan.window(db, plan, *kept, sizes.rows, 0)
            window = w.size if w.size < w.rows else 0
            total = max(w.estimate() if w.partial == partial else 0, offset + len(rows))
            newest = w.sample_ids()
            return Result(rows, total, partial, plan, cond, params, window=window, filters=kept,
                          sample=newest if w.partial == partial else None, newest=newest)
        if not cond:
            total = (await db.execute("select count(*) from resources")).first()[0]
        elif single_tag:
            total = next(iter(sizes.tags.values()))  # the tag's own count
        else:
            total = (await db.execute(f"select count(*) from resources r{where_sql}", params)).first()[0]
        if total == 0 and not partial:
            continue
        walk = " indexed by idx_resources_published" if a.order == "newest" and total > listplan.SET_MAX else ""
        rows = await _page(db, columns, walk, rank_join if a.order == "relevance" else "", where_sql, order, limit,
                           offset, params)
        return Result(rows, total, partial, plan, cond, params, filters=kept)
    return Result([], 0, False, plan, where + clauses, params, filters=kept)


async def _page(db: Any, columns: str, walk: str, join: str, where_sql: str, order: str, limit: int, offset: int,
                params: dict[str, Any]) -> list[dict[str, Any]]:
    sql = (f"select {columns} from resources r{walk} {join}{where_sql} "
           f"order by {order} limit {int(limit)} offset {int(offset)}")
    return [dict(r) for r in await db.execute(sql, params)]


#: Facets shown beside a list: (parameter, column, is a tag).
FACETS = (("type", "content_type", False), ("topic", "topics", True), ("system", "systems", True),
          ("organization", "organization", False), ("source", "source_id", False))


async def facet_counts(db: Any, result: Result, a: ListArgs) -> list[dict[str, Any]]:
    """The counts of each facet not chosen yet among the list's resources, or, for a list of
    more than :data:`catalog.listplan.FACET_SAMPLE`, among its matches most recently added
    (``result.sample``, which the page names)."""
    if result.total == 0:
        return []
    where, params = result.where, result.params
    if result.sample is None and result.total > listplan.FACET_SAMPLE:  # the matches most recently added:
        if not result.window and result.total <= listplan.SET_MAX:  # a list counted exactly: its own
            where_sql = (" where " + " and ".join(where)) if where else ""
            result.sample = [r[0] for r in await db.execute(
                f"select r.rowid from resources r{where_sql} order by r.rowid desc limit {listplan.FACET_SAMPLE}",
                params)]
        elif result.newest is not None:  # a large one: those among the newest resources
            result.sample = result.newest
        else:
            rows = (await db.execute("select max(rowid) from resources")).first()[0] or 0
            result.sample = (await listplan.window(db, result.plan, *result.filters, rows, 0)).sample_ids()
    if result.sample is not None:
        params = {}
        where = listplan.sample_where(result.sample, params)
    where_sql = (" where " + " and ".join(where)) if where else ""
    out = []
    for param, col, is_tag in FACETS:
        if getattr(a, param):
            continue
        if is_tag:  # the matched resources' own lists (resource_tags has no index by resource)
            sql = (f"select j.value as v, count(*) as n from resources r, json_each(r.{col}) j{where_sql} "
                   "group by j.value order by n desc, v limit 12")
        elif param == "source":
            sql = (f"select s.source_id as v, count(*) as n from resources r join resource_sources s on "
                   f"s.resource_id = r.id{where_sql} group by s.source_id order by n desc, v limit 12")
        else:
            cond = " and ".join([*where, f"r.{col} is not null", f"r.{col} != ''"])
            sql = f"select r.{col} as v, count(*) as n from resources r where {cond} group by v order by n desc, v limit 12"
        try:
            rows = await db.execute(sql, params)
        except Exception:  # noqa: BLE001 - a facet over the time limit is left out; the list still shows
            continue
        values = [(r["v"], r["n"]) for r in rows if r["v"]]
        if values:
            out.append({"param": param, "column": col, "values": values})
    return out


async def term_counts(db: Any) -> tuple[dict[tuple[str, str], int], list[tuple[str, int]]]:
    """How many resources carry each topic and system (``{(col, value): n}``) and each content
    type (most first), for the front page's tiles and the topics page. Topics and systems come
    from ``tag_counts``, which triggers keep current (migration m1001), so a page view costs a
    lookup, not a pass over every resource's tags."""
    tags = "tag_counts" if await db.table_exists("tag_counts") else None
    sql = (f"select col, value, n from {tags} where n > 0" if tags
           else "select col, value, count(*) from resource_tags group by col, value")
    counts = {(r[0], r[1]): r[2] for r in await db.execute(sql)}
    types = [(r[0], r[1]) for r in await db.execute(
        "select content_type, count(*) from resources group by content_type order by count(*) desc")]
    return counts, types


#: An upcoming event: still listed by its source, not yet over.
UPCOMING = ("+r.content_type = 'event' and r.starts_at is not null and r.status = 'active' "
            "and coalesce(r.ends_at, r.starts_at) >= :now")


async def upcoming_events(db: Any, where: list[str] | None = None, params: dict[str, Any] | None = None,
                          limit: int = 200) -> list[dict[str, Any]]:
    """Upcoming events narrowed by ``where`` (from :func:`filters`), soonest first: the one
    query behind a topic's events, the events page and the calendars (the front page's is in
    :mod:`catalog.pages`, which also serves catalogs older than the event columns)."""
    sql = (f"select {COLUMNS} from resources r where {' and '.join([*(where or []), UPCOMING])} "
           f"order by r.starts_at limit {int(limit)}")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [dict(r) for r in await db.execute(sql, {**(params or {}), "now": now})]

