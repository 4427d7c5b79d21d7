"""illhub's facets: a fast facet for JSON-array columns, and a cache of facet counts.

``tags`` (``_facet_tags=topics``): Datasette's own array facet de-duplicates ``(value, whole
row)`` pairs with ``select distinct j.value, inner.*``, which copies every column of every
row: about 200 ms on 100,000 resources, at the edge of the default facet time limit.
illhub's arrays never repeat a value (the pipeline stores sorted sets), so counting
``json_each`` items directly gives the same counts while SQLite reads only the one column
(benchmarks/catalog.py measures it). On the resources table, selecting a
value adds ``_topic=value`` (or ``_system=value``): the same rows as Datasette's
``topics__arraycontains=value``, found through the ``resource_tags`` index the triggers keep
(migration m1002) instead of by parsing every resource's JSON. Elsewhere it adds
``column__arraycontains=value``, like the array facet.

``values`` (metadata ``values: content_type``): Datasette's column facet, unchanged (same
SQL, labels, selection and ``column=value`` filters), whose counts are cached.

The cache: the catalog changes only when a harvest (or link check, or merge) commits, while
people browse the same views and search the same words again and again. Both facets keep the
rows of every facet query they run, keyed on the query, its parameters and the database's
version (``PRAGMA data_version`` of a connection kept for that purpose, which changes whenever
another connection commits; an immutable file never changes). A commit makes every cached
count unreachable, so a page never shows counts older than the data it lists. A facet query
that timed out is not cached (it is finished in the background instead). ``/-/facet-cache.json`` reports hits and misses, and the warmer's
progress.

For a large catalog (see ``illhub.searchspeed``):

- on a narrowed resources table (a search, a filter) the six default facets are counted in
  one pass over the selected rows (:func:`one_pass_sql`) instead of six, and each facet
  takes its rows from there;
- identical facet queries asked at the same moment run once (``_RUNNING``);
- :class:`Warmer` precomputes, after each change, the facets of the views that select a
  large share of the catalog, and finishes in the background any facet query that timed out.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import urllib.parse
from collections import OrderedDict
from typing import Any

from datasette import hookimpl
from datasette.database import QueryInterrupted, Results
from datasette.facets import ArrayFacet, ColumnFacet
from datasette.filters import FilterArguments
from datasette.utils import PrefixedUrlString, escape_sqlite, path_with_added_args, path_with_removed_args
from datasette.utils.asgi import Response

from illhub import searchspeed
from illhub.searchspeed import WARMING
from illhub.web import ARRAY_FILTER_PARAMS

#: Entries kept: facet query results (at most facet_size + 1 small rows each) and one-pass
#: counts (every group of the six facets of one view: a few hundred rows on a large catalog):
#: room for the precomputed views of a large catalog and what people browse besides.
CACHE_SIZE = 10_000


class FacetCache:
    """Facet query results by (database file, version, SQL, parameters), least recently used
    dropped first. One per process: every Datasette instance serving a file shares it, and
    the version in the key keeps instances from seeing each other's stale counts."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self.entries: OrderedDict[tuple, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._watchers: dict[str, sqlite3.Connection] = {}

    def version(self, db) -> tuple | None:
        """The database's current version, or None if it cannot be known (in-memory)."""
        if db.is_memory or not db.path:
            return None
        if not db.is_mutable:
            return (str(db.path), "immutable")
        path = str(db.path)
        with self._lock:
            conn = self._watchers.get(path)
            if conn is None:
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
                self._watchers[path] = conn
            return (path, conn.execute("PRAGMA data_version").fetchone()[0])

    def get(self, key: tuple, count: bool = True):
        """The entry, or None; ``count``: whether it counts in the hit rate (the facets'
        queries do; the one-pass counts they are taken from do not)."""
        with self._lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                self.hits += count
                return self.entries[key]
            self.misses += count
            return None

    def put(self, key: tuple, value: Any) -> None:
        with self._lock:
            self.entries[key] = value
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def stats(self) -> dict:
        with self._lock:
            total = self.hits + self.misses
            return {"hits": self.hits, "misses": self.misses, "entries": len(self.entries),
                    "hit_rate": round(self.hits / total, 4) if total else None}

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
            self.hits = self.misses = 0


CACHE = FacetCache()


def _params_key(params) -> tuple:
    if isinstance(params, dict):
        return tuple(sorted((k, repr(v)) for k, v in params.items()))
    return tuple(repr(v) for v in params or ())


def _search_key(sql: str, params) -> tuple:
    """The parameters as a cache key. An escaped search (``escape_fts(:search)``) is keyed
    spacing-insensitively (the escaping splits on spaces), and an ASCII one case-insensitively
    too: the full-text index folds ASCII case, so ``Borrowing`` and ``borrowing`` count the
    same rows (beyond ASCII its folding and Python's ``lower()`` differ, so case is kept)."""
    if isinstance(params, dict) and isinstance(params.get("search"), str) and "escape_fts(:search)" in sql:
        search = params["search"]
        params = {**params, "search": " ".join((search.lower() if search.isascii() else search).split())}
    return _params_key(params)


def _limit_ms(ds, custom_time_limit: int | None) -> int:
    """The time limit Datasette applies to a query (a custom limit only ever lowers it)."""
    sql_limit = ds.setting("sql_time_limit_ms")
    return min(custom_time_limit, sql_limit) if custom_time_limit else sql_limit


#: Computations running now, by cache key: one task however many requests ask at once.
_RUNNING: dict[tuple, asyncio.Task] = {}


async def _shared(key: tuple, compute, wait_ms: int):
    """``await compute()``, run once however many requests ask for ``key`` at the same moment.
    It runs in a task of its own, so a request that goes away (a closed connection cancels
    it) takes nobody else's answer with it; each request waits at most ``wait_ms``, its own
    time limit, and then reports the query as timed out."""
    loop = asyncio.get_running_loop()
    task = _RUNNING.get(key)
    if task is None or task.done() or task.get_loop() is not loop:
        task = loop.create_task(compute())
        _RUNNING[key] = task

        def done(t: asyncio.Task) -> None:
            if _RUNNING.get(key) is t:
                del _RUNNING[key]
            if not t.cancelled():
                t.exception()  # retrieved: no "never retrieved" warning when nobody waited

        task.add_done_callback(done)
    try:
        return await asyncio.wait_for(asyncio.shield(task), wait_ms / 1000)
    except TimeoutError as e:
        raise QueryInterrupted(e, "", {}) from None


async def _run_and_keep(ds, database: str, sql: str, params, kwargs: dict, key: tuple, wait_ms: int):
    """Run a facet query (once, however many ask at the moment: :func:`_shared`) and keep its
    rows under ``key``."""
    async def compute():
        found = await ds.execute(database, sql, params, **kwargs)
        CACHE.put(key, found)
        return found

    return await _shared(("facet", *key), compute, wait_ms)


async def cached_execute(ds, database: str, sql: str, params, *, facet: tuple[str, str, str, str] | None = None,
                         **kwargs):
    """``ds.execute`` for a facet query, answered from the cache when the database has not
    changed since the same query last ran, and run once however many requests ask for it at
    the same moment. A query that misses its time limit is finished in the background
    (:meth:`Warmer.finish_later`), so the next request has its counts; the request that
    timed out still reports the facet as timed out.

    ``facet``: (table, facet type, column, the narrowed table's SQL) when the query is one of
    the resources table's default facets: on a miss all six are counted in one pass
    (:func:`one_pass_counts`) and this one is taken from there."""
    db = ds.get_database(database)
    version = CACHE.version(db)
    if version is None:
        return await ds.execute(database, sql, params, **kwargs)
    key = (version, database, sql, _search_key(sql, params))
    results = CACHE.get(key)
    if results is not None:
        return results
    warming = WARMING.get()
    if warming:
        kwargs.pop("custom_time_limit", None)
    warmer_for(ds).ensure_started(ds)
    limit = _limit_ms(ds, kwargs.get("custom_time_limit"))
    if facet is not None and _one_pass_applies(*facet):
        counted = await one_pass_counts(ds, database, facet[3], params, version, limit, warming)
        if counted is TIMED_OUT and not warming:
            # the six facets' time went into the pass: each reports a time-out, and is
            # finished in the background for the next request
            warmer_for(ds).finish_later(ds, database, sql, params, kwargs, key)
            raise QueryInterrupted(TimeoutError("one pass"), sql, params)
        results = _facet_rows(counted, facet[2], _limit_of(sql))
        if results is not None:
            CACHE.put(key, results)
            return results

    try:
        return await _run_and_keep(ds, database, sql, params, kwargs, key, limit)
    except QueryInterrupted:
        if not warming:
            warmer_for(ds).finish_later(ds, database, sql, params, kwargs, key)
        raise


#: The facets one pass over a narrowed resources table counts together: its default facets.
ONE_PASS = searchspeed.DEFAULT_FACETS
#: A one-pass count that missed its time limit (kept, so the other facets of the request do
#: not try again; the facets' own queries, finished in the background, take over).
TIMED_OUT: Any = "timed out"
_LIMIT = re.compile(r"\blimit (\d+)\s*$")


def _one_pass_applies(table: str | None, facet_type: str, column: str, inner_sql: str) -> bool:
    return table == "resources" and ONE_PASS.get(column) == facet_type and bool(_WHERE.search(inner_sql or ""))


def _limit_of(sql: str) -> int | None:
    m = _LIMIT.search(sql)
    return int(m.group(1)) if m else None


def one_pass_sql(inner_sql: str) -> str:
    """Every default facet of a narrowed resources table, counted in one pass over the rows
    it selects: the same groups as each facet's own query, without looking each row up six
    times (on a million resources a two-word search's six facets took 767 ms one by one,
    350 ms together)."""
    parts = []
    for column, kind in ONE_PASS.items():
        if kind == "values":
            parts.append(f"select '{column}' as facet, {column} as value, count(*) as count from m "
                         f"where {column} is not null group by {column}")
        else:
            parts.append(f"select '{column}' as facet, j.value as value, count(*) as count "
                         f"from m, json_each(m.{column}) j group by j.value")
    return (f"with m as materialized (select {', '.join(ONE_PASS)} from ({inner_sql})) "
            + " union all ".join(parts))


async def one_pass_counts(ds, database: str, inner_sql: str, params, version, limit_ms: int, warming: bool):
    """{column: [(value, count), ...]} for the narrowed table ``inner_sql`` (empty when it
    selects nothing), kept like facet counts; ``TIMED_OUT`` when the pass missed its time
    limit. The pass may take as long as the six facet queries it replaces would have had
    together (``limit_ms`` each), within the SQL time limit; precomputation (``warming``)
    has the SQL time limit."""
    key = ("one pass", version, database, inner_sql, _search_key(inner_sql, params))
    found = CACHE.get(key, count=False)
    if found is not None:
        return found
    sql_limit = ds.setting("sql_time_limit_ms")
    pass_limit = sql_limit if warming else min(limit_ms * len(ONE_PASS), sql_limit)

    async def compute():
        try:
            results = await ds.execute(database, one_pass_sql(inner_sql), params, truncate=False,
                                       custom_time_limit=pass_limit)
        except QueryInterrupted:
            counted: Any = TIMED_OUT
        except Exception:  # noqa: BLE001 - an error: each facet's own query reports it, as before
            return None
        else:
            counted = {}
            for facet, value, count in results.rows:
                counted.setdefault(facet, []).append((value, count))
        CACHE.put(key, counted)
        return counted

    try:
        return await _shared(key, compute, pass_limit)
    except QueryInterrupted:
        return TIMED_OUT  # waited for another request's pass as long as this one may


def _facet_rows(counted, column: str, limit: int | None) -> Results | None:
    """One facet's rows from a one-pass count, as its own query orders them (count
    descending, then value; SQLite orders text by its UTF-8 bytes, as Python orders str by
    code point); None when they cannot be ordered the same way (values that are not text)."""
    if not isinstance(counted, dict) or limit is None:
        return None
    groups = counted.get(column, [])
    if not all(isinstance(v, str) for v, _n in groups):
        return None
    rows = [{"value": v, "count": n} for v, n in sorted(groups, key=lambda g: (-g[1], g[0]))[:limit]]
    return Results(rows, False, (("value",), ("count",)))


class Warmer:
    """Precomputes facet counts nobody has to wait for (see ``illhub.searchspeed``): after
    each change of a catalog, the views that show a large share of it; and any facet query
    that timed out. One per Datasette instance (:func:`warmer_for`), whose task the first
    request starts."""

    #: Seconds between two looks at whether a catalog changed.
    POLL = 5.0

    def __init__(self):
        self.task: asyncio.Task | None = None
        self.pending: set[tuple] = set()
        self.background: set[asyncio.Task] = set()
        self.warmed: dict[str, tuple] = {}
        self.seen: dict[str, tuple] = {}
        self._semaphore: asyncio.Semaphore | None = None
        self._semaphore_loop: asyncio.AbstractEventLoop | None = None
        #: warming: precomputing now; views: the views to precompute for the last catalog
        #: version seen (frequent words' searches, large facet selections); warmed: how many
        #: are done; rounds: versions fully precomputed so far; finished_later: timed-out
        #: facet queries completed in the background; error: why warming stopped, if it did
        self.state: dict[str, Any] = {"warming": False, "views": 0, "warmed": 0, "rounds": 0, "finished_later": 0}

    def _one_at_a_time(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore_loop is not loop:
            self._semaphore, self._semaphore_loop = asyncio.Semaphore(1), loop
        return self._semaphore

    def ensure_started(self, ds) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no running loop (a query outside a request): nothing to start
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._run(ds))

    def finish_later(self, ds, database, sql, params, kwargs, key) -> None:
        if key in self.pending:
            return
        self.pending.add(key)
        kwargs = {k: v for k, v in kwargs.items() if k != "custom_time_limit"}

        async def finish():
            token = WARMING.set(True)
            try:
                # one at a time: under a burst of requests the server is busy already, and
                # each timed-out facet would otherwise add its full cost to the load
                async with self._one_at_a_time():
                    if CACHE.version(ds.get_database(database)) != key[0]:
                        return  # the catalog changed meanwhile: these counts would be stale
                    if CACHE.get(key, count=False) is None:
                        await _run_and_keep(ds, database, sql, params, kwargs, key, ds.setting("sql_time_limit_ms"))
                self.state["finished_later"] += 1
            except Exception:  # noqa: BLE001 - a precomputation that fails is simply not kept
                pass
            finally:
                WARMING.reset(token)
                self.pending.discard(key)

        task = asyncio.get_running_loop().create_task(finish())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _run(self, ds) -> None:
        while True:
            for name, db in list(ds.databases.items()):
                try:
                    await self._warm(ds, name, db)
                except Exception:  # noqa: BLE001 - warming is a bonus: never fatal
                    self.state["warming"] = False
            await asyncio.sleep(self.POLL)

    async def _warm(self, ds, name: str, db) -> None:
        version = CACHE.version(db)
        if version is None or self.warmed.get(name) == version or not await db.table_exists("resources_fts"):
            return
        if self.seen.get(name) != version:
            # changed since the last look: wait until it holds still for one look (a harvest
            # commits every few seconds while it runs; warming each version would be wasted)
            self.seen[name] = version
            return

        def views(conn) -> list[dict[str, str]]:
            least = searchspeed.WARM_MIN_MATCHES
            return ([{"_search": w} for w in searchspeed.frequent_words(conn, min_matches=least)]
                    + [{p: v} for p, v in searchspeed.frequent_filters(conn, min_matches=least)])

        todo = await db.execute_fn(views)
        self.state.update(warming=bool(todo), views=len(todo), warmed=0)
        path = ds.urls.table(name, "resources", format="json")  # with the base_url, if any
        token = WARMING.set(True)
        try:
            for args in todo:
                if CACHE.version(db) != version:
                    return  # changed again: warm the newer version on the next look
                query = urllib.parse.urlencode({**args, "_size": 1, "_nocount": 1})
                response = await ds.client.get(PrefixedUrlString(f"{path}?{query}"))
                if response.status_code != 200:  # (a private instance, say): give up on this version
                    self.state["error"] = f"{response.status_code} for {query}"
                    self.warmed[name] = version
                    return
                self.state["warmed"] += 1
        finally:
            WARMING.reset(token)
            self.state["warming"] = False
        self.warmed[name] = version
        self.state["rounds"] += 1


def warmer_for(ds) -> Warmer:
    """The Datasette instance's warmer (each instance, with its own files, has its own)."""
    warmer = getattr(ds, "_illhub_warmer", None)
    if warmer is None:
        warmer = ds._illhub_warmer = Warmer()
    return warmer


class _CachingDatasette:
    """The Datasette instance as a facet sees it, with facet queries going through the cache
    (and through ``rewrite`` first, when given)."""

    def __init__(self, ds, rewrite=None, facet=None):
        self._ds = ds
        self._rewrite = rewrite
        self._facet = facet

    def __getattr__(self, name):
        return getattr(self._ds, name)

    async def execute(self, database, sql, params=None, **kwargs):
        described = None
        if self._facet is not None:
            m = _COLUMN_FACET_GROUP_BY.search(sql)
            if m:
                described = (self._facet.table, self._facet.type, m.group(1).strip("[]"), self._facet.sql)
        if self._rewrite is not None:
            sql = self._rewrite(sql)
        return await cached_execute(self._ds, database, sql, params, facet=described, **kwargs)


#: The end of Datasette 0.65's column-facet query (``datasette.facets.ColumnFacet``).
_COLUMN_FACET_GROUP_BY = re.compile(r"\bgroup by (\[[^\]]+\]|\w+) order by count desc, value limit (\d+)\s*$")
_WHERE = re.compile(r"\bwhere\b", re.IGNORECASE)


class ValuesFacet(ColumnFacet):
    """Datasette's column facet with cached counts (metadata: ``values: column``).

    On a narrowed table (a filter or a search) the count groups by ``+column`` instead of
    ``column``: the same groups, but SQLite no longer walks the facet column's own index in
    order, looking up every resource to test the filter (``content_type=article`` with the
    organization facet read all 100,000 resources, 130-150 ms against the 200 ms facet time
    limit, and timed out for a single client), and reads only the rows the filter or the
    search selects instead (18 ms). Unfiltered, the column's index still answers alone."""

    type = "values"

    def __init__(self, ds, *args, **kwargs):
        super().__init__(_CachingDatasette(ds, rewrite=self._group_by_selected_rows, facet=self), *args, **kwargs)

    def _group_by_selected_rows(self, sql: str) -> str:
        if not _WHERE.search(self.sql or ""):
            return sql
        return _COLUMN_FACET_GROUP_BY.sub(r"group by +\1 order by count desc, value limit \2", sql)

    async def suggest(self):
        return []

    async def facet_results(self):
        results, timed_out = await super().facet_results()
        for facet in results:
            # the facet is hidden with the parameter that added it, as for a column facet
            facet["toggle_url"] = self.ds.urls.path(path_with_removed_args(self.request, {"_facet_values": facet["name"]}))
        return results, timed_out


class TagsFacet(ArrayFacet):
    type = "tags"

    async def suggest(self):
        return []

    async def _has_counts(self, column: str) -> bool:
        """Whether precomputed counts answer this facet: the resources table, unfiltered
        (no WHERE clause and no parameters: no search, no filter), with a tag_counts table."""
        if self.table != "resources" or column not in ("topics", "systems") or self.params:
            return False
        if _WHERE.search(self.sql or ""):
            return False
        db = self.ds.get_database(self.database)
        return await db.table_exists("tag_counts")

    async def facet_results(self):
        facet_results, facets_timed_out = [], []
        facet_size = self.get_facet_size()
        pairs = self.get_querystring_pairs()
        indexed = await _has_tag_index(self.ds, self.database, self.table)
        for source_and_config in self.get_configs():
            config = source_and_config["config"]
            column = config.get("column") or config["simple"]
            facet_sql = (
                f"with inner as ({self.sql}) "
                f"select j.value as value, count(*) as count "
                f"from inner, json_each(inner.{escape_sqlite(column)}) j "
                f"group by j.value order by count(*) desc, j.value limit {facet_size + 1}"
            )
            params = self.params
            if await self._has_counts(column):
                # The whole table: the counts the triggers keep (migration m1001_tag_counts).
                facet_sql = ("select value, n as count from tag_counts where col = :illhub_col and n > 0 "
                             f"order by n desc, value limit {facet_size + 1}")
                params = {"illhub_col": column}
            try:
                rows = await cached_execute(
                    self.ds, self.database, facet_sql, params, truncate=False,
                    custom_time_limit=self.ds.setting("facet_time_limit_ms"),
                    facet=None if params is not self.params else (self.table, self.type, column, self.sql),
                )
            except QueryInterrupted:
                facets_timed_out.append(column)
                continue
            values = []
            param = TAG_PARAMS_BY_COLUMN.get(column) if indexed else None
            for row in rows.rows[:facet_size]:
                value = str(row["value"])
                arg = {param or f"{column}__arraycontains": value}
                selected = (f"{column}__arraycontains", value) in pairs or (param, value) in pairs
                if selected and param:
                    arg = {param: value, f"{column}__arraycontains": value}  # either way it was chosen
                toggle = path_with_removed_args(self.request, arg) if selected else path_with_added_args(
                    self.request, arg)
                values.append({"value": value, "label": value, "count": row["count"],
                               "toggle_url": self.ds.absolute_url(self.request, toggle), "selected": selected})
            facet_results.append({
                "name": column, "type": self.type, "results": values,
                "hideable": source_and_config["source"] != "metadata",
                "toggle_url": self.ds.urls.path(path_with_removed_args(self.request, {"_facet_tags": column})),
                "truncated": len(rows.rows) > facet_size,
            })
        return facet_results, facets_timed_out


#: Query parameters that narrow the resources table to a topic or a system, and their columns
#: (the one mapping is illhub.web's, which builds the links).
TAG_PARAMS_BY_COLUMN = ARRAY_FILTER_PARAMS
TAG_PARAMS = {param: column for column, param in ARRAY_FILTER_PARAMS.items()}


async def _has_tag_index(ds, database: str, table: str | None) -> bool:
    if table != "resources":
        return False
    return await ds.get_database(database).table_exists("resource_tags")


@hookimpl
def filters_from_request(request, database, table, datasette):
    """``_topic=value`` / ``_system=value`` on the resources table: the resources whose topics
    (systems) hold the value, through ``resource_tags``. Repeating a parameter asks for all.
    A catalog without ``resource_tags`` (an older file served ``--immutable``, which is never
    migrated) gets the same rows the slow way, by reading each resource's JSON: the front
    page and the cells link ``_topic=`` everywhere, so it must never be ignored."""
    if table != "resources" or not any(p in request.args for p in TAG_PARAMS):
        return None

    async def inner():
        indexed = await _has_tag_index(datasette, database, table)
        clauses, params, descriptions = [], {}, []
        for param, column in TAG_PARAMS.items():
            for i, value in enumerate(request.args.getlist(param)):
                name = f"illhub{param}{i}"
                if indexed:
                    clauses.append(f"id in (select resource_id from resource_tags where col = '{column}' "
                                   f"and value = :{name})")
                else:
                    clauses.append(f":{name} in (select value from json_each({escape_sqlite(column)}))")
                params[name] = value
                descriptions.append(f'{column} contains "{value}"')
        return FilterArguments(clauses, params, descriptions)

    return inner


@hookimpl
def register_facet_classes():
    return [ValuesFacet, TagsFacet]


async def facet_cache_stats(datasette):
    warmer = warmer_for(datasette)
    warmer.ensure_started(datasette)
    return Response.json({**CACHE.stats(), **warmer.state})


@hookimpl
def register_routes():
    return [(r"^/-/facet-cache\.json$", facet_cache_stats)]
