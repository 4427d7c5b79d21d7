"""The harvest spider: one crawl for all sources, sharing one downloader (so per-host
politeness holds across sources), and the item pipeline that stores each batch.

A failing source never stops the others: every callback and errback is wrapped and the
failure is recorded against its source.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import scrapy
import scrapy.exceptions
import scrapy.utils.httpobj
from scrapy import Request
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from harvesters.conditional import DocumentRecord, FetchState, request_from_spec
from harvesters.failures import describe_failure
from harvesters.kinds import KINDS
from harvesters.offload import DEFAULT_PARSE_CPU_LIMIT, ArrivalOrder, cpu_limit, store_options
from harvesters.source import SourceBase
from pipeline.dberrors import CatalogProblem, explain
from pipeline.fetchcache import parse_retry_after
from pipeline.pages import Frontier, PagesUnchanged, PageVisit, record_visit, save_frontier, touch_unchanged
from pipeline.resource import Batch
from pipeline.store import StoreResult, store_batch, write_prepared

logger = logging.getLogger(__name__)


@dataclass
class SourceState:
    """What happened to one source during this harvest."""

    source: SourceBase
    run_id: int
    pending: int = 0
    start_finished: bool = False
    done: bool = False
    documents: int = 0
    http_status: int | None = None
    requests: int = 0
    bytes: int = 0
    seen: int = 0
    new: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    deferred: str | None = None
    #: Documents that needed no parsing: a 304, still fresh, or the same body as last time.
    unchanged: int = 0
    #: When a 429/503 said to come back (``Retry-After``).
    retry_after: datetime | None = None
    #: Set when the source was not harvested at all (in backoff).
    skip_reason: str | None = None
    #: When the next attempt is allowed (set for skipped and failed sources).
    next_attempt: str | None = None
    #: The crawl stopped (signal, shutdown) before this source finished.
    interrupted: bool = False
    #: Batches or commits that could not be stored (the catalog busy, full, read-only, damaged).
    store_failures: int = 0

    @property
    def complete(self) -> bool:
        """The whole listing was read and stored in this run: every document fetched and
        parsed (none unchanged), nothing failed. Only such runs count towards ``stale``."""
        return (self.status in ("ok", "warning") and not self.errors and not self.deferred
                and self.unchanged == 0 and self.store_failures == 0 and self.documents > 0 and self.seen > 0)

    @property
    def status(self) -> str:
        if self.skip_reason:
            return "skipped"
        if self.interrupted:
            return "interrupted"
        if self.store_failures:
            return "failed"  # fetched but not (all) stored: never a quiet warning
        if self.documents == 0 and self.deferred and not self.errors:
            return "deferred"
        if self.documents == 0 and (self.errors or self.deferred):
            return "failed"
        if self.documents == 0:
            return "failed"
        if self.errors or self.warnings:
            return "warning"
        return "ok"


@dataclass
class HarvestContext:
    db: Any
    states: dict[str, SourceState]
    taxonomy: Any = None
    on_source_done: Callable[[SourceState], None] | None = None
    on_progress: Callable[[SourceState], None] | None = None
    #: Conditional GET bookkeeping (None: every document is fetched and parsed).
    fetch: FetchState | None = None
    #: Why the crawl closed ('finished', 'shutdown', ...).
    close_reason: str | None = None
    #: Worker processes for the CPU stage of feed-like kinds (None: all in this process).
    pool: Any = None
    #: CPU seconds one document's parse may take, here or in a worker (None: no limit).
    parse_cpu_limit: float | None = DEFAULT_PARSE_CPU_LIMIT
    #: The catalog file (for error messages) and, once it could not be written, why (the
    #: crawl is then stopped: nothing more could be stored).
    db_path: Any = None
    problem: CatalogProblem | None = None

    def maybe_done(self, state: SourceState) -> None:
        if not state.done and state.start_finished and state.pending <= 0:
            state.done = True
            if self.on_source_done:
                self.on_source_done(state)


class HarvestSpider(scrapy.Spider):
    name = "illhub"

    def __init__(self, context: HarvestContext, **kwargs: Any):
        super().__init__(**kwargs)
        self.context = context
        self.order = ArrivalOrder()
        for k in KINDS.values():  # kinds that remember pages between runs read the catalog
            bind = getattr(k.handler, "bind", None)
            if bind is not None:
                bind(context)

    # -- requests -------------------------------------------------------------------

    def _wrap(self, out: Any, state: SourceState) -> Any:
        if isinstance(out, Request):
            state.pending += 1
            state.requests += 1
            meta = dict(out.meta)
            meta["illhub_source"] = state.source.id
            return out.replace(callback=self.parse_document, errback=self.on_error, meta=meta, dont_filter=True)
        return out

    async def start(self) -> AsyncIterator[Any]:
        for state in self.context.states.values():
            handler = KINDS[state.source.kind].handler
            try:
                for out in handler.start(state.source):
                    yield self._wrap(out, state)
            except Exception as e:  # noqa: BLE001 - one bad source never stops the others
                logger.exception("source %s failed to start", state.source.id)
                state.errors.append(f"could not start: {type(e).__name__}: {e}")
            state.start_finished = True
            self.context.maybe_done(state)

    def _state(self, request: Request) -> SourceState:
        return self.context.states[request.meta["illhub_source"]]

    def closed(self, reason: str) -> None:
        self.context.close_reason = reason

    async def parse_document(self, response: Response) -> AsyncIterator[Any]:
        state = self._state(response.request)
        state.bytes += len(response.body)
        # With parse workers, documents finish parsing in any order: they are stored in the
        # order they arrived, so a harvest gives the same catalog with workers or without.
        ticket = self.order.take() if self.context.pool is not None else None
        try:
            outputs = await self._outputs(response, state)
            if state.pending == 1 and not any(_issued(o) for o in outputs):
                outputs.extend(self._idle(state))  # the source's last request: anything more to ask?
            if ticket is not None:
                await self.order.turn(ticket)
            for out in outputs:
                if isinstance(out, Request) and out.meta.get("illhub_listed"):
                    continue  # listed, not asked for: remembered with the document (see _idle)
                yield self._wrap(out, state)
        finally:
            if ticket is not None:
                self.order.release(ticket)
            state.pending -= 1
            self.context.maybe_done(state)

    async def _outputs(self, response: Response, state: SourceState) -> list[Any]:
        """What one fetched document gives: batches, follow-up requests, its fetch record."""
        fetch = self.context.fetch
        unchanged = None
        if fetch is not None:
            try:
                unchanged = fetch.unchanged(response, state.source.id)
            except Exception:  # noqa: BLE001 - the cache is an optimisation: parse the document instead
                logger.exception("fetch cache check for %s failed; parsing it", response.url)
        if unchanged is not None:
            return self._replay_unchanged(response, state, *unchanged)
        if state.http_status is None:
            state.http_status = response.status
        handler = KINDS[state.source.kind].handler
        outputs: list[Any] = []
        error: Exception | None = None
        try:
            offload = getattr(handler, "offload", None) if self.context.pool is not None else None
            call = offload(response, state.source) if offload is not None else None
            if call is not None:
                # parsed, normalized and classified in a worker process (harvesters/offload.py)
                fn, kwargs = call
                outputs.append(await self.context.pool.run(fn, kwargs, store_options(state.source)))
            else:
                with cpu_limit(self.context.parse_cpu_limit):
                    outputs.extend(handler.parse(response, state.source))
        except Exception as e:  # noqa: BLE001 - recorded against the source
            error = e
        record = fetch.record(response, state.source.id, outputs) if fetch is not None and error is None else None
        batches = [o for o in outputs if isinstance(o, Batch)]
        if record is not None:
            record.pending = len(batches)
            for b in batches:
                b.document = record
            if not batches:
                outputs.append(record)
        if error is not None:
            if not isinstance(error, ValueError):
                logger.error("parsing %s for %s failed", response.url, state.source.id, exc_info=error)
            state.errors.append(f"{response.url}: {error}")
        else:
            state.documents += 1
        return outputs

    def _replay_unchanged(self, response: Response, state: SourceState, how: str, doc: Any) -> list[Any]:
        """A document the fetch cache found unchanged: nothing to parse or store, but its
        follow-up requests still go out."""
        if state.http_status is None and how != "fresh":
            state.http_status = response.status
        self.crawler.stats.inc_value(f"illhub/unchanged/{how}")
        state.unchanged += 1
        state.documents += 1
        follow = [request_from_spec(spec) for spec in doc.follow]
        # Kinds that budget and deduplicate their own requests (crawl, sitemap) see the
        # follow-ups first; the others get them replayed as they were.
        on_unchanged = getattr(KINDS[state.source.kind].handler, "unchanged", None)
        try:
            return list(on_unchanged(response, state.source, follow)) if on_unchanged else follow
        except Exception as e:  # noqa: BLE001 - recorded against the source
            logger.error("replaying %s for %s failed", response.url, state.source.id, exc_info=e)
            state.errors.append(f"{response.url}: {e}")
            return []

    def _idle(self, state: SourceState) -> list[Any]:
        """What a kind that plans its own requests (sitemap, crawl: the ``max_pages`` budget
        spent on the pages that need it most) asks for once everything it asked for so far
        has been answered: more requests, or its closing batch and bookkeeping. The documents
        it read meanwhile list their pages as requests marked ``illhub_listed``, which are
        remembered with each document (so an unchanged one lists them again) but not sent."""
        idle = getattr(KINDS[state.source.kind].handler, "idle", None)
        if idle is None:
            return []
        try:
            return list(idle(state.source))
        except Exception as e:  # noqa: BLE001 - recorded against the source
            logger.error("planning requests for %s failed", state.source.id, exc_info=e)
            state.errors.append(f"planning the next requests failed: {type(e).__name__}: {e}")
            return []

    def on_error(self, failure: Failure) -> list[Any]:
        request = getattr(failure, "request", None)
        if request is None or "illhub_source" not in request.meta:
            return []
        state = self._state(request)
        reason, status, deferred = describe_failure(
            failure, self.settings.getfloat("DOWNLOAD_TIMEOUT"), self.settings.getint("DOWNLOAD_MAXSIZE"),
            self.settings.getint("REDIRECT_MAX_TIMES"),
        )
        if status is not None and state.http_status is None:
            state.http_status = status
        if isinstance(failure.value, HttpError) and status in (429, 503):
            when = parse_retry_after(failure.value.response.headers.get("Retry-After"), datetime.now(UTC))
            if when is not None:
                state.retry_after = max(when, state.retry_after or when)
                reason += f"; the server asks us to retry after {when.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        if deferred:
            state.deferred = reason
        else:
            state.errors.append(reason)
        more = [self._wrap(o, state) for o in self._idle(state)] if state.pending == 1 else []
        state.pending -= 1
        self.context.maybe_done(state)
        return more


def _issued(out: Any) -> bool:
    return isinstance(out, Request) and not out.meta.get("illhub_listed")


class StorePipeline:
    """Stores each Batch as it arrives, all of it or none (a savepoint each).

    Writes are committed together: as soon as no document has come for ``COMMIT_IDLE``
    seconds, and at most ``COMMIT_EVERY`` seconds apart (and when the crawl ends). On a fast
    crawl one commit per document cost more than the writes; on a polite one, documents come
    one by one and each is committed at once, so the catalog's write lock is free between them
    for other writers (``illhub check-links``). A document's validators are saved in the same
    transaction as its items, so a crash loses only documents not yet recorded as fetched, and
    the next harvest fetches them again.
    """

    COMMIT_EVERY = 0.5
    COMMIT_IDLE = 0.02
    BEGIN_ATTEMPTS = 3

    def __init__(self) -> None:
        self.crawler: Any = None
        self._opened_at = 0.0
        #: sources whose items are in the open transaction
        self._pending_sources: set[str] = set()
        self._reactor: Any = None
        self._items = 0

    def open_spider(self, spider: Any = None) -> None:
        # each document schedules an idle check; a document finding the transaction
        # COMMIT_EVERY old commits it: no timer is needed besides
        from twisted.internet import reactor

        self._reactor = reactor

    def _commit_if_idle(self, items: int) -> None:
        if items == self._items:  # nothing came since: commit now
            self.commit()

    def close_spider(self, spider: Any = None) -> None:
        self.commit()

    def _context(self) -> HarvestContext | None:
        spider = getattr(self.crawler, "spider", None) if self.crawler is not None else None
        return getattr(spider, "context", None)

    def _begin(self, context: HarvestContext, source_id: str) -> None:
        """Open the transaction, taking the catalog's write lock at once (``BEGIN IMMEDIATE``:
        a deferred transaction that reads first can fail with "database is locked" without
        waiting when another connection wrote meanwhile). Another program holding the lock is
        waited for: the busy timeout, ``BEGIN_ATTEMPTS`` times."""
        conn = context.db.conn
        if not conn.in_transaction:
            for attempt in range(1, self.BEGIN_ATTEMPTS + 1):
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as e:
                    problem = explain(e, context.db_path or "the catalog")
                    if attempt == self.BEGIN_ATTEMPTS or problem is None or problem.kind != "busy":
                        raise
                    logger.warning("the catalog is locked by another program; trying again (%d/%d)",
                                   attempt, self.BEGIN_ATTEMPTS)
            self._opened_at = time.monotonic()
        self._pending_sources.add(source_id)

    def _not_stored(self, context: HarvestContext, source_id: str | None, exc: BaseException,
                    count: int = 0, document: Any = None) -> None:
        """Record that what a source sent could not be stored: the source fails (its document
        is fetched again next time). A problem with the catalog file itself is reported by the
        command, in one line, and a fatal one stops the crawl; anything else (a bug) keeps its
        traceback in the log."""
        problem = explain(exc, context.db_path or "the catalog")
        if problem is None:
            logger.error("storing for %s failed", source_id, exc_info=exc)
            reason = f"{type(exc).__name__}: {exc}"
        else:
            # reported once by the command (fatal) or in the source's row: a warning in the log
            if problem.fatal and context.problem is None:
                context.problem = problem
                logger.warning("%s", problem)
                self._abandon_transaction(context, problem, source_id)
                self._stop_crawl()
            elif not problem.fatal:
                logger.warning("%s (%s)", problem, source_id)
            reason = problem.short
        if isinstance(document, DocumentRecord):
            document.failed = True
        state = context.states.get(source_id or "")
        if state is None:
            return
        state.store_failures += 1
        state.errors.append(f"could not save to the catalog{f' ({count} entries)' if count else ''}: {reason}")

    def _abandon_transaction(self, context: HarvestContext, problem: CatalogProblem, source_id: str | None) -> None:
        """The open transaction cannot be committed (SQLite may even have rolled it back
        already): every other source with items in it failed too."""
        pending, self._pending_sources = self._pending_sources, set()
        if context.db.conn.in_transaction:
            try:
                context.db.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        for sid in sorted(pending - {source_id}):
            state = context.states.get(sid)
            if state is not None:
                state.store_failures += 1
                state.errors.append(f"what it sent last was not kept: {problem.short}")

    def _stop_crawl(self) -> None:
        engine = getattr(self.crawler, "engine", None)
        if engine is None or self._reactor is None:
            return
        from scrapy.utils.defer import deferred_from_coro

        self._reactor.callLater(0, lambda: deferred_from_coro(engine.close_spider_async(reason="catalog_error")))

    def commit(self, due_only: bool = False) -> None:
        """Commit the open transaction (only once it is ``COMMIT_EVERY`` old if ``due_only``).
        If the commit fails, what it held is lost: each source concerned gets the error."""
        context = self._context()
        if context is None or not context.db.conn.in_transaction:
            return
        if due_only and time.monotonic() - self._opened_at < self.COMMIT_EVERY:
            return
        sources, self._pending_sources = self._pending_sources, set()
        try:
            context.db.conn.execute("COMMIT")
        except Exception as e:  # noqa: BLE001 - recorded against every source it concerned
            if context.db.conn.in_transaction:
                context.db.rollback()
            for sid in sorted(sources):
                self._not_stored(context, sid, e)

    def process_item(self, item: Any, spider: HarvestSpider | None = None) -> Any:
        context: HarvestContext = self.crawler.spider.context if spider is None else spider.context
        source_id = getattr(item, "source_id", None) or getattr(getattr(item, "doc", None), "source_id", "")
        if context.problem is not None or not isinstance(item, (Batch, DocumentRecord, PageVisit, PagesUnchanged, Frontier)):
            if context.problem is not None:
                self._not_stored(context, source_id, context.problem, _item_count(item), getattr(item, "document", None))
            return item
        try:
            self._begin(context, source_id)
        except Exception as e:  # noqa: BLE001 - recorded against the source (and stops the crawl if fatal)
            self._not_stored(context, source_id, e, _item_count(item), getattr(item, "document", None))
            return item
        try:
            return self._process(item, context)
        finally:
            self._items += 1
            self.commit(due_only=True)
            if self._reactor is not None and context.db.conn.in_transaction:
                self._reactor.callLater(self.COMMIT_IDLE, self._commit_if_idle, self._items)

    def _process(self, item: Any, context: HarvestContext) -> Any:
        if isinstance(item, DocumentRecord):
            self._save_record(context, item)
            return item
        if isinstance(item, (PageVisit, PagesUnchanged, Frontier)):
            return self._remember_pages(item, context)
        if not isinstance(item, Batch):
            return item
        state = context.states.get(item.source_id)
        if state is None:
            return item
        try:
            if item.prepared is not None:  # a parse worker did the CPU stage
                result = write_prepared(context.db, item.source_id, item.prepared, base_url=item.url,
                                        run_id=state.run_id, result=StoreResult(item.prepared_result or {}),
                                        site=item.site)
            else:
                result = store_batch(context.db, item, run_id=state.run_id, taxonomy=context.taxonomy,
                                     **store_options(state.source))
        except Exception as e:  # noqa: BLE001 - a storage error fails this source, not the run
            self._not_stored(context, item.source_id, e, _item_count(item), item.document)
            return item
        if isinstance(item.document, DocumentRecord):
            item.document.stored += 1
            if item.document.stored >= item.document.pending:
                self._save_record(context, item.document)
        state.seen += result["seen"]
        state.new += result["new"]
        state.updated += result["updated"]
        state.skipped += result["skipped"]
        state.warnings.extend(item.warnings)
        if not state.source.uses_network:
            state.documents += 1
        if context.on_progress:
            context.on_progress(state)
        context.maybe_done(state)
        return item

    @staticmethod
    def _save_record(context: HarvestContext, record: DocumentRecord) -> None:
        """Remember a document's validators and hash only once all it produced is stored."""
        if context.fetch is None or record.failed:
            return
        try:
            context.fetch.save(record)
        except Exception as e:  # noqa: BLE001 - without the record the document is simply fetched again
            if explain(e, context.db_path or "the catalog") is None:
                logger.exception("could not save the fetch record of %s", record.doc.url)

    def _remember_pages(self, item: PageVisit | PagesUnchanged | Frontier, context: HarvestContext) -> Any:
        state = context.states.get(item.source_id)
        if state is None:
            return item
        try:
            if isinstance(item, PageVisit):
                record_visit(context.db, item, run_id=state.run_id)
            elif isinstance(item, Frontier):
                save_frontier(context.db, item)
            else:
                state.seen += touch_unchanged(context.db, item.source_id, item.urls, run_id=state.run_id,
                                              lastmods=item.lastmods, fetched=item.fetched)
        except Exception as e:  # noqa: BLE001 - a storage error fails this source, not the run
            self._not_stored(context, item.source_id, e)
        return item

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        p = cls()
        p.crawler = crawler
        return p


def _item_count(item: Any) -> int:
    """How many entries a pipeline item carries (a batch's; 0 for anything else)."""
    if not isinstance(item, Batch):
        return 0
    if item.prepared is not None:
        return int((item.prepared_result or {}).get("seen", 0))
    return len(item.resources)
