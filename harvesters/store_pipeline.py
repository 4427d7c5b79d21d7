"""The store pipeline: every item a harvest yields (a batch of resources, a document's
validators, the pages a crawl visited or left for later) is written to the catalog here, in
transactions committed together, with a source's problem recorded instead of its items when the
catalog cannot take them. Local harvests and the Scrapyd dispatcher use it alike."""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from harvesters.conditional import DocumentRecord
from harvesters.offload import store_options
from harvesters.spider import HarvestContext, HarvestSpider
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
        #: the idle check: one timer, put off by each document (a timer a document cost more)
        self._idle_check: Any = None

    def open_spider(self, spider: Any = None) -> None:
        # each document puts off the idle check; a document finding the transaction
        # COMMIT_EVERY old commits it: no timer is needed besides
        from twisted.internet import reactor

        self._reactor = reactor

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

    def close_spider(self, spider: Any = None) -> None:
        if self._idle_check is not None and self._idle_check.active():
            self._idle_check.cancel()
        self._idle_check = None
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
            self.commit(due_only=True)
            if self._reactor is not None:
                self._put_off_idle_check(context)

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
        state.off_topic += result.get("off_topic", 0)
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
