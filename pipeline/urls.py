"""URL canonicalization and resource ids (w3lib does the heavy lifting)."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
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
    # A scheme starts with an ASCII letter (urlsplit's rule): most links of a page are relative
    # paths ("/a", "b.html", "?p=2"), told apart without splitting them twice.
    first = url[0]
    try:  # an unclosed "[" of an IPv6 host, in the link or its base, is not a usable link
        scheme = urlsplit(url).scheme.lower() if (first.isascii() and first.isalpha()) or first <= " " else ""
        if scheme and scheme not in ALLOWED_SCHEMES:
            return None
        if not scheme:
            if not base:
                return None
            url = urljoin(base, url)
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        return None
    if parts.username or parts.password:
        return None
    return url


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The canonical form of a link: the one notion of "the same URL", used for ids, dedupe
    and the requests a harvest has already made.

    Made absolute, http(s) only, host lower-cased, default port dropped, fragment dropped,
    query sorted and tracking parameters (``utm_*``, ``fbclid``, …) removed.
    """
    if base is None and isinstance(url, str):
        return _canonical_absolute(url)
    return _canonical(url, base)


@lru_cache(maxsize=65536)
def _canonical_absolute(url: str) -> str | None:
    # Pages of one site link to the same pages again and again (menus, footers): a crawl asks
    # for the canonical form of each link of each page, most of them seen before.
    return _canonical(url, None)


def _canonical(url: str | None, base: str | None) -> str | None:
    url = absolute_url(url, base)
    if url is None:
        return None
    plain = _canonical_plain(url)
    if plain is not None:
        return plain
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


#: A URL :func:`_canonical_plain` reads: http(s), a lower-case host name of letters, digits and
#: hyphens, a port without leading zero, a path and a query of characters that w3lib keeps as
#: they are (no percent sign, no ``;`` parameters, no brackets), any printable fragment.
_PLAIN_URL = re.compile(
    r"(https?)://([a-z0-9.-]{1,253})(?::([1-9][0-9]{0,4}))?"
    r"(/[A-Za-z0-9_~!$&'()*+,=:@/.-]*)?(?:\?([A-Za-z0-9_.~=&-]*))?(?:#[\x21-\x7e]*)?"
)
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PLAIN_QUERY_PART = re.compile(r"[A-Za-z0-9_.~-]*")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _canonical_plain(url: str) -> str | None:
    """What :func:`_canonical` gives for a URL of the most common kind (:data:`_PLAIN_URL`),
    without w3lib's general parsing (half the CPU time of normalizing a feed entry), or None
    for any other URL. It does what w3lib would do to such a URL, and no more: the fragment
    dropped, tracking parameters removed (and with them, as ``url_query_cleaner`` does, any
    parameter repeated after its first occurrence), the query sorted, ``/`` for an empty path,
    the default port dropped. Hosts that w3lib changes (IDNA ``xn--`` labels, hyphens in the
    third and fourth places, numeric endings read as IPv4 addresses) and paths with ``.`` or
    ``..`` segments are left to w3lib (tests/test_normalize.py compares the two)."""
    m = _PLAIN_URL.fullmatch(url)
    if m is None:
        return None
    scheme, host, port, path, query = m.groups()
    labels = host.split(".")
    for label in labels:
        if not _HOST_LABEL.fullmatch(label) or label[2:4] == "--":
            return None
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None
    if port is not None:
        if int(port) > 65535:
            return None
        if port == _DEFAULT_PORTS[scheme]:
            port = None
    if path:
        if "/./" in path or "/../" in path or path.endswith(("/.", "/..")):
            return None
    else:
        path = "/"
    pairs: list[tuple[str, str]] = []
    if query:
        fields = [f for f in query.split("&") if f]
        if any(k.lower().startswith("utm_") or k.lower() in TRACKING_PARAMS for k in (f.split("=", 1)[0]
                                                                                         for f in fields)):
            seen: set[str] = set()
            kept = []
            for f in fields:
                k = f.partition("=")[0]
                if k in seen:
                    continue
                seen.add(k)
                if not (k.lower().startswith("utm_") or k.lower() in TRACKING_PARAMS):
                    kept.append(f)
            fields = kept
        for f in fields:
            k, _, v = f.partition("=")
            if not _PLAIN_QUERY_PART.fullmatch(v):
                return None  # a second "=" is percent-encoded by w3lib
            pairs.append((k, v))
        pairs.sort()
    out = f"{scheme}://{host}:{port}{path}" if port else f"{scheme}://{host}{path}"
    return f"{out}?{'&'.join(f'{k}={v}' for k, v in pairs)}" if pairs else out


def resource_id(canonical: str) -> str:
    """A stable id for a canonical URL: 16 hex digits of its SHA-1."""
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:16]


def host_key(url: str) -> tuple[str, int | None]:
    """Host (lower-case, without a leading ``www.``) and port of a URL, for same-site checks."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "", None
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    if port in (80, 443):
        port = None
    return host, port


def same_site(a: str, b: str) -> bool:
    """Whether two URLs are on the same site (host and port; ``www.`` and http/https ignored)."""
    ka = host_key(a)
    return bool(ka[0]) and ka == host_key(b)


def loose_url_key(url: str | None) -> str:
    """A URL compared loosely, to tell whether two registry sources point at the same address:
    its canonical form with the scheme, a leading ``www.`` and a trailing slash ignored."""
    if not url:
        return ""
    canonical = canonical_url(url.strip()) or url.strip()
    parts = urlsplit(canonical)
    host, port = host_key(canonical)
    where = f"{host}:{port}" if port else host
    return f"{where}{parts.path.rstrip('/')}" + (f"?{parts.query}" if parts.query else "")
