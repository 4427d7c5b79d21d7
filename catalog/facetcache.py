"""Facet counts kept until the catalog changes, each computed once however many ask.

The catalog changes only when a harvest (or link check, or merge) commits, while people
browse the same views and search the same words again and again. illhub's facets
(:mod:`catalog.facets`) keep the rows of every facet query they run (:func:`cached_execute`),
keyed on the query, its parameters and the database's version (``PRAGMA data_version`` of a
connection kept for that purpose, which changes whenever another connection commits; an
immutable file never changes). A commit makes every cached count unreachable, so a page never
shows counts older than the data it lists. A facet query that timed out is not cached (it is
finished in the background instead). ``/-/facet-cache.json`` reports hits and misses, and the
warmer's progress (:func:`cache_stats`).

For a large catalog (see :mod:`catalog.search`):

- on a narrowed resources table (a search, a filter) the six default facets are counted in
  one pass over the selected rows (:func:`one_pass_sql`) instead of six, and each facet
  takes its rows from there;
- identical facet queries asked at the same moment run once (``_RUNNING``);
- :class:`Warmer` precomputes, after each change, the facets of the views that select a
  large share of the catalog, and finishes in the background any facet query that timed out.

The cache, the shared computations, the one pass and the warmer are one module: a facet
query that times out is handed to the warmer, and the warmer runs facet queries through the
cache, so apart they would import each other.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import threading
import urllib.parse
from collections import OrderedDict
from typing import Any

from datasette.database import QueryInterrupted, Results
from datasette.utils import PrefixedUrlString

from catalog import search
from catalog.search import WARMING

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
    if facet is not None:
        folded = folded_search(db, facet[3], params)
        if folded is not None:  # a search narrowed by facet values: one full-text query
            sql, params, facet = sql.replace(facet[3], folded[0]), folded[1], (*facet[:3], folded[0])
    if facet is not None and await facet_sample(ds, database, facet[3], params):
        # a search matching many resources: its facets count a sample of its matches
        sql, facet = search.sampled_sql(sql, facet[3]), (*facet[:3], search.sampled_sql(facet[3], facet[3]))
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


async def search_matches(db, execute, match: str, params) -> Results:
    """The number of a search's matches, counted in the full-text index (``execute``: the
    database's own, beneath the search rewrites), kept like facet counts: the count, the
    first page's plan and the facets' sample all ask it."""
    sql = search.match_count_sql(match)
    version = CACHE.version(db)
    key = ("search count", version, sql, _search_key(sql, params))
    found = CACHE.get(key, count=False) if version is not None else None
    if found is None:
        found = await execute(sql, params)
        if version is not None:
            CACHE.put(key, found)
    return found


def folded_search(db, inner_sql: str | None, params) -> tuple[str, dict] | None:
    """A search narrowed by facet values (the inner query of its facets), folded into one
    full-text query (:func:`catalog.narrow.fold`), with its parameters; None for anything
    else. A table narrowed without a search keeps its exact facets."""
    if not inner_sql or not getattr(db, "_illhub_tokens", False):
        return None
    from catalog.narrow import fold

    folded = fold(inner_sql, params)
    return folded if folded is not None and "search" in folded[1] else None


async def facet_sample(ds, database: str, inner_sql: str | None, params) -> dict[str, int] | None:
    """``{"rows": n, "of": matches}`` when the facets of the narrowed table ``inner_sql`` are
    counted over a sample: a plain search matching more than ``search.FACET_SAMPLE``
    resources, whose facets count its ``n`` most recently added matches; else None."""
    db = ds.get_database(database)
    if not getattr(db, "_illhub_search", False):
        return None  # not a catalog the search rewrites serve (no sample: exact counts)
    inner_sql, params = folded_search(db, inner_sql, params) or (inner_sql, params)
    match = search.plain_search(inner_sql, params)
    if match is None:
        return None
    matches = (await search_matches(db, db.execute, match, params)).rows[0][0]
    if matches <= search.FACET_SAMPLE:
        return None
    return {"rows": search.FACET_SAMPLE, "of": matches}


#: The facets one pass over a narrowed resources table counts together: its default facets.
ONE_PASS = search.DEFAULT_FACETS
#: A one-pass count that missed its time limit (kept, so the other facets of the request do
#: not try again; the facets' own queries, finished in the background, take over).
TIMED_OUT: Any = "timed out"
_LIMIT = re.compile(r"\blimit (\d+)\s*$")


def _one_pass_applies(table: str | None, facet_type: str, column: str, inner_sql: str) -> bool:
    return table == "resources" and ONE_PASS.get(column) == facet_type and narrowed(inner_sql)


_WHERE = re.compile(r"\bwhere\b", re.IGNORECASE)


def narrowed(sql: str | None) -> bool:
    """Whether a table's SQL selects some of its rows (a filter or a search: a WHERE clause)."""
    return bool(_WHERE.search(sql or ""))


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
    """Precomputes facet counts nobody has to wait for (see :mod:`catalog.search`): after
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
            least = search.WARM_MIN_MATCHES
            words = search.frequent_words(conn, min_matches=least) if search.WARM_SEARCHES else []
            return ([{"_search": w} for w in words]
                    + [{p: v} for p, v in search.frequent_filters(conn, min_matches=least)])

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


def cache_stats(ds) -> dict[str, Any]:
    """The cache's hits and misses and the instance's warmer's progress (starting it), with
    the process that answered (``pid``) and how many worker processes serve the catalog
    (``workers``, ``illhub serve --workers``): each has its own cache and warmer."""
    warmer = warmer_for(ds)
    warmer.ensure_started(ds)
    return {**CACHE.stats(), **warmer.state, "pid": os.getpid(), "workers": getattr(ds, "_illhub_workers", 1)}
