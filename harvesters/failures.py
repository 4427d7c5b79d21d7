"""What a failed download means, in one line a maintainer can act on: the reason, the HTTP
status if any, and whether the source is only deferred (robots.txt unreachable: try later).

Shared by the harvest, the link check and ``illhub add-source``'s discovery.
"""

from __future__ import annotations

import scrapy
import scrapy.exceptions
import scrapy.utils.httpobj
from scrapy.exceptions import IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import (
    ConnectionLost,
    ConnectionRefusedError,
    DNSLookupError,
    TCPTimedOutError,
    TimeoutError,
)
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived

from harvesters.guard import BlockedAddress
from harvesters.middlewares import GuardRefused, RobotsDeferred, RobotsForbidden, proxy_address


def _scrapy_errors(*names: str) -> tuple[type[BaseException], ...]:
    """Scrapy's own download exceptions (2.19+ wraps Twisted's in these); absent ones skipped."""
    return tuple(e for e in (getattr(scrapy.exceptions, n, None) for n in names) if isinstance(e, type))


TIMEOUT_ERRORS = (TimeoutError, TCPTimedOutError, *_scrapy_errors("DownloadTimeoutError"))
REFUSED_ERRORS = (ConnectionRefusedError, *_scrapy_errors("DownloadConnectionRefusedError"))
DNS_ERRORS = (DNSLookupError, *_scrapy_errors("CannotResolveHostError"))
DATALOSS_ERRORS = _scrapy_errors("ResponseDataLossError")
BROKEN_ERRORS = (ResponseFailed, ResponseNeverReceived, ConnectionLost, *_scrapy_errors("DownloadFailedError"))
CANCELLED_ERRORS = _scrapy_errors("DownloadCancelledError")


def _is_size_cap(text: str) -> bool:
    text = text.lower()
    return "max size" in text or "maxsize" in text or "larger than download max" in text


def describe_failure(failure: Failure, timeout: float | None = None,
                     max_size: int | None = None, max_redirects: int | None = None) -> tuple[str, int | None, bool]:
    """A one-line reason, the HTTP status if any, and whether it means 'deferred'."""
    exc = failure.value
    request = getattr(failure, "request", None)
    url = request.url if request is not None else ""
    proxy = proxy_address(request.meta.get("proxy")) if request is not None else None
    if isinstance(exc, HttpError):
        status = exc.response.status
        hint = {404: "not found: check the URL", 410: "gone: the page was removed", 403: "forbidden: the site refuses us",
                401: "needs a login", 429: "too many requests: rate-limited",
                407: "the proxy asks for a login: give it as http://user:password@host:port in ILLHUB_PROXY"
                }.get(status, "")
        location = exc.response.headers.get(b"Location") if 300 <= status < 400 else None
        if location is not None:
            target = location.decode("latin-1")[:120]
            hint = f"redirect to {target!r} not followed: only http(s) locations are"
        return f"HTTP {status} from {exc.response.url}" + (f" ({hint})" if hint else ""), status, False
    if isinstance(exc, RobotsDeferred):
        if exc.proxy and isinstance(exc.cause, REFUSED_ERRORS):
            # Only the proxy is ever connected to: the proxy is down, not the site (deferring
            # every source would hide it and exit 0).
            return f"connection refused by the proxy {exc.proxy}: is it running? (check --proxy or ILLHUB_PROXY)", \
                None, False
        if isinstance(exc.cause, DNS_ERRORS) and "network guard" not in str(exc.cause):
            # The host name does not resolve (offline, or a typo): nothing can be fetched from it
            # now or later, so the source failed; "deferred" would hide it and exit 0.
            host = request and scrapy.utils.httpobj.urlparse_cached(request).hostname
            return f"DNS lookup failed for {host or url}: the host name does not resolve (offline, or a typo?)", \
                None, False
        return str(exc), None, True
    if isinstance(exc, (RobotsForbidden, GuardRefused)):
        return str(exc), None, False
    if isinstance(exc, BlockedAddress):
        return str(exc), None, False
    text = str(exc)
    cap = f" ({max_size // (1024 * 1024)} MiB)" if max_size and max_size >= 1024 * 1024 else ""
    if isinstance(exc, DNS_ERRORS):
        if "network guard" in text:
            return text[text.index("network guard"):], None, False
        host = request and scrapy.utils.httpobj.urlparse_cached(request).hostname
        return f"DNS lookup failed for {host or url}: the host name does not resolve (offline, or a typo?)", None, False
    if isinstance(exc, TIMEOUT_ERRORS):
        limit = f" within the {timeout:g} s limit" if timeout else ""
        via = f" through the proxy {proxy}" if proxy else ""
        return f"timed out fetching {url}{via}: no complete response{limit}", None, False
    if isinstance(exc, REFUSED_ERRORS):
        if proxy:
            return f"connection refused by the proxy {proxy} (fetching {url}): check --proxy or ILLHUB_PROXY", \
                None, False
        return f"connection refused by {url}", None, False
    if DATALOSS_ERRORS and isinstance(exc, DATALOSS_ERRORS):
        return (f"the response from {url} was cut off before its announced end "
                "(connection closed or reset mid-body); nothing from it was kept"), None, False
    if CANCELLED_ERRORS and isinstance(exc, CANCELLED_ERRORS):
        # Scrapy cancels a download only for the size cap here (timeouts have their own
        # error); a body that grows past the cap is cancelled without a message.
        if _is_size_cap(text) or not text:
            return f"response from {url} is larger than the size cap{cap}; download stopped, not harvested", None, False
        return f"download of {url} was cancelled ({text[:200]})", None, False
    if isinstance(exc, BROKEN_ERRORS):
        return f"connection broke while reading {url} ({type(exc).__name__})", None, False
    if isinstance(exc, IgnoreRequest):
        if "DOWNLOAD_MAXSIZE" in text:
            return (f"response from {url} expands (decompressed) beyond the size cap{cap}; "
                    "decompression stopped, not harvested"), None, False
        if "max redirections" in text:
            limit = f"more than {max_redirects}" if max_redirects else "too many"
            return f"too many redirects from {url} ({limit}; a redirect loop?)", None, False
        return text or f"request ignored: {url}", None, False
    if _is_size_cap(text):
        return f"response from {url} is larger than the size cap{cap}; not harvested", None, False
    return f"{type(exc).__name__} fetching {url}: {text[:200]}", None, False
