"""Full-text search on a large catalog: the same answers as Datasette's queries, computed
the cheap way, and memory-mapped reads (wired by ``datasette_config/plugins/illhub_search.py``).

Datasette searches the resources table with ``rowid in (select rowid from resources_fts
where resources_fts match escape_fts(:search))``. On a million resources a common word
matches 100,000 to 940,000 of them, and every query built on that clause looks each one up:
the count (100-140 ms for 170,000), the first page, newest first (110-160 ms, sorting them
all), and each facet (150-270 ms against the 200 ms facet time limit). These bring any one-
or two-word search under the 250 ms budget with nothing precomputed
(benchmarks/results/catalog-1000000.md):

- :func:`install` routes the catalog's ``Database.execute`` through :func:`search_shape`, which
  recognizes two of Datasette's query shapes, answered with equivalent SQL: the count of
  a search is counted in the full-text index alone (every indexed row is a resource: the
  triggers keep ``resources_fts`` in step with ``resources``; asked once per catalog
  version: :func:`catalog.facetcache.search_matches`), and the first page of a
  search matching many resources walks the ``published`` index newest first, keeping the
  matching rows, instead of sorting every match (:func:`walk_published_index` says when).
- a search or a table narrowed by facet values (``&_topic=``, ``&content_type=``, ...) is
  first folded into one full-text query of the search and the values' tokens, which the
  index also holds (:mod:`catalog.narrow`): it is then answered as a plain search is;
- facet counts are kept (:mod:`catalog.facetcache`, valid until the catalog changes); a
  facet that missed the time limit is finished in the background, so the next request for
  the same search has it;
- a plain search matching more than :data:`FACET_SAMPLE` resources counts its facets over
  that many of its matches, the most recently added (:func:`sampled_sql`; the page and the
  JSON say so), and the first page of a word found in most resources asks the full-text
  index about each row of the ``published`` index instead of listing every match
  (:func:`probe_each_row`): any one- or two-word search answers without precomputation;
- after each change of the catalog the facet selections that leave many resources
  (:func:`frequent_filters`: ``content_type=video`` is a sixth of the catalog, and its
  facets count every one of its rows) are run once in the background (``WARMING``), so that
  those views are answered from kept counts. The searches for the catalog's most frequent
  words (:func:`frequent_words`) were precomputed too until their facets were sampled; now
  only with :data:`WARM_SEARCHES`. The queries of people's requests keep Datasette's time
  limits; only this precomputation, which nobody waits for, runs under the SQL time limit
  instead of the facet one.

:func:`map_into_memory` sets ``PRAGMA mmap_size`` on each connection: SQLite reads the
catalog's pages straight from the operating system's page cache instead of copying each into
its own small cache (a search's thousands of row lookups cost about 30% less on a million
resources).
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections import Counter
from contextvars import ContextVar

from catalog.labels import ARRAY_FILTER_PARAMS

#: Facet selections (and, with :data:`WARM_SEARCHES`, words) leaving at least this many
#: resources are precomputed after each change. Their exact facets cost about 5 us a resource
#: (measured on a million resources: 54 ms of SQL for an organization's 16,700 resources, 90 ms
#: for the whole answer), so a view under this size answers inside half the table's 100 ms
#: budget cold. At 20,000 the sixty organizations of the million-resource benchmark were left
#: out and were the slowest tenth of its browsing mix; at 10,000 the warmer runs 88 views there
#: (39 before), and a narrowed table costs 15 ms of server CPU on average instead of 48.
WARM_MIN_MATCHES = 10_000

#: Whether the warmer also precomputes the searches for the catalog's most frequent words.
#: Off: with sampled facets such a search costs 15-100 ms cold on a million resources, and
#: the warmer's time after each change goes to the facet selections, which still need it.
WARM_SEARCHES = False

#: True while the background precomputation runs (its facet queries use the SQL time limit).
WARMING: ContextVar[bool] = ContextVar("illhub_warming", default=False)

#: Words people do not search for on their own.
STOPWORDS = frozenset("""a an and are as at be but by for from has have how in into is it its of on or our
the their them this to was we what when where which who why will with you your""".split())

_SEARCH = r"(?:escape_fts\(:search\)|:search)"
#: A search's full-text query: the search itself, or (catalog/narrow.py) the search and the
#: tokens of the facet values it is narrowed by, or those tokens alone.
_MATCH = (rf"resources_fts match (?P<match>{_SEARCH}|'\(' \|\| {_SEARCH} \|\| '\) AND ' \|\| :illhub_fts"
          r"|:illhub_fts)")
#: The parameters such a query may have.
SEARCH_PARAMS = ({"search"}, {"search", "illhub_fts"}, {"illhub_fts"})
_FTS = rf"rowid in \(select rowid from resources_fts where {_MATCH}\)"
COUNT_RE = re.compile(rf"^select count\(\*\) from resources where {_FTS}\s*$")
PAGE_RE = re.compile(rf"^select (?P<cols>.+) from resources where {_FTS} order by published desc "
                     rf"limit (?P<limit>\d+)\s*$", re.DOTALL)


def match_count_sql(match: str) -> str:
    return f"select count(*) from resources_fts where resources_fts match {match}"


def search_shape(sql: str, params) -> tuple[str, re.Match[str]] | None:
    """("count" | "page", match) when ``sql`` is Datasette's count or first page of a plain
    search of the resources table (no other filter, no other parameter; or a search and
    facet values folded into one full-text query by :func:`catalog.narrow.fold`), else None."""
    if not isinstance(params, dict) or set(params) not in SEARCH_PARAMS:
        return None
    m = COUNT_RE.match(sql)
    if m:
        return "count", m
    m = PAGE_RE.match(sql)
    if m:
        return "page", m
    return None


def walk_published_index(matches: int, rows: int, limit: int) -> bool:
    """Whether the first page of a search with ``matches`` hits among ``rows`` resources is
    cheaper found by walking the ``published`` index newest first (about ``limit * rows /
    matches`` index entries, after listing the matches once) than by sorting every match
    (a lookup each). Measured on a million resources: 18 ms against 110 ms for 170,000
    matches; 60 ms against nothing for a word matching none. The crossing is near
    ``sqrt(30 * rows)`` matches for a 50-row page."""
    if matches <= limit or rows <= 0:
        return False
    return matches * matches >= 0.6 * limit * rows


#: Cost of asking the full-text index whether one resource matches (about 45 us a word on a
#: million resources) over the cost of listing one match (about 0.2 us): see :func:`probe_each_row`.
PROBE_OVER_LIST = 225


def probe_each_row(matches: int, rows: int, limit: int) -> bool:
    """Whether the first page of a search matching a large share of the catalog is cheaper
    found by walking the ``published`` index and asking the full-text index about each row
    it meets (about ``limit * rows / matches`` questions) than by listing every match first
    (:func:`walk_published_index`, about ``matches`` entries). On a million resources: ``a``
    (942,602 matches) 1.4 ms against 185 ms; ``webinar`` (100,065) 23 ms against 19 ms;
    ``borrowing lending`` (43,116) 102 ms against 16 ms. The crossing is near
    ``sqrt(225 * limit * rows)`` matches, about 107,000 here for a 51-row page."""
    if matches <= limit or rows <= 0:
        return False
    return matches * matches >= PROBE_OVER_LIST * limit * rows


def page_sql(m: re.Match[str], probe: bool = False) -> str:
    """The first page of a search, found by walking the ``published`` index: keeping the rows
    in the list of matches, or (``probe``) asking the full-text index about each row. Rows
    published at the same instant come in ``id`` order, the order Datasette's next pages
    assume (``published = :p and id > :last``): ``order by published desc`` alone leaves it
    open, and a page that broke the tie otherwise would repeat some rows on the next page and
    skip others."""
    if probe:
        where = (f"exists (select 1 from resources_fts where resources_fts match {m['match']} "
                 "and resources_fts.rowid = resources.rowid)")
    else:
        where = f"+rowid in (select rowid from resources_fts where resources_fts match {m['match']})"
    return (f"select {m['cols']} from resources indexed by idx_resources_published "
            f"where {where} order by published desc, id limit {m['limit']}")


#: A plain search's facets are counted over at most this many of its matches, the most
#: recently added (the full-text index lists them newest first at no cost), when it has
#: more: on a million resources a one-pass count of 5,000 rows takes 15-25 ms, of 170,000
#: about 1 s. The page says so (:func:`catalog.facetcache.facet_sample`).
FACET_SAMPLE = 5000

#: A plain search of the resources table, as a facet's inner query (no order, no limit).
SEARCH_SQL_RE = re.compile(rf"^select (?P<cols>.+) from resources where {_FTS}\s*$", re.DOTALL)
_FTS_SUBQUERY = re.compile(rf"\(select rowid from resources_fts where {_MATCH}\)")


def plain_search(inner_sql: str | None, params) -> str | None:
    """The match expression of a plain search of the resources table (no other filter, no
    other parameter; or a search narrowed by facet values, folded: :func:`catalog.narrow.fold`),
    else None."""
    if not isinstance(params, dict) or "search" not in params or set(params) not in SEARCH_PARAMS:
        return None
    m = SEARCH_SQL_RE.match(inner_sql or "")
    return m["match"] if m else None


def sampled_sql(sql: str, inner_sql: str, sample: int = 0) -> str:
    """``sql`` (a facet query over ``inner_sql``, or ``inner_sql`` itself) counting only the
    ``sample`` most recently added matches of the search (newest rowids first, read from the
    full-text index without listing the rest)."""
    sample = sample or FACET_SAMPLE
    limited = _FTS_SUBQUERY.sub(lambda m: m[0][:-1] + f" order by rowid desc limit {sample})", inner_sql, count=1)
    return sql.replace(inner_sql, limited)


def frequent_words(conn: sqlite3.Connection, *, min_matches: int, limit: int = 100,
                   sample: int = 20_000) -> list[str]:
    """The words of the catalog's titles and descriptions that, searched alone, would match
    at least ``min_matches`` resources (estimated from the newest ``sample`` resources),
    most frequent first, without stop words and words under three letters."""
    total = conn.execute("select count(*) from resources").fetchone()[0]
    if total < min_matches:
        return []
    counts: Counter[str] = Counter()
    seen = 0
    for title, description in conn.execute(
            "select title, description from resources order by rowid desc limit ?", [sample]):
        seen += 1
        counts.update({w for w in re.findall(r"\w+", f"{title or ''} {description or ''}".lower())
                       if len(w) >= 3 and w not in STOPWORDS and not w.isdigit()})
    if not seen:
        return []
    need = math.ceil(min_matches * seen / total)
    return [w for w, n in counts.most_common() if n >= need][:limit]


#: The resources table's default facets (datasette_config/metadata.yml): column → facet type.
DEFAULT_FACETS = {"content_type": "values", "organization": "values", "source_id": "values", "link_status": "values",
                  "topics": "tags", "systems": "tags"}
#: Those whose column holds one value per resource.
VALUE_COLUMNS = tuple(c for c, kind in DEFAULT_FACETS.items() if kind == "values")


def frequent_filters(conn: sqlite3.Connection, *, min_matches: int, limit: int = 100) -> list[tuple[str, str]]:
    """The facet selections of the unfiltered resources table (``content_type=video``,
    ``_topic=copyright``, ...) that leave at least ``min_matches`` resources, largest first,
    as (query parameter, value): the narrowed views whose own facets are expensive."""
    found: list[tuple[int, str, str]] = []
    for column in VALUE_COLUMNS:
        found += [(n, column, value) for value, n in conn.execute(
            f"select {column}, count(*) from resources where {column} is not null group by {column} "
            "having count(*) >= ?", [min_matches])]
    if conn.execute("select 1 from sqlite_master where name = 'tag_counts'").fetchone():
        found += [(n, ARRAY_FILTER_PARAMS[col], value) for col, value, n in conn.execute(
            "select col, value, n from tag_counts where n >= ? and col in ('topics', 'systems')", [min_matches])]
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    return [(param, value) for _n, param, value in found[:limit]]


#: Bytes of the catalog SQLite may map into memory (address space, not memory: pages are
#: shared with the operating system's file cache and read only when touched).
MMAP_BYTES = 4 * 1024**3


def map_into_memory(conn: sqlite3.Connection) -> None:
    """Let SQLite read the connection's database through ``mmap``."""
    try:
        conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    except sqlite3.Error:
        pass  # an SQLite built without memory-mapped I/O reads as before


def _catalog(path) -> bool:
    """Whether the file is a catalog whose searches can be rewritten (its FTS table and the
    published index exist)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = {r[0] for r in conn.execute(
                "select name from sqlite_master where name in ('resources', 'resources_fts', "
                "'idx_resources_published')")}
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return names == {"resources", "resources_fts", "idx_resources_published"}


def _has_tokens(path) -> bool:
    """Whether the catalog's full-text index holds the facet values' tokens (migration m2201;
    an older file served ``--immutable`` is never migrated)."""
    from catalog.narrow import has_tokens

    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return has_tokens(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def install(db) -> bool:
    """Route ``db``'s queries through the search rewrites (once; only for a catalog): a
    query narrowed by facet values is folded into one full-text query when the index holds
    them (:func:`catalog.narrow.fold`); the count and the first page of ``?_search=`` on
    the resources table (and nothing else) run as :func:`search_shape` says; every other
    query passes through unchanged."""
    if getattr(db, "_illhub_search", False) or db.is_memory or not db.path or not _catalog(db.path):
        return False
    from catalog import narrow

    original = db.execute
    tokens = _has_tokens(db.path)

    async def execute(sql, params=None, **kwargs):
        if tokens:  # a search or a table narrowed by facet values: one full-text query
            sql, params = narrow.fold(sql, params) or (sql, params)
        shape = search_shape(sql, params)
        if shape is None:
            return await original(sql, params, **kwargs)
        from catalog.facetcache import search_matches  # (it imports this module)

        kind, m = shape
        counted = await search_matches(db, original, m["match"], params)
        if kind == "count":
            return counted
        # the first page: walk the published index when the search matches many resources
        matches = counted.rows[0][0]
        rows = (await original("select max(rowid) from resources")).rows[0][0] or 0
        limit = int(m["limit"])
        if probe_each_row(matches, rows, limit):
            sql = page_sql(m, probe=True)
        elif walk_published_index(matches, rows, limit):
            sql = page_sql(m)
        return await original(sql, params, **kwargs)

    db.execute = execute
    db._illhub_search = True
    db._illhub_tokens = tokens
    return True
