"""Downloader middlewares: the network guard, the proxy a harvest was told to use, and a
robots.txt policy that follows RFC 9309.

Scrapy's own robots.txt middleware lets everything through when robots.txt answers 5xx
and ignores ``Crawl-delay``; :class:`PoliteRobotsMiddleware` treats an unreachable
robots.txt as "try later" and applies ``Crawl-delay`` to the host's download slot.
Scrapy's proxy middleware obeys ``http_proxy`` and friends from the environment, which
would let a proxy resolve names the guard could not check; :class:`NamedProxyMiddleware`
uses only a proxy named with ``--proxy``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from protego import Protego
from scrapy import Request
from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from harvesters.guard import BlockedAddress, Policy, hint, host_problem, parse_ip

logger = logging.getLogger(__name__)

#: Longest Crawl-delay honoured; beyond this a host would block a nightly run.
MAX_CRAWL_DELAY = 60.0


class GuardRefused(IgnoreRequest):
    """The network guard refused the request (scheme, credentials or address)."""


class RobotsForbidden(IgnoreRequest):
    """robots.txt disallows this URL for our User-Agent."""


class RobotsDeferred(IgnoreRequest):
    """robots.txt could not be read (5xx, 429, timeout, refused): RFC 9309 says treat
    the whole host as disallowed for now; the source is deferred, not failed.

    ``cause`` is the download error when robots.txt could not be fetched at all (the
    host refused the connection, timed out, does not resolve), None when it answered;
    ``proxy`` the ``host:port`` of the proxy it was fetched through, if any."""

    def __init__(self, *args: Any, cause: BaseException | None = None, proxy: str | None = None):
        super().__init__(*args)
        self.cause = cause
        self.proxy = proxy


def proxy_address(proxy: str | None) -> str | None:
    """``host:port`` of a proxy URL, without its user name and password (for messages)."""
    if not proxy:
        return None
    parts = urlsplit(proxy)
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


class NetworkGuardMiddleware:
    """Refuses non-http(s) schemes, credentials in URLs and literal non-public addresses
    before anything is sent, then resolves a host name through the guarded resolver
    (:mod:`harvesters.resolver`) so that a name pointing inside the network is refused
    here, with its reason, instead of surfacing as a bare DNS failure. The resolver
    checks again when the connection is made (the answer is cached, so both see the same
    address). Redirects come back through here, so each hop is checked.

    With a proxy (``--proxy``), the proxy is checked first, like any host ("network guard:
    proxy …"), and a host name that does not resolve here is refused: the proxy would
    resolve it itself, to an address nobody checked."""

    def __init__(self, policy: Policy, proxy: str | None = None,
                 resolve: Callable[[str], Awaitable[str]] | None = None):
        self.policy = policy
        self.proxy_host = urlsplit(proxy).hostname if proxy else None
        self._resolve = resolve

    @classmethod
    def from_crawler(cls, crawler: Any) -> NetworkGuardMiddleware:
        return cls(Policy.parse(crawler.settings.get("ILLHUB_NETWORK_POLICY")), crawler.settings.get("ILLHUB_PROXY"))

    async def process_request(self, request: Request, spider: Any = None) -> None:
        parts = urlparse_cached(request)
        if parts.scheme not in ("http", "https"):
            raise GuardRefused(f"network guard: {parts.scheme}: URLs are never fetched ({request.url[:100]})")
        if parts.username or parts.password:
            raise GuardRefused("network guard: URLs with a user name or password are never fetched")
        if self.proxy_host is not None:
            await self._check_host(self.proxy_host, "proxy ")
        await self._check_host(parts.hostname or "")
        return None

    async def _check_host(self, host: str, what: str = "") -> None:
        """Refuse ``host`` (the proxy's when ``what`` is "proxy ") if the policy forbids it,
        written as it is or as it resolves."""
        problem = host_problem(host, self.policy)
        if problem:
            raise GuardRefused(f"network guard: {what}{problem}{hint(self.policy, problem)}")
        if parse_ip(host) is not None:
            return
        try:
            await self._lookup(host)
        except BlockedAddress as e:
            raise GuardRefused(str(e).replace("network guard: ", f"network guard: {what}", 1)) from None
        except Exception:  # noqa: BLE001 - the name does not resolve
            if what:
                raise GuardRefused(f"network guard: proxy {host} does not resolve (check --proxy or "
                                   "ILLHUB_PROXY)") from None
            if self.proxy_host is not None:
                raise GuardRefused(f"network guard: {host} does not resolve here (offline, or a typo?), and the "
                                   "proxy is never asked for a name whose address could not be checked") from None
            return  # without a proxy, the download itself reports the name that does not resolve

    async def _lookup(self, host: str) -> str:
        if self._resolve is not None:
            return await self._resolve(host)
        from scrapy.utils.defer import maybe_deferred_to_future
        from twisted.internet import reactor

        return await maybe_deferred_to_future(reactor.resolve(host))


class NamedProxyMiddleware(HttpProxyMiddleware):
    """Scrapy's proxy middleware (it opens the CONNECT tunnel for https and sends the proxy's
    credentials) with the proxy named by ``--proxy`` (setting ``ILLHUB_PROXY``) and never
    one from the environment: ``http_proxy``, ``https_proxy`` and ``no_proxy`` are ignored,
    so nothing is fetched through a proxy nobody named (see docs/security.md)."""

    def __init__(self, proxy: str | None = None, auth_encoding: str | None = "latin-1"):
        self.auth_encoding = auth_encoding
        self.proxies = {}  # Scrapy fills these from the environment; here they stay empty
        self.proxy = proxy

    @classmethod
    def from_crawler(cls, crawler: Any) -> NamedProxyMiddleware:
        return cls(crawler.settings.get("ILLHUB_PROXY") or None, crawler.settings.get("HTTPPROXY_AUTH_ENCODING"))

    def process_request(self, request: Request, spider: Any = None) -> None:
        if self.proxy:
            request.meta["proxy"] = self.proxy  # every request and every redirect hop
        else:
            request.meta.pop("proxy", None)
        return super().process_request(request)


class _Unavailable:
    def __init__(self, reason: str, blocked: bool = False, cause: BaseException | None = None):
        self.reason = reason
        self.blocked = blocked
        self.cause = cause


class PoliteRobotsMiddleware:
    DOWNLOAD_PRIORITY = 1000

    def __init__(self, crawler: Any):
        self.crawler = crawler
        self.user_agent = crawler.settings.get("ROBOTSTXT_USER_AGENT") or "illhub"
        self.proxy = proxy_address(crawler.settings.get("ILLHUB_PROXY"))
        self._parsers: dict[str, Protego | _Unavailable | None | Deferred] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> PoliteRobotsMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request, spider: Any = None) -> None:
        if request.meta.get("dont_obey_robotstxt"):
            return None
        parser = await self._parser_for(request)
        if isinstance(parser, _Unavailable):
            if parser.blocked:
                raise GuardRefused(parser.reason)
            raise RobotsDeferred(parser.reason, cause=parser.cause, proxy=self.proxy)
        if parser is not None and not parser.can_fetch(request.url, self.user_agent):
            self.crawler.stats.inc_value("illhub/robots_forbidden")
            raise RobotsForbidden(f"robots.txt disallows {request.url}")
        if parser is not None:
            # Handlers that discover links (crawl, sitemap) check them before asking for them.
            request.meta["illhub_robots_can_fetch"] = partial(parser.can_fetch, user_agent=self.user_agent)
        return None

    async def _parser_for(self, request: Request) -> Protego | _Unavailable | None:
        from scrapy.utils.defer import maybe_deferred_to_future

        parts = urlparse_cached(request)
        netloc = parts.netloc
        if netloc not in self._parsers:
            waiter: Deferred = Deferred()
            self._parsers[netloc] = waiter
            robots_url = f"{parts.scheme}://{netloc}/robots.txt"
            result: Protego | _Unavailable | None
            try:
                response = await self.crawler.engine.download_async(
                    Request(robots_url, priority=self.DOWNLOAD_PRIORITY, callback=NO_CALLBACK,
                            meta={"dont_obey_robotstxt": True, "illhub_robots": True}, dont_filter=True)
                )
                result = self._interpret(response, netloc)
            except (GuardRefused, BlockedAddress) as e:
                result = _Unavailable(str(e), blocked=True)
            except Exception as e:  # noqa: BLE001 - any failure means "unreachable" (RFC 9309 2.3.1.4)
                reason = str(e) or type(e).__name__
                result = _Unavailable(f"robots.txt at {robots_url} unreachable ({reason}); host deferred to a later run",
                                      cause=e)
            self._parsers[netloc] = result
            waiter.callback(result)
            return result
        parser = self._parsers[netloc]
        if isinstance(parser, Deferred):
            # Only the first waiter receives the Deferred's result (each callback passes on what it
            # returns, and the first returns None); the result is stored before it fires, so read it.
            await maybe_deferred_to_future(parser)
            return self._parsers[netloc]
        return parser

    def _interpret(self, response: Any, netloc: str) -> Protego | _Unavailable | None:
        status = response.status
        self.crawler.stats.inc_value(f"illhub/robots_status/{status}")
        if status >= 500 or status == 429:
            return _Unavailable(f"robots.txt at {response.url} answered HTTP {status}; host deferred to a later run")
        if status >= 400:
            return None  # RFC 9309: 4xx means no rules
        if status >= 300:
            return None  # a redirect the redirect middleware did not follow: no usable rules
        try:
            body = response.body.decode("utf-8", errors="replace")
            parser = Protego.parse(body)
        except Exception as e:  # noqa: BLE001 - an unparseable robots.txt imposes no rules
            logger.warning("robots.txt at %s could not be parsed (%s); no rules applied", response.url, e)
            return None
        delay = parser.crawl_delay(self.user_agent)
        if delay:
            self._apply_delay(response.request, min(float(delay), MAX_CRAWL_DELAY))
        return parser

    def _apply_delay(self, request: Request, delay: float) -> None:
        downloader = self.crawler.engine.downloader
        key = downloader.get_slot_key(request)
        slot = downloader.slots.get(key)
        if slot is not None and slot.delay < delay:
            slot.delay = delay
            self.crawler.stats.set_value(f"illhub/crawl_delay/{key}", delay)
