"""The store pipeline: every item a harvest yields (a batch of resources, a document's
validators, the pages a crawl visited or left for later) is written to the catalog here, in
transactions committed together, with a source's problem recorded instead of its items when the
catalog cannot take them. Local harvests and the Scrapyd dispatcher use it alike."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from harvesters.conditional import DocumentRecord
from harvesters.offload import store_options
from harvesters.spider import HarvestContext, HarvestSpider
from harvesters.writebehind import Writer
from pipeline.dberrors import CatalogProblem, explain
from pipeline.pages import Frontier, PagesUnchanged, PageVisit, record_visit, save_frontier, touch_unchanged
from pipeline.resource import Batch
from pipeline.store import StoreResult, store_batch, write_prepared

logger = logging.getLogger("harvesters.spider")


class StorePipeline:
    """Stores each Batch as it arrives, all of it or none (a savepoint each).

    Writes are committed together: as soon as no document has come for ``COMMIT_IDLE``
    seconds, and at most ``COMMIT_EVERY`` seconds apart (and when the crawl ends). On a fast
    crawl one commit per document cost more than the writes; on a polite one, documents come
    one by one and each is committed at once, so the catalog's write lock is free between them
    for other writers (``illhub check-links``). A document's validators are saved in the same
    transaction as its items, so a crash loses only documents not yet recorded as fetched, and
    the next harvest fetches them again.

    With parse workers, the batches they prepared are written by a thread of its own
    (:mod:`harvesters.writebehind`), in the order they come; everything else waits for it.
    """

    COMMIT_EVERY = 0.5
    COMMIT_IDLE = 0.02
    #: With parse workers (the write-behind): documents come as the workers finish them, a few
    #: milliseconds apart with gaps of tens; each commit rewrites every index page the
    #: transaction touched (about 1,300 pages for a few feeds), so a pause is one this long.
    COMMIT_IDLE_BEHIND = 0.1
    BEGIN_ATTEMPTS = 3

    def __init__(self) -> None:
        self.crawler: Any = None
        self._opened_at = 0.0
        #: sources whose items are in the open transaction
        self._pending_sources: set[str] = set()
        self._reactor: Any = None
        #: the idle check: one timer, put off by each document (a timer a document cost more)
        self._idle_check: Any = None
        #: the write-behind thread, with parse workers (:class:`harvesters.writebehind.Writer`)
        self._writer: Writer | None = None
        #: what the writer found wrong, for the reactor's thread to report (in order)
        self._reports: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()

    def open_spider(self, spider: Any = None) -> None:
        # each document puts off the idle check; a document finding the transaction
        # COMMIT_EVERY old commits it: no timer is needed besides
        from twisted.internet import reactor

        self._reactor = reactor
        context = self._context()
        if context is not None and context.pool is not None:
            # the workers prepare batches faster than one thread can both download and write
            self._writer = Writer(context.db)

    def _commit_when_idle(self) -> None:
        self._idle_check = None
        self.commit()  # nothing came for COMMIT_IDLE seconds

    def _put_off_idle_check(self, context: HarvestContext) -> None:
        check = self._idle_check
        if check is not None and not check.active():
            check = self._idle_check = None
        if context.db.conn.in_transaction:
            if check is None:
                self._idle_check = self._reactor.callLater(self.COMMIT_IDLE, self._commit_when_idle)
            else:
                check.reset(self.COMMIT_IDLE)
        elif check is not None:  # committed: nothing to check until a document opens another
            check.cancel()
            self._idle_check = None

    def _put_off_idle_check_behind(self) -> None:
        """The idle check of the write-behind: put off by each batch given to the writer,
        without asking the connection (which would wait for the writer); the commit it
        makes, in the writer, finds out whether there is anything to commit."""
        check = self._idle_check
        if check is not None and check.active():
            check.reset(self.COMMIT_IDLE_BEHIND)
        else:
            self._idle_check = self._reactor.callLater(self.COMMIT_IDLE_BEHIND, self._commit_when_idle)

    def close_spider(self, spider: Any = None) -> None:
        if self._idle_check is not None and self._idle_check.active():
            self._idle_check.cancel()
        self._idle_check = None
        try:
            self.commit()
        finally:
            if self._writer is not None:
                self._writer.stop()
                self._writer = None
            self._flush_reports()

    def _in_writer(self) -> bool:
        return self._writer is not None and self._writer.in_writer()

    def _report(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn`` in the reactor's thread: now if this is it, else once the writer's
        earlier reports have run."""
        if not self._in_writer():
            fn(*args)
            return
        self._reports.append((fn, args))
        if self._reactor is not None:
            self._reactor.callFromThread(self._flush_reports)

    def _flush_reports(self) -> None:
        while self._reports:
            fn, args = self._reports.popleft()
            fn(*args)

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
        traceback in the log. (The catalog's side at once, in whichever thread writes; the rest
        in the reactor's thread.)"""
        problem = explain(exc, context.db_path or "the catalog")
        first_fatal = problem is not None and problem.fatal and context.problem is None
        abandoned: list[str] = []
        if first_fatal:
            assert problem is not None
            context.problem = problem  # what is written after this is not stored
            abandoned = self._abandon_transaction(context, source_id)
        if isinstance(document, DocumentRecord):
            document.failed = True
        self._report(self._report_not_stored, context, source_id, exc, problem, first_fatal, abandoned, count)

    def _report_not_stored(self, context: HarvestContext, source_id: str | None, exc: BaseException,
                           problem: CatalogProblem | None, first_fatal: bool, abandoned: list[str], count: int) -> None:
        if problem is None:
            logger.error("storing for %s failed", source_id, exc_info=exc)
            reason = f"{type(exc).__name__}: {exc}"
        else:
            # reported once by the command (fatal) or in the source's row: a warning in the log
            if first_fatal:
                logger.warning("%s", problem)
                self._abandoned(context, abandoned, problem.short)
                self._stop_crawl()
            elif not problem.fatal:
                logger.warning("%s (%s)", problem, source_id)
            reason = problem.short
        state = context.states.get(source_id or "")
        if state is None:
            return
        state.store_failures += 1
        state.errors.append(f"could not save to the catalog{f' ({count} entries)' if count else ''}: {reason}")

    def _abandon_transaction(self, context: HarvestContext, source_id: str | None) -> list[str]:
        """The open transaction cannot be committed (SQLite may even have rolled it back
        already): every other source with items in it failed too (returned, in order)."""
        pending, self._pending_sources = self._pending_sources, set()
        if context.db.conn.in_transaction:
            try:
                context.db.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        return sorted(pending - {source_id})

    @staticmethod
    def _abandoned(context: HarvestContext, sources: list[str], why: str) -> None:
        for sid in sources:
            state = context.states.get(sid)
            if state is not None:
                state.store_failures += 1
                state.errors.append(f"what it sent last was not kept: {why}")

    def _stop_crawl(self) -> None:
        engine = getattr(self.crawler, "engine", None) if self.crawler is not None else None
        if engine is None or self._reactor is None:
            return
        from scrapy.utils.defer import deferred_from_coro

        self._reactor.callLater(0, lambda: deferred_from_coro(engine.close_spider_async(reason="catalog_error")))

    def commit(self, due_only: bool = False) -> None:
        """Commit the open transaction (only once it is ``COMMIT_EVERY`` old if ``due_only``).
        If the commit fails, what it held is lost: each source concerned gets the error.
        With the write-behind, the writer commits after what it was given so far."""
        if self._writer is not None and not self._in_writer():
            context = self._context()
            if context is not None:
                self._writer.submit(self._guarded, context, None, self._commit, due_only)
            return
        self._commit(due_only)

    def _commit(self, due_only: bool) -> None:
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
        if self._writer is not None and isinstance(item, Batch) and item.prepared is not None:
            return self._write_behind(item, context)
        self._flush_reports()
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
            self.commit(due_only=True)
            if self._reactor is not None:
                self._put_off_idle_check(context)

    async def _write_behind(self, item: Batch, context: HarvestContext) -> Batch:
        """A batch a parse worker prepared, written by the writer as :meth:`process_item` would
        write it; its source's counts are kept here once it is."""
        assert self._writer is not None
        written = self._writer.submit(self._guarded, context, item, self._write_in_writer, item, context)
        self.commit(due_only=True)  # after it, if the transaction is COMMIT_EVERY old by then
        if self._reactor is not None:
            self._put_off_idle_check_behind()
        try:
            result = await asyncio.wrap_future(written)
        finally:
            self._flush_reports()
        if result is not None:
            self._count(item, context, result)
        return item

    def _guarded(self, context: HarvestContext, item: Batch | None, fn: Callable[..., Any], *args: Any) -> Any:
        """In the writer: ``fn``, whose errors are its own to report; anything escaping it (a
        bug) stops storing for the rest of the harvest, as a catalog problem does."""
        try:
            return fn(*args)
        except BaseException as e:  # noqa: BLE001 - reported below, in the reactor's thread
            self._writer_failed(context, item, e)
            return None

    def _writer_failed(self, context: HarvestContext, item: Batch | None, exc: BaseException) -> None:
        """In the writer, after an unexpected error: nothing more is stored (what the open
        transaction holds is rolled back, what was committed stays), and the harvest says so
        in one line (:class:`CatalogProblem` ``writer``, exit code 1) and stops."""
        if isinstance(item, Batch) and isinstance(item.document, DocumentRecord):
            item.document.failed = True
        first = context.problem is None
        abandoned: list[str] = []
        if first:
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            context.problem = CatalogProblem(
                "writer", f"storing in {context.db_path or 'the catalog'} failed ({detail}); what was committed "
                "before is kept, and the unfinished sources are harvested again next time", exit_code=1)
            abandoned = self._abandon_transaction(context, None)
        self._report(self._report_writer_failed, context, item, exc, first, abandoned)

    def _report_writer_failed(self, context: HarvestContext, item: Batch | None, exc: BaseException, first: bool,
                              abandoned: list[str]) -> None:
        assert context.problem is not None
        if first:
            logger.error("the catalog writer failed", exc_info=exc)
            self._abandoned(context, [s for s in abandoned if item is None or s != item.source_id], context.problem.short)
            self._stop_crawl()
        state = context.states.get(item.source_id) if item is not None else None
        if state is not None:
            state.store_failures += 1
            state.errors.append(f"could not save to the catalog ({_item_count(item)} entries): {context.problem.short}")

    def _write_in_writer(self, item: Batch, context: HarvestContext) -> StoreResult | None:
        """In the writer: what :meth:`process_item` and :meth:`_process` do with the catalog
        for a prepared batch; its counts, or None when it was not stored."""
        source_id = item.source_id
        if context.problem is not None:
            self._not_stored(context, source_id, context.problem, _item_count(item), item.document)
            return None
        try:
            self._begin(context, source_id)
        except Exception as e:  # noqa: BLE001 - recorded against the source (and stops the crawl if fatal)
            self._not_stored(context, source_id, e, _item_count(item), item.document)
            return None
        state = context.states.get(source_id)
        if state is None:
            return None
        try:
            result = write_prepared(context.db, source_id, item.prepared or {}, base_url=item.url,
                                    run_id=state.run_id, result=StoreResult(item.prepared_result or {}), site=item.site)
        except Exception as e:  # noqa: BLE001 - a storage error fails this source, not the run
            self._not_stored(context, source_id, e, _item_count(item), item.document)
            return None
        if isinstance(item.document, DocumentRecord):
            item.document.stored += 1
            if item.document.stored >= item.document.pending:
                self._save_record(context, item.document)
        return result

    @staticmethod
    def _count(item: Batch, context: HarvestContext, result: StoreResult) -> None:
        """A stored batch's counts, for its source's run."""
        state = context.states.get(item.source_id)
        if state is None:
            return
        state.seen += result["seen"]
        state.new += result["new"]
        state.updated += result["updated"]
        state.skipped += result["skipped"]
        state.off_topic += result.get("off_topic", 0)
        state.warnings.extend(item.warnings)
        if not state.source.uses_network:
            state.documents += 1
        if context.on_progress:
            context.on_progress(state)
        context.maybe_done(state)

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
        self._count(item, context, result)
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
