"""The harvest spider: one crawl for all sources, sharing one downloader (so per-host
politeness holds across sources), and the item pipeline that stores each batch.

A failing source never stops the others: every callback and errback is wrapped and the
failure is recorded against its source.
"""

from __future__ import annotations

import logging
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

from harvesters.conditional import FetchState, request_from_spec
from harvesters.failures import describe_failure
from harvesters.kinds import KINDS
from harvesters.offload import DEFAULT_PARSE_CPU_LIMIT, ArrivalOrder, cpu_limit, store_options
from harvesters.source import SourceBase
from pipeline.dberrors import CatalogProblem
from pipeline.fetchcache import parse_retry_after
from pipeline.resource import Batch

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
    #: Entries left out by ``on_topic_only`` (among the skipped).
    off_topic: int = 0
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
            # in place: a handler's request is its own (Scrapy copies the meta it is given), and
            # a copy cost as much as making it (the URL escaped again, new headers)
            out.meta["illhub_source"] = state.source.id
            out.callback, out.errback, out.dont_filter = self.parse_document, self.on_error, True
            return out
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
