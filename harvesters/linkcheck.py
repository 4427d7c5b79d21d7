"""The link-check spider: is each catalogued link still there?

It runs in the same Scrapy downloader as harvests, with the same settings
(:func:`harvesters.settings.harvest_settings`), network guard and robots.txt policy, so
checks are as polite as harvests: one request at a time per host with a delay between
requests (the spider also releases a host's links one after the other, so a pause or a
HEAD refusal learnt from one link applies to the next). For each link it asks

1. ``HEAD``; a ``400``, ``403``, ``404``, ``405``, ``406``, ``410``, ``500`` or ``501``
   answer to HEAD is asked again with ``GET`` (servers that refuse or mishandle HEAD; a
   dead link is confirmed by GET); after a 405 or 501 the host is asked with GET straight
   away for the rest of the run;
2. a ``GET`` reads at most :data:`BODY_CAP` bytes of the body (enough to recognise a bot
   challenge page) and then stops the download;
3. redirects are followed (each hop passes the network guard) and the final URL is kept;
4. timeouts, refused or broken connections, DNS failures, 5xx and 429 answers are tried
   again up to ``retries`` times after an exponential backoff; a ``Retry-After`` header is
   honoured, and pauses the whole host. A Retry-After longer than ``max_retry_after``
   is not waited for: the link is reported rate-limited and the host's other links are
   skipped in this run.

What each answer means is decided by :mod:`pipeline.linkhealth` (pure code); this
module only reports what it saw through ``context.on_result``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from time import monotonic
from typing import Any

import scrapy
from scrapy import Request, signals
from scrapy.exceptions import IgnoreRequest, StopDownload
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from harvesters.failures import (
    BROKEN_ERRORS,
    DATALOSS_ERRORS,
    DNS_ERRORS,
    REFUSED_ERRORS,
    TIMEOUT_ERRORS,
    describe_failure,
)
from harvesters.guard import BlockedAddress
from harvesters.middlewares import GuardRefused, RobotsDeferred, RobotsForbidden
from harvesters.settings import PROXY_MIDDLEWARES
from pipeline.linkhealth import (
    HEAD_FALLBACK_STATUSES,
    HEAD_REFUSED_STATUSES,
    CheckRecord,
    bot_challenge,
    judge_response,
    retry_after_seconds,
)

logger = logging.getLogger(__name__)

#: Bytes of a GET response body read before the download is stopped.
BODY_CAP = 64 * 1024
#: Every error status reaches the callback (3xx still go to the redirect middleware).
ERROR_STATUSES = list(range(400, 600)) + [999]

LINK = "illhub_link"
ATTEMPT = "illhub_attempt"
NOT_BEFORE = "illhub_not_before"
REACHED = "illhub_reached_downloader"
RECEIVED = "illhub_bytes_received"


@dataclass(frozen=True)
class LinkTarget:
    resource_id: str
    url: str


@dataclass
class LinkCheckOptions:
    retries: int = 2
    #: First pause before a retry, in seconds; doubled for each further retry.
    backoff: float = 2.0
    #: Longest Retry-After waited for within a run, in seconds.
    max_retry_after: float = 60.0
    body_cap: int = BODY_CAP


@dataclass
class LinkCheckContext:
    targets: Iterable[LinkTarget]
    on_result: Callable[[CheckRecord], None]
    options: LinkCheckOptions
    requests: int = 0


class HostPaused(IgnoreRequest):
    """The host asked us (Retry-After) to wait longer than this run is willing to."""


class LinkCheckSpider(scrapy.Spider):
    name = "illhub-linkcheck"

    def __init__(self, context: LinkCheckContext, **kwargs: Any):
        super().__init__(**kwargs)
        self.context = context
        self.options = context.options
        #: Hosts that answered HEAD with 405/501: asked with GET for the rest of the run.
        self.head_refused: set[str] = set()
        #: Host → monotonic time before which nothing is sent to it (Retry-After).
        self.host_paused_until: dict[str, float] = {}
        self.host_pause_reason: dict[str, str] = {}
        #: Links waiting for their host: one link per host is in flight at a time, so a
        #: host's pause (Retry-After) and its HEAD refusal apply to all its later links.
        self.queues: dict[str, deque[LinkTarget]] = {}

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> LinkCheckSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._on_reached_downloader, signal=signals.request_reached_downloader)
        crawler.signals.connect(spider._on_headers, signal=signals.headers_received)
        crawler.signals.connect(spider._on_bytes, signal=signals.bytes_received)
        return spider

    # -- requests -------------------------------------------------------------------

    @staticmethod
    def host_of(url: str) -> str:
        return urlparse_cached(Request(url)).hostname or ""

    async def start(self) -> AsyncIterator[Any]:
        for target in self.context.targets:
            self.queues.setdefault(self.host_of(target.url), deque()).append(target)
        for host in list(self.queues):
            request = self._next_for(host)
            if request is not None:
                yield request

    def _next_for(self, host: str) -> Request | None:
        queue = self.queues.get(host)
        if not queue:
            return None
        target = queue.popleft()
        return self._request(target, "GET" if host in self.head_refused else "HEAD", attempt=1)

    def _request(self, target: LinkTarget, method: str, attempt: int, not_before: float = 0.0) -> Request:
        self.context.requests += 1
        return Request(
            target.url, method=method, callback=self.on_response, errback=self.on_error, dont_filter=True,
            meta={LINK: target, ATTEMPT: attempt, NOT_BEFORE: not_before, "handle_httpstatus_list": ERROR_STATUSES,
                  "dont_retry": True, "download_fail_on_dataloss": False},
        )

    # -- signals: timing and the body cap --------------------------------------------

    def _on_reached_downloader(self, request: Request, spider: Any = None) -> None:
        if LINK in request.meta:
            request.meta[REACHED] = monotonic()

    def _on_headers(self, headers: Any, body_length: Any, request: Request, spider: Any = None) -> None:
        # body_length is Twisted's UNKNOWN_LENGTH (a string) when there is no Content-Length
        if LINK in request.meta and request.method == "GET" and isinstance(body_length, int):
            if body_length > self.options.body_cap:
                raise StopDownload(fail=False)

    def _on_bytes(self, data: bytes, request: Request, spider: Any = None) -> None:
        if LINK in request.meta and request.method == "GET":
            received = request.meta.get(RECEIVED, 0) + len(data)
            request.meta[RECEIVED] = received
            if received >= self.options.body_cap:
                raise StopDownload(fail=False)

    # -- results --------------------------------------------------------------------

    def _elapsed_ms(self, request: Request) -> int | None:
        latency = request.meta.get("download_latency")
        if latency is None and REACHED in request.meta:
            latency = monotonic() - request.meta[REACHED]
        return None if latency is None else int(round(latency * 1000))

    def _finish(self, target: LinkTarget, request: Request, outcome: str, *, status: int | None = None,
                final_url: str | None = None, error: str | None = None) -> Iterator[Request]:
        """Report the check, then release the next link of the same host."""
        record = CheckRecord(
            resource_id=target.resource_id, url=target.url, outcome=outcome, http_status=status,
            final_url=final_url, error=error, elapsed_ms=self._elapsed_ms(request), method=request.method,
            attempts=request.meta.get(ATTEMPT, 1),
        )
        try:
            self.context.on_result(record)
        except Exception:  # noqa: BLE001 - one unrecordable link never stops the others
            logger.exception("could not record the check of %s", target.url)
        following = self._next_for(self.host_of(target.url))
        if following is not None:
            yield following

    def _retry_or_none(self, target: LinkTarget, request: Request, retry_after: str | None) -> Request | str | None:
        """A retry request, a reason not to retry (too long a Retry-After), or None when
        the retries are used up."""
        attempt = request.meta.get(ATTEMPT, 1)
        wait = retry_after_seconds(retry_after)
        host = urlparse_cached(request).hostname or ""
        if wait is not None:
            if wait > self.options.max_retry_after:
                self._pause_host(host, wait, f"{host} asked for a pause of {wait:g} s (Retry-After)")
                return f"Retry-After {wait:g} s is longer than this run waits; not retried"
            self._pause_host(host, wait, f"{host} asked for a pause of {wait:g} s (Retry-After)")
        if attempt > self.options.retries:
            return None
        pause = max(self.options.backoff * 2 ** (attempt - 1), wait or 0.0)
        return self._request(target, request.method, attempt + 1, not_before=monotonic() + pause)

    def _pause_host(self, host: str, seconds: float, reason: str) -> None:
        until = monotonic() + seconds
        if until > self.host_paused_until.get(host, 0.0):
            self.host_paused_until[host] = until
            self.host_pause_reason[host] = reason

    def on_response(self, response: Response) -> Iterable[Request]:
        request = response.request
        assert request is not None
        target: LinkTarget = request.meta[LINK]
        headers = {k.decode("latin-1").lower(): b", ".join(v).decode("latin-1") for k, v in response.headers.items()}
        status = response.status
        if request.method == "HEAD" and status in HEAD_FALLBACK_STATUSES and not bot_challenge(status, headers):
            if status in HEAD_REFUSED_STATUSES:
                self.head_refused.add(urlparse_cached(request).hostname or "")
            yield self._request(target, "GET", request.meta.get(ATTEMPT, 1))
            return
        body = response.body if request.method == "GET" else b""
        verdict = judge_response(status, target.url, response.url, headers, body)
        note = verdict.note
        if verdict.retry:
            retry = self._retry_or_none(target, request, headers.get("retry-after"))
            if isinstance(retry, Request):
                yield retry
                return
            if isinstance(retry, str):
                note = f"{note}; {retry}" if note else retry
                if status != 429:
                    # "Down for maintenance, come back later" says nothing about link rot.
                    yield from self._finish(target, request, "skipped", status=status, final_url=response.url,
                                            error=note)
                    return
        if verdict.outcome in ("ok", "redirected") and "download_stopped" in response.flags:
            logger.debug("stopped reading %s after %d bytes", response.url, len(response.body))
        yield from self._finish(target, request, verdict.outcome, status=status, final_url=response.url, error=note)

    def on_error(self, failure: Failure) -> Iterable[Request]:
        request = getattr(failure, "request", None)
        if request is None or LINK not in request.meta:
            return
        target: LinkTarget = request.meta[LINK]
        exc = failure.value
        timeout = self.settings.getfloat("DOWNLOAD_TIMEOUT")
        if isinstance(exc, RobotsDeferred) and exc.cause is not None and not _guarded(exc.cause):
            # robots.txt could not even be fetched: the host is down for this link too.
            cause = Failure(exc.cause)
            cause.request = request  # type: ignore[attr-defined]
            reason = describe_failure(cause, timeout)[0] + " (robots.txt could not be fetched either)"
            yield from self._finish(target, request, "failed", error=reason)
            return
        reason, _, _ = describe_failure(failure, timeout, max_redirects=self.settings.getint("REDIRECT_MAX_TIMES"))
        if isinstance(exc, (HostPaused, RobotsDeferred, RobotsForbidden)) or _guarded(exc):
            # Nothing learnt about the link: the status stays as it was.
            yield from self._finish(target, request, "skipped", error=reason)
            return
        if isinstance(exc, IgnoreRequest):  # too many redirects
            yield from self._finish(target, request, "failed", error=reason)
            return
        transient = (*DNS_ERRORS, *TIMEOUT_ERRORS, *REFUSED_ERRORS, *BROKEN_ERRORS, *DATALOSS_ERRORS, ConnectionDone)
        if isinstance(exc, transient):
            retry = self._retry_or_none(target, request, None)
            if isinstance(retry, Request):
                yield retry
                return
        yield from self._finish(target, request, "failed", error=reason)


def _guarded(exc: BaseException) -> bool:
    """Whether the network guard refused the request (its address or URL is not allowed)."""
    return isinstance(exc, (GuardRefused, BlockedAddress)) or (
        isinstance(exc, DNS_ERRORS) and "network guard" in str(exc)
    )


class LinkCheckPacingMiddleware:
    """Holds a link check back until its retry time, and a host's requests until the end
    of the pause its Retry-After asked for; refuses them when that pause is too long."""

    def __init__(self, crawler: Any):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> LinkCheckPacingMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request, spider: Any = None) -> None:
        spider = self.crawler.spider
        if LINK not in request.meta or not isinstance(spider, LinkCheckSpider):
            return None
        host = urlparse_cached(request).hostname or ""
        until = max(request.meta.get(NOT_BEFORE, 0.0), spider.host_paused_until.get(host, 0.0))
        wait = until - monotonic()
        if wait > spider.options.max_retry_after:
            raise HostPaused(spider.host_pause_reason.get(host, f"{host} is paused") + "; skipped in this run")
        if wait > 0:
            from twisted.internet import reactor
            from twisted.internet.task import deferLater

            await maybe_deferred_to_future(deferLater(reactor, wait, lambda: None))
        return None


def linkcheck_settings_extra() -> dict[str, Any]:
    """What link checks change in :func:`harvesters.settings.harvest_settings`."""
    return {
        "DOWNLOADER_MIDDLEWARES": {
            "harvesters.linkcheck.LinkCheckPacingMiddleware": 40,
            "harvesters.middlewares.NetworkGuardMiddleware": 50,
            "harvesters.middlewares.PoliteRobotsMiddleware": 100,
            **PROXY_MIDDLEWARES,
        },
        "ITEM_PIPELINES": {},
        # Link requests carry dont_retry (the spider retries them itself, with backoff and
        # Retry-After); robots.txt requests keep Scrapy's retries.
    }
