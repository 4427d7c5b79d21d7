"""Sitemaps (sitemaps.org 0.9): ``urlset`` and ``sitemapindex`` documents, gzip-compressed
or not, and the ``Sitemap:`` lines of a robots.txt. Pure: bytes in, entries out.

The XML parser resolves no entities and fetches nothing; a gzip body is inflated only up
to a size cap, so a small compressed bomb cannot fill memory.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from lxml import etree
from protego import Protego

from pipeline.normalize import parse_date
from pipeline.urls import absolute_url

#: The sitemap protocol's own limit for one uncompressed sitemap.
MAX_UNCOMPRESSED = 50 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


class NotASitemap(ValueError):
    """The document is neither a sitemap, a sitemap index nor a robots.txt with Sitemap lines."""


@dataclass
class SitemapEntry:
    url: str
    lastmod: str | None = None


@dataclass
class ParsedSitemap:
    kind: str  # "urlset", "sitemapindex" or "robots"
    pages: list[SitemapEntry] = field(default_factory=list)
    sitemaps: list[SitemapEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def gunzip(body: bytes, max_size: int = MAX_UNCOMPRESSED) -> bytes:
    """Inflate a gzip body, refusing to produce more than ``max_size`` bytes."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, max_size + 1)
    except zlib.error as e:
        raise NotASitemap(f"the gzip data is corrupt ({e})") from None
    if len(out) > max_size or d.unconsumed_tail:
        raise NotASitemap(f"the sitemap is larger than {max_size // (1024 * 1024)} MB uncompressed; not read")
    return out


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def parse_robots_sitemaps(body: bytes, url: str) -> ParsedSitemap:
    text = body.decode("utf-8", errors="replace")
    rp = Protego.parse(text)
    found = []
    for s in rp.sitemaps:
        absolute = absolute_url(s.strip(), url)
        if absolute:
            found.append(SitemapEntry(absolute))
    return ParsedSitemap("robots", sitemaps=found)


def parse_sitemap(body: bytes, url: str, *, max_size: int = MAX_UNCOMPRESSED) -> ParsedSitemap:
    """Read a sitemap, a sitemap index (gzip or not), or a robots.txt's ``Sitemap:`` lines.

    Raises :class:`NotASitemap` for anything else (an HTML page, an error page)."""
    if body[:2] == GZIP_MAGIC:
        body = gunzip(body, max_size)
    head = body[:512].lstrip().lower()
    if url.lower().split("?", 1)[0].endswith("/robots.txt") or head.startswith((b"user-agent", b"sitemap:", b"#")):
        parsed = parse_robots_sitemaps(body, url)
        if not parsed.sitemaps:
            raise NotASitemap("the robots.txt lists no Sitemap: lines")
        return parsed
    if not body.strip():
        raise NotASitemap("the response is empty")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, remove_comments=True,
                             remove_pis=True, huge_tree=False)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as e:
        raise NotASitemap(f"not XML ({e})") from None
    if root is None:
        raise NotASitemap("not XML")
    kind = _local(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        if kind == "html" or b"<html" in head:
            raise NotASitemap("got an HTML page, not a sitemap (check the URL; robots.txt often names the sitemap)")
        raise NotASitemap(f"the XML root is <{kind}>, not <urlset> or <sitemapindex>")
    result = ParsedSitemap(kind)
    child = "url" if kind == "urlset" else "sitemap"
    bad = 0
    for el in root:
        if _local(el.tag) != child:
            continue
        loc = lastmod = None
        for sub in el:
            name = _local(sub.tag)
            if name == "loc":
                loc = (sub.text or "").strip()
            elif name == "lastmod":
                lastmod = parse_date((sub.text or "").strip() or None)
        absolute = absolute_url(loc, url) if loc else None
        if not absolute:
            bad += 1
            continue
        (result.pages if kind == "urlset" else result.sitemaps).append(SitemapEntry(absolute, lastmod))
    if bad:
        result.warnings.append(f"{url}: {bad} entries without a usable <loc> were skipped")
    return result
