"""The harvest runner: registry sources → one Scrapy crawl → SQLite, with a run log."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harvesters.conditional import FetchState
from harvesters.guard import Policy
from harvesters.offload import DEFAULT_PARSE_CPU_LIMIT
from harvesters.settings import harvest_settings
from harvesters.source import SourceBase
from harvesters.spider import HarvestContext, HarvestSpider, SourceState
from illhub.registry import Registry
from pipeline.dberrors import CatalogProblem, explain
from pipeline.event_links import Link, link_media
from pipeline.fetchcache import load_cache, source_fingerprint
from pipeline.health import SourceHealth, after_run, in_backoff, load_health, mark_missed, save_health
from pipeline.normalize import iso_utc
from pipeline.store import finish_run, mark_interrupted_runs, open_db, start_run, sync_sources
from pipeline.taxonomy import default_taxonomy
from pipeline.version import USER_AGENT, __version__
from pipeline.writelock import writer_lock

DEFAULT_DB = Path("data") / "illhub.db"
logger = logging.getLogger(__name__)


def default_db_path() -> Path:
    return Path(os.environ.get("ILLHUB_DB") or DEFAULT_DB)


def policy_from_env(allow_private: bool = False) -> Policy:
    """--allow-private-network, or ILLHUB_ALLOW_PRIVATE_NETWORK=1; ILLHUB_NETWORK=loopback
    restricts harvests to this machine (the tests and the demo use it)."""
    env = os.environ.get("ILLHUB_NETWORK", "").strip().lower()
    if env == "loopback":
        return Policy.LOOPBACK
    if allow_private or os.environ.get("ILLHUB_ALLOW_PRIVATE_NETWORK", "") in ("1", "true", "yes"):
        return Policy.PRIVATE
    return Policy.PUBLIC


class UnknownSource(ValueError):
    pass


@dataclass
class HarvestResult:
    run_group: str
    states: list[SourceState]
    #: Recordings and slides linked to their sessions after this harvest (pipeline.event_links).
    links: list[Link] = field(default_factory=list)
    #: Why the crawl itself could not run (its sources are then all ``interrupted``), or why
    #: it stopped early (the catalog file could not be written: ``problem``).
    error: str | None = None
    #: The catalog file could not be written (full disk, read-only, damaged): the crawl
    #: stopped, and every source not finished failed.
    problem: CatalogProblem | None = None

    @property
    def failed(self) -> list[SourceState]:
        return [s for s in self.states if s.status == "failed"]

    @property
    def exit_code(self) -> int:
        """74 when the catalog file could not be written, 1 when a source failed or the crawl
        could not run, else 0 (a harvest stopped on request, by SIGTERM or Ctrl-C, records its
        unfinished sources as interrupted)."""
        if self.problem is not None:
            return self.problem.exit_code
        return 1 if self.failed or self.error else 0


def select_sources(registry: Registry, source_ids: list[str] | None) -> list[SourceBase]:
    if not source_ids:
        return registry.enabled()
    known = {s.id: s for s in registry.sources}
    missing = [i for i in source_ids if i not in known]
    if missing:
        ids = sorted(known)
        listed = ", ".join(ids[:12]) + (f", … ({len(ids)} in all)" if len(ids) > 12 else "")
        raise UnknownSource(
            f"{registry.path}: no source with id {', '.join(repr(m) for m in missing)}; "
            f"known ids: {listed or 'none'} (see 'illhub sources')"
        )
    return [known[i] for i in source_ids]


def user_agent(registry: Registry) -> str:
    if registry.defaults.contact:
        return f"illhub/{__version__} (+{registry.defaults.contact}; interlibrary loan resource hub harvester)"
    return USER_AGENT


def run_harvest(
    registry: Registry,
    db_path: str | Path,
    *,
    source_ids: list[str] | None = None,
    policy: Policy = Policy.PUBLIC,
    delay: float | None = None,
    timeout: float | None = None,
    log_level: str = "ERROR",
    progress: Any = None,
    settings: dict[str, Any] | None = None,
    force: bool = False,
    respect_backoff: bool | None = None,
    refetch: bool = False,
    shard: tuple[int, int] | None = None,
    workers: int | None = None,
    proxy: str | None = None,
    parse_cpu_limit: float = DEFAULT_PARSE_CPU_LIMIT,
    lock_wait: float | None = None,
    on_lock_wait: Any = None,
) -> HarvestResult:
    """Harvest the selected sources in one crawl process and record each source's run.

    A source in backoff (see :mod:`pipeline.health`) is skipped, and recorded as
    ``skipped`` with its next attempt, unless ``force`` is set or it was named in
    ``source_ids`` (a person asking for it by name wants it tried now). ``respect_backoff``
    skips sources in backoff even when named (the scheduler names its sources).
    ``force`` also fetches documents that ``Cache-Control: max-age`` says are still fresh;
    ``refetch`` ignores the fetch cache altogether (no validators, every document parsed).

    ``workers``: processes that parse, normalize and classify feed-like documents while this
    one downloads and writes (:mod:`harvesters.offload`); 0 does everything here, None picks
    a number from the cores and the sources (:func:`harvesters.offload.auto_workers`), each
    document's parse bounded by ``parse_cpu_limit`` CPU seconds. ``proxy``: an HTTP proxy to
    fetch through (never the environment's). ``progress``: an object with ``start(total)``,
    ``advance(state)`` and ``stop()`` (the CLI passes a rich progress bar).

    The whole harvest holds the catalog's writer lock (:mod:`pipeline.writelock`): another
    writer is waited for at most ``lock_wait`` seconds (``on_lock_wait(holder)`` is called
    when the wait starts), then :class:`pipeline.writelock.CatalogLocked` is raised.
    """
    sources = select_sources(registry, source_ids)
    if shard is not None:
        k, n = shard
        sources = [s for s in sources if shard_of(s, n) == k]
    with writer_lock(db_path, "harvest", wait=lock_wait, on_wait=on_lock_wait):
        return _harvest_locked(registry, db_path, sources, named=bool(source_ids), policy=policy, delay=delay,
                               timeout=timeout, log_level=log_level, progress=progress, settings=settings,
                               force=force, respect_backoff=respect_backoff, refetch=refetch, workers=workers,
                               proxy=proxy, parse_cpu_limit=parse_cpu_limit)


def _harvest_locked(registry: Registry, db_path: str | Path, sources: list[SourceBase], *, named: bool,
                    policy: Policy, delay: float | None, timeout: float | None, log_level: str, progress: Any,
                    settings: dict[str, Any] | None, force: bool, respect_backoff: bool | None, refetch: bool,
                    workers: int | None, proxy: str | None, parse_cpu_limit: float) -> HarvestResult:
    """:func:`run_harvest` once it holds the catalog's writer lock."""
    begun = begin_harvest(registry, db_path, sources, named=named, force=force,
                          respect_backoff=respect_backoff, refetch=refetch)
    db, run_group, started_dt, health = begun.db, begun.run_group, begun.started, begun.health
    states, skipped, context, fetch = begun.states, begun.skipped, begun.context, begun.context.fetch
    context.parse_cpu_limit = parse_cpu_limit
    extra = {"USER_AGENT": user_agent(registry), **(settings or {})}
    finished_normally = False
    links: list[Link] = []
    crawl_errors: list[Any] = []
    try:
        if states:
            # first, while this process has one thread (before the progress display and the
            # crawl start theirs): the parse workers can then be forked (harvesters/offload.py)
            context.pool = start_pool(workers, [st.source for st in states.values()], fetch,
                                      context.parse_cpu_limit)
        if progress is not None:
            progress.start(len(states))
            context.on_source_done = progress.advance
        if states:
            _crawl(context, harvest_settings(policy=policy.value, delay=delay, timeout=timeout, log_level=log_level,
                                             extra=extra, proxy=proxy), log_level, crawl_errors)
        finished_normally = not states or context.close_reason == "finished"
        links = link_media_safely(db) if context.problem is None else []
    finally:
        close_runs(db, context, skipped, health, started_dt, finished_normally, progress)
    error = None
    if context.problem is not None:
        error = str(context.problem)
    if crawl_errors and error is None:
        failure = crawl_errors[0]
        error = f"the crawl could not run: {failure.type.__name__}: {failure.getErrorMessage()}"
        logger.info("%s\n%s", error, failure.getTraceback())
    return HarvestResult(run_group, [*skipped, *states.values()], links, error, context.problem)


@dataclass
class HarvestStart:
    """A harvest before anything is fetched: its catalog, its run group and each source's run."""

    db: Any
    run_group: str
    started: datetime
    health: dict[str, SourceHealth]
    #: the sources to harvest (their runs open) and those skipped while backing off
    states: dict[str, SourceState]
    skipped: list[SourceState]
    context: HarvestContext


def begin_harvest(registry: Registry, db_path: str | Path, sources: list[SourceBase], *, named: bool,
                  force: bool = False, respect_backoff: bool | None = None, refetch: bool = False) -> HarvestStart:
    """What every harvest does first, local (:func:`run_harvest`) or dispatched to Scrapyd
    (:mod:`illhub.distributed.dispatch`): open the catalog, mark the runs a crash left open,
    record the registry's sources, open a run for each source (or skip it while it backs off:
    ``named`` sources are tried unless ``respect_backoff``) and load the fetch cache."""
    db = open_db(db_path)
    mark_interrupted_runs(db)
    sync_sources(db, [s.row() for s in registry.sources])
    run_group = uuid.uuid4().hex[:12]
    started_dt = datetime.now(UTC)
    health = load_health(db, [s.id for s in sources])
    if respect_backoff is None:
        respect_backoff = not named
    states, skipped = _open_runs(db, sources, run_group, started_dt, health,
                                 skip_backoff=respect_backoff and not force)
    fetch = FetchState(
        db=db, cache=load_cache(db, list(states)), use_cache=not refetch, honour_freshness=not force,
        fingerprints={sid: source_fingerprint(cache_config(st.source), __version__) for sid, st in states.items()},
    )
    context = HarvestContext(db=db, states=states, taxonomy=default_taxonomy(), fetch=fetch, db_path=db_path)
    return HarvestStart(db, run_group, started_dt, health, states, skipped, context)


def link_media_safely(db: Any) -> list[Link]:
    """Link recordings and slides to their sessions; a failure is logged, never the harvest's."""
    try:
        return link_media(db)
    except sqlite3.Error as e:  # linking is a bonus: it never fails the harvest
        logger.error("linking recordings and slides to sessions failed: %s", e)
        return []


def _open_runs(db: Any, sources: list[SourceBase], run_group: str, started_dt: datetime,
               health: dict[str, SourceHealth], *, skip_backoff: bool) -> tuple[dict[str, SourceState], list[SourceState]]:
    """A run row for every source, in one transaction: the sources to harvest, and those
    skipped because they are in backoff."""
    started = iso_utc(started_dt)
    states: dict[str, SourceState] = {}
    skipped: list[SourceState] = []
    with db.atomic():
        for s in sources:
            h = health.get(s.id)
            if skip_backoff and in_backoff(h, started_dt):
                assert h is not None
                skipped.append(SourceState(
                    source=s, run_id=start_run(db, s.id, run_group, started), next_attempt=h.next_attempt,
                    skip_reason=f"backing off after {h.consecutive_failures} failed run(s) in a row "
                    f"(last error: {(h.last_error or '?')[:200]}); next attempt {h.next_attempt}; --force tries now",
                ))
            else:
                states[s.id] = SourceState(source=s, run_id=start_run(db, s.id, run_group, started))
    return states, skipped


def quiet_retries(log_level: str) -> None:
    """Without -v, each failure is reported once, per source or link (the summary, the
    catalog); Scrapy's "Gave up retrying" lines would only repeat it, one per request, on
    stderr. Call after CrawlerProcess configured logging, which resets existing loggers."""
    if logging.getLevelName(log_level) == logging.ERROR:
        logging.getLogger("scrapy.downloadermiddlewares.retry").setLevel(logging.CRITICAL)


def _crawl(context: HarvestContext, settings: dict[str, Any], log_level: str, crawl_errors: list[Any]) -> None:
    """Run the harvest spider over ``context``'s sources in this process, until it closes."""
    from scrapy.crawler import CrawlerProcess

    from harvesters.quickstart import import_download_handler

    import_download_handler()
    process = CrawlerProcess(settings)
    quiet_retries(log_level)
    # Scrapy filters by level in its handler and leaves the root logger open, so every
    # debug line (a few per request) was built and then dropped: filter at the root.
    logging.getLogger().setLevel(logging.getLevelName(log_level))
    crawl = process.crawl(HarvestSpider, context=context)
    crawl.addErrback(lambda failure: crawl_errors.append(failure))
    process.start()


def close_runs(db: Any, context: HarvestContext, skipped: list[SourceState], health: dict[str, SourceHealth],
               started_dt: datetime, finished_normally: bool, progress: Any) -> None:
    """Keep what was stored, stop the workers and the progress display, and close every
    source's run (unfinished ones as interrupted)."""
    try:
        if db.conn.in_transaction and context.problem is None:
            db.commit()  # a crawl stopped without closing its pipeline: keep what it stored
        if context.pool is not None:
            context.pool.close()
        if progress is not None:
            progress.stop()
        for state in context.states.values():
            if finished_normally or state.done:
                continue
            if context.problem is not None:  # stopped because nothing more could be stored
                state.store_failures += 1
                state.errors.append(f"not finished: {context.problem.short}")
            else:
                state.interrupted = True
        _record_closed_runs(db, context, skipped, health, started_dt)
    finally:
        db.close()


def _record_closed_runs(db: Any, context: HarvestContext, skipped: list[SourceState],
                        health: dict[str, SourceHealth], started_dt: datetime) -> None:
    """Close every source's run in one commit (each closing is a savepoint of its own). When
    the catalog cannot take even that (the disk is still full), the runs stay ``running`` and
    the next harvest marks them ``interrupted``; the problem is reported, not a traceback."""
    try:
        if db.conn.in_transaction:
            db.rollback()
        with db.atomic():
            for state in [*skipped, *context.states.values()]:
                close_source_run(db, state, health.get(state.source.id), started_dt)
    except sqlite3.Error as e:
        problem = explain(e, context.db_path or "the catalog")
        if problem is None:
            raise
        if context.problem is None:
            context.problem = problem
        logger.warning("could not record the runs: %s", problem)


def start_pool(workers: int | None, sources: list[SourceBase], fetch: FetchState | None = None,
               cpu_seconds: float = DEFAULT_PARSE_CPU_LIMIT) -> Any:
    """The parse workers for these sources (None when there will be none).

    ``auto`` (None) counts the sources whose documents will probably be parsed: those that
    can use workers and have nothing usable in the fetch cache. A nightly re-harvest, whose
    documents mostly answer 304 or come back unchanged, parses the few changed ones here."""
    from harvesters.kinds import KINDS
    from harvesters.offload import ParsePool, auto_workers

    if workers is None:
        offloadable = [s for s in sources if hasattr(KINDS[s.kind].handler, "offload")]
        cached = {sid for sid, _url in fetch.cache} if fetch is not None and fetch.use_cache else set()
        workers = auto_workers(sum(1 for s in offloadable if s.id not in cached))
    return ParsePool(workers, cpu_seconds) if workers > 0 else None


def cache_config(source: SourceBase) -> dict[str, Any]:
    """What a cached document depends on: the entry minus fields that do not change parsing."""
    row = source.row()
    for k in ("schedule", "enabled", "notes", "name"):
        row.pop(k, None)
    return row


def close_source_run(db: Any, state: SourceState, prev: SourceHealth | None, started: datetime) -> None:
    """Finish one source's run, update its health and, after a complete run, its stale
    bookkeeping, in one transaction."""
    now = datetime.now(UTC)
    error = "; ".join(dict.fromkeys(state.errors + ([state.deferred] if state.deferred else [])))[:2000] or None
    status = state.status
    warnings = list(dict.fromkeys(state.warnings + ([state.skip_reason] if state.skip_reason else [])))
    with db.atomic():
        next_attempt = state.next_attempt
        # a run that failed because the catalog could not store its items is not the
        # source's failure: no backoff, no count towards needs_attention
        if status not in ("skipped", "interrupted") and not state.store_failures:
            health = after_run(prev or SourceHealth(state.source.id), status, started_at=started, finished_at=now,
                               error=error, retry_after=state.retry_after)
            save_health(db, health, now)
            next_attempt = health.next_attempt
        finish_run(
            db, state.run_id, status=status, items_seen=state.seen, items_new=state.new,
            items_updated=state.updated, http_status=state.http_status, requests=state.requests,
            bytes=state.bytes, warning="; ".join(warnings)[:2000] or None, error=error,
            documents=state.documents, documents_unchanged=state.unchanged, next_attempt=next_attempt,
            finished_at=iso_utc(now),
        )
        if state.complete:
            windowed = not state.source.complete_listing or state.seen >= state.source.max_items
            mark_missed(db, state.source.id, state.run_id, windowed=windowed)


def host_key(source: SourceBase) -> str:
    """The host a source is fetched from (``www.`` left out), or its id when it has no URL."""
    url = source.url
    key = (urlsplit(url).hostname or "") if url else ""
    return key.lower().removeprefix("www.") or f"id:{source.id}"


def shard_of(source: SourceBase, n: int) -> int:
    """The shard (1..n) of a source: by the host it is fetched from, so that every source of
    one host is harvested by the same process and per-host politeness holds."""
    return int(hashlib.sha1(host_key(source).encode("utf-8")).hexdigest(), 16) % n + 1
