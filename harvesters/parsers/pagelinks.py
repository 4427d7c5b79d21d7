"""A page's links: every http(s) link of an HTML page, absolute, in document order, read
from lxml's tree once per parsed page (the crawl asks for them again after ``extract_page``)."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from urllib.parse import urlsplit

from lxml import etree
from parsel import Selector
from w3lib.encoding import html_to_unicode

from harvesters.parsers.text import all_elements as _all
from harvesters.parsers.text import clean, normalize_space
from pipeline.urls import absolute_url

_IMG_ALT = etree.XPath(".//img/@alt")


@dataclass
class Link:
    url: str
    text: str


def to_selector(body: bytes | str | Selector, url: str, http_content_type: str | None = None) -> Selector:
    """A parsel Selector for a page given as bytes (decoded as a browser would: BOM, HTTP
    header, ``<meta charset>``, else UTF-8), text, or an existing Selector."""
    if isinstance(body, Selector):
        return body
    if isinstance(body, bytes):
        _, text = html_to_unicode(http_content_type, body)
    else:
        text = body
    text = text.replace("\x00", "")
    if not text.strip():
        text = "<html></html>"
    return Selector(text=text, type="html", base_url=url)


def base_url(sel: Selector, url: str) -> str:
    """The page's ``<base href>`` made absolute, else its URL."""
    root = sel.root
    if isinstance(root, etree._Element):
        href = next((h for h in (b.get("href") for b in _all(root, "base")) if h is not None), None)
    else:
        href = sel.xpath("//base/@href").get()
    return absolute_url(href, url) or url


#: Links read from a parsed page, by base URL (the crawl kind asks again after extract_page).


_LINKS: weakref.WeakKeyDictionary[Selector, dict[str, list[Link]]] = weakref.WeakKeyDictionary()


def extract_links(body: bytes | str | Selector, url: str, http_content_type: str | None = None) -> list[Link]:
    """Every http(s) link of a page, absolute, without fragment, in document order, once each."""
    return [Link(lk.url, lk.text) for lk in page_links(to_selector(body, url, http_content_type), url)]


def link_urls(body: bytes | str | Selector, url: str, http_content_type: str | None = None) -> list[str]:
    """The URLs of :func:`extract_links`."""
    return [lk.url for lk in page_links(to_selector(body, url, http_content_type), url)]


def page_links(sel: Selector, url: str) -> list[Link]:
    """The page's links, read once per parsed page and base URL (shared: never changed)."""
    base = base_url(sel, url)
    known = _LINKS.get(sel)
    if known is not None and base in known:
        return known[base]
    links = _read_links(sel, base)
    _LINKS.setdefault(sel, {})[base] = links
    return links


def _read_links(sel: Selector, base: str) -> list[Link]:
    out: dict[str, Link] = {}
    root = sel.root
    try:
        origin: tuple[str, str] | None = urlsplit(base)[:2]
    except ValueError:
        origin = None
    # lxml's own elements: a parsel Selector per link and per expression cost more than the rest
    anchors = [a for a in _all(root, "a") if a.get("href") is not None] if isinstance(root, etree._Element) else []
    for a in anchors:
        href = _absolute_link(a.get("href", ""), base, origin)
        if not href:
            continue
        href = href.split("#", 1)[0]
        known = out.get(href)
        if known is not None and known.text:
            continue  # the first text of a link is kept
        # what XPath's normalize-space(string(.)) gives (itertext, like string(), skips comments)
        text = clean(normalize_space("".join(a.itertext()))) or clean(a.get("title", ""))
        if not text:
            alts = _IMG_ALT(a)
            text = clean(normalize_space(str(alts[0])) if alts else "")
        if known is None:
            out[href] = Link(href, text[:300])
        elif text:
            known.text = text[:300]
    return list(out.values())


#: :func:`absolute_url` of root-relative links ("/a/b"), by the scheme and host of the base


_ROOT_RELATIVE: dict[tuple[str, str, str], str | None] = {}


def _absolute_link(href: str, base: str, origin: tuple[str, str] | None) -> str | None:
    link = href.strip().replace("\x00", "")  # as absolute_url reads it
    if origin is None or link[:1] != "/" or link[:2] == "//":
        return absolute_url(href, base)
    key = (origin[0], origin[1], link)
    try:
        return _ROOT_RELATIVE[key]
    except KeyError:
        if len(_ROOT_RELATIVE) >= 50_000:
            _ROOT_RELATIVE.clear()
        found = _ROOT_RELATIVE[key] = absolute_url(link, base)
        return found
