"""The Scrapy side of ``illhub add-source`` and ``illhub check-registry``: fetch the URL and
whatever the proposal (or each source's check) asks for next, through the same downloader,
settings, network guard and robots policy as a harvest. All reading happens in
:mod:`harvesters.discover` and :mod:`harvesters.registry_check`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import scrapy
from scrapy import Request
from scrapy.http import Response
from twisted.python.failure import Failure

from harvesters.discover import NothingHarvestable, Proposal, apply_probe, discover
from harvesters.failures import describe_failure
from harvesters.registry_check import CheckResult, SourceCheck
from harvesters.source import SourceBase
from pipeline.taxonomy import Taxonomy


class DiscoverySpider(scrapy.Spider):
    name = "illhub-discover"

    def __init__(self, url: str, result: dict[str, Any], taxonomy: Taxonomy | None = None,
                 kind: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.start_url = url
        self.result = result
        self.taxonomy = taxonomy
        self.forced_kind = kind
        self.proposal: Proposal | None = None
        self.page_url = url

    async def start(self) -> AsyncIterator[Any]:
        yield Request(self.start_url, callback=self.parse_page, errback=self.page_failed, dont_filter=True)

    def _timeout(self) -> float:
        return self.settings.getfloat("DOWNLOAD_TIMEOUT")

    def page_failed(self, failure: Failure) -> None:
        reason, _status, deferred = describe_failure(failure, self._timeout())
        self.result["error"] = reason
        self.result["deferred"] = deferred

    def parse_page(self, response: Response) -> Iterable[Request]:
        self.page_url = response.url
        self.result["final_url"] = response.url
        try:
            proposal = discover(response.body, response.url, dict(response.headers), taxonomy=self.taxonomy)
        except NothingHarvestable as e:
            self.result["error"] = str(e)
            return
        if self.forced_kind:
            proposal.restrict(self.forced_kind)
        self.proposal = self.result["proposal"] = proposal
        yield from self._next()

    def _next(self) -> Iterable[Request]:
        assert self.proposal is not None
        c = self.proposal.next_probe()
        if c is not None:
            yield Request(c.probe, callback=self.parse_probe, errback=self.probe_failed, dont_filter=True,
                          meta={"handle_httpstatus_all": True})

    def parse_probe(self, response: Response) -> Iterable[Request]:
        assert self.proposal is not None
        apply_probe(self.proposal, response.status, response.body, dict(response.headers), page_url=self.page_url)
        yield from self._next()

    def probe_failed(self, failure: Failure) -> Iterable[Request]:
        assert self.proposal is not None
        reason, status, _deferred = describe_failure(failure, self._timeout())
        apply_probe(self.proposal, None, b"", error=reason, page_url=self.page_url)
        yield from self._next()


class RegistryCheckSpider(scrapy.Spider):
    """Every source's check at once; Scrapy's per-host limit (one request at a time, with the
    delay) keeps it polite. A check that fails, or whose reader raises, ends that source only."""

    name = "illhub-check-registry"

    def __init__(self, checks: Sequence[SourceCheck], progress: Callable[[int, int, CheckResult], None] | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.checks = list(checks)
        self.progress = progress
        self.done = 0

    async def start(self) -> AsyncIterator[Any]:
        for index, check in enumerate(self.checks):
            request = self._request(index)
            if request is None:
                self._finished(check)
            else:
                yield request

    def _request(self, index: int) -> Request | None:
        c = self.checks[index].next_probe()
        if c is None or not c.probe:
            return None
        return Request(c.probe, callback=self.parse_probe, errback=self.probe_failed, dont_filter=True,
                       meta={"handle_httpstatus_all": True, "illhub_check": index})

    def _next(self, index: int) -> Iterable[Request]:
        request = self._request(index)
        if request is None:
            self._finished(self.checks[index])
        else:
            yield request

    def _finished(self, check: SourceCheck) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, len(self.checks), check.result())

    def parse_probe(self, response: Response) -> Iterable[Request]:
        index = response.meta["illhub_check"]
        self.checks[index].read(response.status, response.body, dict(response.headers), url=response.url)
        yield from self._next(index)

    def probe_failed(self, failure: Failure) -> Iterable[Request]:
        index = failure.request.meta["illhub_check"]
        reason, status, deferred = describe_failure(failure, self.settings.getfloat("DOWNLOAD_TIMEOUT"))
        self.checks[index].read(status, b"", error=reason, deferred=deferred, url=failure.request.url)
        yield from self._next(index)


def _crawl_settings(policy: str, delay: float | None, timeout: float | None, user_agent: str | None,
                    log_level: str, proxy: str | None = None) -> dict[str, Any]:
    from harvesters.settings import harvest_settings

    extra: dict[str, Any] = {"ITEM_PIPELINES": {}, "RETRY_TIMES": 1, "LOG_INSTALL_ROOT_HANDLER": True}
    if user_agent:
        extra["USER_AGENT"] = user_agent
    return harvest_settings(policy=policy, delay=delay, timeout=timeout, log_level=log_level, extra=extra,
                            proxy=proxy)


def run_registry_check(sources: Sequence[SourceBase], *, policy: str = "public", delay: float | None = None,
                       timeout: float | None = None, user_agent: str | None = None, log_level: str = "ERROR",
                       progress: Callable[[int, int, CheckResult], None] | None = None,
                       proxy: str | None = None) -> list[CheckResult]:
    """Check every source in one short crawl; one result per source, in the given order."""
    from scrapy.crawler import CrawlerProcess

    checks = [SourceCheck(s) for s in sources]
    process = CrawlerProcess(_crawl_settings(policy, delay, timeout, user_agent, log_level, proxy))
    process.crawl(RegistryCheckSpider, checks=checks, progress=progress)
    process.start()
    return [c.result() for c in checks]


def run_discovery(url: str, *, policy: str = "public", delay: float | None = None, timeout: float | None = None,
                  kind: str | None = None, taxonomy: Taxonomy | None = None, user_agent: str | None = None,
                  log_level: str = "ERROR", proxy: str | None = None) -> dict[str, Any]:
    """Fetch and discover in one short crawl. Returns ``{"proposal": Proposal}`` or
    ``{"error": "one line"}`` (and ``final_url`` after redirects)."""
    from scrapy.crawler import CrawlerProcess

    result: dict[str, Any] = {}
    process = CrawlerProcess(_crawl_settings(policy, delay, timeout, user_agent, log_level, proxy))
    process.crawl(DiscoverySpider, url=url, result=result, taxonomy=taxonomy, kind=kind)
    process.start()
    return result
