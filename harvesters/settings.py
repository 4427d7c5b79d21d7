"""Scrapy settings for every illhub harvest: polite and bounded by default.

Scrapy's defaults are not enough on their own (see DESIGN.md): its robots.txt
middleware allows everything on a 5xx, it ignores Crawl-delay, keeps ``file:`` and
``data:`` handlers, a telnet console and (since Scrapy 2.19) a "remote control" HTTP
server that runs Python code sent to it, and waits 180 s for a response.
"""

from __future__ import annotations

import os
from typing import Any

from scrapy.settings import default_settings

from pipeline.version import USER_AGENT

#: One request at a time per host, with this many seconds between requests.
DEFAULT_DELAY = 1.0
DEFAULT_TIMEOUT = 20
#: Largest response body accepted (bytes). Anything larger is cut off and reported.
MAX_BODY = 5 * 1024 * 1024


#: Scrapy extensions a harvest never enables (their settings are off): not even imported.
UNUSED_EXTENSIONS = frozenset({
    "scrapy.extensions.remote_control.RemoteControl",
    "scrapy.extensions.telnet.TelnetConsole",
    "scrapy.extensions.feedexport.FeedExporter",
    "scrapy.extensions.memdebug.MemoryDebugger",
    "scrapy.extensions.throttle.AutoThrottle",
})


#: Scrapy downloader middlewares a harvest does not enable (COOKIES_ENABLED is off): not even imported.
UNUSED_DOWNLOADER_MIDDLEWARES = frozenset({
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware",
})


#: In every crawl's DOWNLOADER_MIDDLEWARES: Scrapy's proxy middleware reads proxies from the
#: environment (a proxy would then resolve names the guard never saw); this one only uses --proxy.
PROXY_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
    "harvesters.middlewares.NamedProxyMiddleware": 750,
}

#: Scrapy takes no new response while those whose items are still being processed weigh this
#: much (``SCRAPER_SLOT_MAX_ACTIVE_SIZE``, default 5 MB). With the write-behind
#: (harvesters/writebehind.py) the downloading runs ahead of the writing, and each feed waiting
#: to be written holds its prepared batch: at 5 MB a 1000-feed harvest peaked at 1.43-1.52x a
#: 100-feed one (benchmarks/memory.py, target 1.5x), at 2 MB 1.29x, the feed ingest's time the same.
ACTIVE_RESPONSE_BYTES = 2_000_000


def harvest_settings(*, policy: str = "public", delay: float | None = None, timeout: float | None = None,
                     log_level: str = "ERROR", extra: dict[str, Any] | None = None,
                     proxy: str | None = None) -> dict[str, Any]:
    """``proxy``: the HTTP proxy named with ``--proxy``, or None; proxy variables in the
    environment (``http_proxy``, ``https_proxy``, ``no_proxy``) are never used."""
    delay = DEFAULT_DELAY if delay is None else delay
    settings: dict[str, Any] = {
        "BOT_NAME": "illhub",
        "USER_AGENT": USER_AGENT,
        "ROBOTSTXT_OBEY": False,  # replaced by PoliteRobotsMiddleware (RFC 9309 on 5xx, Crawl-delay)
        "ROBOTSTXT_USER_AGENT": "illhub",
        "ILLHUB_NETWORK_POLICY": policy,
        "ILLHUB_PROXY": proxy,
        "TWISTED_DNS_RESOLVER": "harvesters.resolver.GuardedResolver",
        "DOWNLOADER_MIDDLEWARES": {
            "harvesters.middlewares.NetworkGuardMiddleware": 50,
            **PROXY_MIDDLEWARES,
            "harvesters.middlewares.PoliteRobotsMiddleware": 100,
            # After the guard, before robots.txt: a still-fresh document asks nothing of the host.
            "harvesters.conditional.ConditionalGetMiddleware": 75,
            # Before Scrapy's RetryMiddleware (550) sees the response.
            "harvesters.conditional.RetryAfterMiddleware": 560,
        },
        "ITEM_PIPELINES": {"harvesters.store_pipeline.StorePipeline": 300},
        # Depth is the crawl kind's own business (illhub_depth, max_depth): Scrapy's depth
        # bookkeeping only cost time on every callback's output.
        "SPIDER_MIDDLEWARES": {"scrapy.spidermiddlewares.depth.DepthMiddleware": None},
        "DOWNLOADER_STATS": False,  # byte counts no harvest reads (a source's are in harvest_runs)
        "EXTENSIONS": {"harvesters.extensions.SpacingFromResponse": 100},
        # Scrapy's own extensions less those that are off here anyway: Scrapy imports every
        # extension it lists, and the remote-control module alone pulls in aiohttp (0.15 s of
        # every harvest's start-up). Its setting is off as well (REMOTE_CONTROL_ENABLED).
        "EXTENSIONS_BASE": {k: v for k, v in default_settings.EXTENSIONS_BASE.items() if k not in UNUSED_EXTENSIONS},
        "DOWNLOAD_HANDLERS": {"file": None, "data": None, "s3": None, "ftp": None},
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,  # an HTTP endpoint that executes code: never in a harvester
        "COOKIES_ENABLED": False,
        # Scrapy counts a request waiting for its host's delay as one of these: with 16, a
        # harvest of 40 hosts started them in three waves a delay apart (its busiest host
        # finished 0.4-0.6 s late; benchmarks/politeness.py). Per host it is still one at a time.
        "CONCURRENT_REQUESTS": 64,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        # asyncio tasks for every response's output (default 100): a few are plenty (benchmarks/crawl.py)
        "CONCURRENT_ITEMS": 8,
        "SCRAPER_SLOT_MAX_ACTIVE_SIZE": ACTIVE_RESPONSE_BYTES,
        # Never zero: with no delay Scrapy has been seen sending several requests at once to one host.
        "DOWNLOAD_DELAY": max(delay, 0.001),
        "DOWNLOAD_DELAY_JITTER": 0,
        # A deadline on the whole download (connect, headers and body), not an idle timeout:
        # a server dripping one byte a second is cut off too (tests/reliability prove it).
        "DOWNLOAD_TIMEOUT": DEFAULT_TIMEOUT if timeout is None else timeout,
        "DNS_TIMEOUT": 10,
        "DOWNLOAD_MAXSIZE": MAX_BODY,
        "DOWNLOAD_WARNSIZE": MAX_BODY // 2,
        # A body shorter than its Content-Length (or a reset mid-body) is a failure, not a feed.
        "DOWNLOAD_FAIL_ON_DATALOSS": True,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": 2,
        # 429 is not retried at once: the server asked us to wait (Retry-After), so the source
        # fails for this run with "rate-limited" instead of hammering the host.
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408],
        "REDIRECT_MAX_TIMES": 5,
        "METAREFRESH_ENABLED": False,
        "HTTPERROR_ALLOWED_CODES": [],
        "LOG_LEVEL": log_level,
        "LOG_ENABLED": True,
        "STATS_DUMP": False,
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
        "AUTOTHROTTLE_ENABLED": False,
        # First in, first out within a priority: crawls (priority = -depth) go breadth first and in
        # document order, so which pages a max_pages cap keeps is predictable.
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
        "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
    }
    if os.environ.get("ILLHUB_TEST_FAST"):
        settings["DOWNLOAD_TIMEOUT"] = min(settings["DOWNLOAD_TIMEOUT"], 5)
    if extra:
        settings.update(extra)
    _leave_out_unused_middlewares(settings)
    return settings


def _leave_out_unused_middlewares(settings: dict[str, Any]) -> None:
    """Scrapy's own downloader middlewares less the cookies one when cookies are off: Scrapy
    imports every middleware it lists (even one set to None), and that one's module imports
    tldextract and requests (0.05-0.1 s of every harvest's start-up)."""
    if not settings["COOKIES_ENABLED"]:
        settings.setdefault("DOWNLOADER_MIDDLEWARES_BASE", {
            k: v for k, v in default_settings.DOWNLOADER_MIDDLEWARES_BASE.items() if k not in UNUSED_DOWNLOADER_MIDDLEWARES})
