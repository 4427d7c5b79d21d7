"""URL canonicalization and resource ids (w3lib does the heavy lifting)."""

from __future__ import annotations

import hashlib
from urllib.parse import urljoin, urlsplit, urlunsplit

from w3lib.url import canonicalize_url, safe_url_string, url_query_cleaner

#: Query parameters that only track clicks; removed from every canonical URL.
TRACKING_PARAMS = (
    "fbclid",
    "gclid",
    "dclid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "igshid",
    "yclid",
)

ALLOWED_SCHEMES = ("http", "https")


def absolute_url(url: str | None, base: str | None = None) -> str | None:
    """Return ``url`` made absolute against ``base``, or None if it is not a usable http(s) link.

    ``javascript:``, ``data:``, ``file:``, ``mailto:`` links, protocol-relative links
    (``//host/path``), links with credentials and links without a host are refused.
    """
    if not url or not isinstance(url, str):
        return None
    url = url.strip().replace("\x00", "")
    if not url or url.startswith("//") or url.startswith("\\\\"):
        return None
    scheme = urlsplit(url).scheme.lower()
    if scheme and scheme not in ALLOWED_SCHEMES:
        return None
    if not scheme:
        if not base:
            return None
        url = urljoin(base, url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        return None
    if parts.username or parts.password:
        return None
    return url


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The canonical form of a link, used for ids and dedupe.

    Made absolute, http(s) only, host lower-cased, default port dropped, fragment dropped,
    query sorted and tracking parameters (``utm_*``, ``fbclid``, …) removed.
    """
    url = absolute_url(url, base)
    if url is None:
        return None
    try:
        url = safe_url_string(url)
        parts = urlsplit(url)
        if parts.query:
            keys = [kv.split("=", 1)[0] for kv in parts.query.split("&")]
            drop = [k for k in keys if k.lower().startswith("utm_") or k.lower() in TRACKING_PARAMS]
            if drop:
                url = url_query_cleaner(url, drop, remove=True, keep_fragments=True)
        url = canonicalize_url(url, keep_fragments=False)
    except (ValueError, UnicodeError):
        return None
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    if (parts.scheme, parts.port) in (("http", 80), ("https", 443)):
        # The default port is the same page: https://host:443/a and https://host/a are one resource.
        url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]))
    return url


def resource_id(canonical: str) -> str:
    """A stable id for a canonical URL: 16 hex digits of its SHA-1."""
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:16]
