"""Metadata of one HTML page: a pure function (bytes or str + URL in, a plain dict out).

Structured data is read with extruct (JSON-LD, OpenGraph, microdata); the rest of the
page with parsel/lxml XPath; URLs with w3lib. No network, no Scrapy: the crawler, the
sitemap and any other caller (``illhub add-source`` discovery) hand it a page's bytes.

Precedence, first non-empty wins (the title excepted):

* title: by agreement. ``og:title``, JSON-LD ``headline``/``name``, microdata, Dublin Core
  ``title``, ``<title>`` and the first ``<h1>``, each without a part naming the site
  (" | Site name", "Site name - …", where the site's name is its ``og:site_name``,
  ``application-name``, JSON-LD WebSite or publisher, or Dublin Core publisher): the value
  most of them agree on wins, ties in that order
* description: ``<meta name=description>`` → ``og:description`` → JSON-LD/microdata
  ``description`` → Dublin Core ``description`` → the first meaningful paragraph of the main content
* canonical URL: ``<link rel=canonical>``, only when it is on the same site as the page
* published: JSON-LD/microdata ``datePublished`` → ``article:published_time`` → date
  ``<meta>`` tags (Dublin Core, citation) → ``<time itemprop=datePublished|pubdate>`` →
  the first ``<time datetime>`` of the main content
* modified: JSON-LD/microdata ``dateModified`` → ``article:modified_time`` /
  ``og:updated_time`` → modified ``<meta>`` tags → ``<time itemprop=dateModified>`` →
  a visible "Last updated: …" / "Last modified …" line
* language: ``<html lang>`` → ``Content-Language`` meta → ``og:locale`` → JSON-LD ``inLanguage``
  → Dublin Core ``language``
* author: JSON-LD/microdata ``author`` → ``<meta name=author>`` → ``article:author`` (when a name)
  → Dublin Core ``creator``
* publisher: JSON-LD ``publisher`` → Dublin Core ``publisher`` → ``og:site_name`` → ``application-name``
* content type: see :func:`infer_content_type`

Dublin Core is read in both spellings (``DC.Title``, ``dcterms.title``), any case, from
``<meta name>`` or ``<meta property>``; its dates (``DC.Date.Created``, ``DC.Date.Modified``,
``dcterms.issued`` …) are among the date ``<meta name>`` tags.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lxml import etree
from parsel import Selector

from harvesters.parsers.extruct_lite import read_structured
from harvesters.parsers.links import is_document_url, is_video_url, url_path_lower
from harvesters.parsers.maincontent import MainContent, excerpt, has_class
from harvesters.parsers.pagelinks import Link, base_url, extract_links, link_urls, page_links, to_selector
from harvesters.parsers.structured import as_list, first_str, jsonld_nodes, main_node, names, schema_types
from harvesters.parsers.text import (
    EXCERPT_CHARS,
    clean,
    first_paragraph,
    normalize_space,
    visible_updated,
)
from harvesters.parsers.text import all_elements as _all
from harvesters.parsers.text import string_of as _STRING
from harvesters.parsers.titles import by_agreement
from pipeline.normalize import parse_date
from pipeline.urls import absolute_url, same_site

DOC_PLATFORMS = ("mindtouch", "zendesk", "confluence", "docusaurus", "mkdocs", "sphinx", "read the docs",
                 "gitbook", "helpscout", "document360", "knowledge base", "help center")
DOC_PATH_WORDS = ("help", "hc", "docs", "doc", "documentation", "kb", "knowledge", "knowledgebase", "manual",
                  "manuals", "support", "product_documentation", "userguide", "user-guide", "faq")
DOC_HOST_PREFIXES = ("help.", "docs.", "support.", "knowledge.", "kb.", "documentation.")

ARTICLE_TYPES = {"Article", "BlogPosting", "NewsArticle", "Report", "ScholarlyArticle", "SocialMediaPosting",
                 "LiveBlogPosting", "OpinionNewsArticle", "AnalysisNewsArticle"}
DOC_TYPES = {"TechArticle", "APIReference", "HowTo"}
VIDEO_TYPES = {"VideoObject", "Clip", "Episode"}
DOCUMENT_TYPES = {"DigitalDocument", "PresentationDigitalDocument", "TextDigitalDocument"}
PAGE_TYPES = {"WebPage", "AboutPage", "CollectionPage", "ItemPage", "FAQPage", "QAPage", "ContactPage",
              "ProfilePage", "SearchResultsPage", "MedicalWebPage", "RealEstateListing", "CheckoutPage"}
MAIN_TYPES_ORDER = (VIDEO_TYPES, DOC_TYPES, ARTICLE_TYPES, DOCUMENT_TYPES, {"Event", "Course"}, PAGE_TYPES)
ORGANIZATION_TYPES = {"Organization", "Library", "CollegeOrUniversity", "GovernmentOrganization", "NGO",
                      "EducationalOrganization", "Corporation"}

PUBLISHED_META = ("citation_publication_date", "citation_date", "dc.date", "dc.date.issued", "dc.date.created",
                  "dc.date.published", "dc.created", "dc.issued", "dcterms.date", "dcterms.issued", "dcterms.created",
                  "date", "pubdate", "publish-date", "publish_date", "article.published", "sailthru.date")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
MODIFIED_META = ("dcterms.modified", "dc.date.modified", "dc.modified", "last-modified", "lastmod", "revised",
                 "article.updated", "modified")

# The expressions, compiled once and run on lxml's tree: through parsel, each call compiled its
# expression again and wrapped every result in a Selector, which cost more than the search.
# Elements found by their tag alone are found with lxml's iter(tag) (:func:`_all`): an XPath
# call costs more than such a walk.
_IMG_ALT = etree.XPath(".//img/@alt")
_HTML_TITLE = etree.XPath("//head/title/text() | //title/text()")
_FIRST_H1 = etree.XPath("normalize-space(string((//h1)[1]))")
_CANONIL = str.maketrans("CANONIL", "canonil")
_PUBLISHED_TIMES = etree.XPath(
    f"//*[@itemprop][@itemprop='datePublished'] | //time[@pubdate or @class and {has_class('published')}]")
_MODIFIED_TIMES = etree.XPath(f"//*[@itemprop][@itemprop='dateModified'] | //time[@class][{has_class('updated')}]")
_HTML_LANG = etree.XPath("/html/@lang | /html/@xml:lang")
_HTTP_LANG = etree.XPath("//meta[@http-equiv][translate(@http-equiv, 'CONTENTLAGU', 'contentlagu')="
                         "'content-language']/@content")
_PLATFORM = etree.XPath(f"boolean(//*[@class][contains(@class, 'zendesk') or {has_class('mt-content-container')}]"
                        " | //meta[@name='mindtouch-page-id'])")


def _first(found: list[Any]) -> str | None:
    """The first result of an XPath as text (what parsel's ``.get()`` gives), else None."""
    return str(found[0]) if found else None


# -- helpers --------------------------------------------------------------------------


def _clean_str(value: Any) -> str:
    return clean(value) if isinstance(value, str) else ""


def _language(value: str | None) -> str | None:
    value = (value or "").strip().replace("_", "-")
    if not value or len(value) > 20 or not all(part.isalnum() for part in value.split("-")):
        return None
    primary, *rest = value.split("-")
    if not primary.isalpha() or not 2 <= len(primary) <= 3:
        return None
    return "-".join([primary.lower(), *[r.upper() if len(r) == 2 else r for r in rest]])


# -- the extractor ---------------------------------------------------------------------


#: (urljoin takes nothing else from it for them): the pages of a site link the same paths again
#: and again.
def infer_content_type(*, url: str, og_type: str, main_types: set[str], generator: str, has_video: bool,
                       published: str | None, sel: Selector | None = None) -> str:
    """``document`` for PDFs and slides; ``video`` when the page says it is a video;
    ``documentation`` for help and documentation sites (platform, JSON-LD TechArticle or
    HowTo, a help/docs host or path); ``article`` for articles and blog posts; ``video``
    for pages built around an embedded recording; else ``page``."""
    if is_document_url(url):
        return "document"
    og_type = og_type.lower()
    if og_type.startswith("video") or main_types & VIDEO_TYPES:
        return "video"
    if main_types & DOCUMENT_TYPES:
        return "document"
    low_gen = generator.lower()
    host = (urlsplit(url).hostname or "").lower()
    segments = [s for s in url_path_lower(url).split("/") if s]
    platform = any(p in low_gen for p in DOC_PLATFORMS)
    if sel is not None and not platform:
        root = sel.root
        platform = bool(_PLATFORM(root)) if isinstance(root, etree._Element) else bool(sel.xpath(
            "//*[contains(concat(' ', normalize-space(@class), ' '), ' mt-content-container ')]"
            " | //meta[@name='mindtouch-page-id'] | //*[contains(@class, 'zendesk')]"))
    if main_types & DOC_TYPES or platform or host.startswith(DOC_HOST_PREFIXES) \
            or any(s in DOC_PATH_WORDS for s in segments[:3]):
        return "documentation"
    if og_type == "article" or main_types & ARTICLE_TYPES:
        return "article"
    if has_video:
        return "video"
    return "page"


@dataclass
class _Structured:
    """What a page says about itself in markup: OpenGraph, JSON-LD and microdata (its main
    nodes first), and its ``<meta name=…>`` tags."""

    sel: Selector
    og: dict[str, Any]
    nodes: list[dict[str, Any]]
    by_id: dict[str, dict[str, Any]]
    main: dict[str, Any]
    micro: dict[str, Any]
    found: list[str]
    #: The first ``<meta name>`` content by (ASCII-)lower-cased name; (position, content) of the first
    #: non-blank ``<meta name|property>`` by lower-cased key (Dublin Core).
    metas: dict[str, str] = field(default_factory=dict)
    keyed: dict[str, tuple[int, str]] = field(default_factory=dict)

    @classmethod
    def read(cls, sel: Selector, base: str) -> _Structured:
        data = read_structured(sel.root, base)
        og: dict[str, Any] = {}
        for item in data.get("opengraph", []):
            for k, v in item.items():
                if not k.startswith("@") or k == "@type":
                    og.setdefault(k, v)
        nodes = jsonld_nodes(data.get("json-ld", []))
        micro_nodes = [n for n in data.get("microdata", []) if isinstance(n, dict)]
        found = cls(sel, og, nodes, {n["@id"]: n for n in nodes if isinstance(n.get("@id"), str)},
                    main_node(nodes, MAIN_TYPES_ORDER) or {},
                    main_node(micro_nodes, MAIN_TYPES_ORDER) or (micro_nodes[0] if micro_nodes else {}),
                    sorted(k for k in ("json-ld", "opengraph", "microdata") if data.get(k)))
        found._read_metas()
        return found

    def _read_metas(self) -> None:
        """One pass over the page's ``<meta>`` tags for :meth:`meta` and :meth:`dc`."""
        root = self.sel.root
        metas = [m for m in _all(root, "meta") if m.get("content") is not None] if isinstance(root, etree._Element) else ()
        for i, node in enumerate(metas):
            content, name = node.get("content"), node.get("name")
            if name is not None:  # XPath's translate(@name, 'A…Z', 'a…z'): ASCII letters only
                self.metas.setdefault(name.translate(_ASCII_LOWER), content)
            key = (name or node.get("property") or "").strip().lower()
            if key and content.strip() and key not in self.keyed:
                self.keyed[key] = (i, content)

    def meta(self, *names: str) -> str:
        """The first ``<meta name>`` content of ``names`` (any ASCII case) that is not blank."""
        for name in names:
            v = self.metas.get(name)
            if v and v.strip():
                return v.strip()
        return ""

    def og_str(self, key: str) -> str:
        return _clean_str(self.og.get(key))

    def dc(self, *elements: str) -> str:
        """A Dublin Core element from ``<meta>`` (``DC.Title``, ``dcterms.creator``, ``DC:date``: any
        case, ``name`` or ``property``), the first of ``elements`` that the page has."""
        for element in elements:
            found = [self.keyed[k] for k in (f"{prefix}{sep}{element}" for prefix in ("dc", "dcterms")
                                             for sep in (".", ":")) if k in self.keyed]
            if found:
                return clean(min(found)[1])  # the first in the page
        return ""

    def site_names(self) -> list[str]:
        """What the page calls its site: ``og:site_name``, ``application-name``, its JSON-LD
        WebSite and publisher, its Dublin Core publisher."""
        found = [self.og_str("og:site_name"), clean(self.meta("application-name")),
                 *names([n for n in self.nodes if "WebSite" in schema_types(n)], self.by_id),
                 *self.publishers(), self.dc("publisher")]
        return [n for n in dict.fromkeys(found) if n]

    def names(self, key: str) -> list[str]:
        """Names under ``key`` in the main JSON-LD node, else the microdata one."""
        return names(self.main.get(key), self.by_id) or names(self.micro.get(key), self.by_id)

    def date(self, key: str) -> str | None:
        return parse_date(first_str(self.main.get(key)) or None) or parse_date(first_str(self.micro.get(key)) or None)

    def publishers(self) -> list[str]:
        found = self.names("publisher")
        if not found and self.dc("publisher"):
            found = [self.dc("publisher")]
        if not found:
            orgs = [n for n in self.nodes if set(schema_types(n)) & ORGANIZATION_TYPES]
            found = names(orgs[:1], self.by_id)
        return found

    def types(self) -> set[str]:
        return set(schema_types(self.main)) | set(schema_types(self.micro))


def _title(sel: Selector, s: _Structured, site_names: list[str]) -> tuple[str | None, str]:
    """The title the page's sources agree on. Candidates, each without a part naming the site:
    ``og:title``, JSON-LD ``headline``/``name``, microdata, Dublin Core ``title``, ``<title>``,
    the first ``<h1>``. The one most others agree with wins; ties go to that order. A JSON-LD
    headline that is really a short description (encyclopedia pages) thus loses to the title
    that ``<title>`` and ``<h1>`` share."""
    root = sel.root
    titles = list(_all(root, "title"))
    if all(len(t) == 0 for t in titles):  # their text nodes are their texts: the first one
        html_title = clean(next((t.text for t in titles if t.text), ""))
    else:
        html_title = clean(_first(_HTML_TITLE(root)) or "")
    h1 = clean(_FIRST_H1(root))
    found = [
        ("og", s.og_str("og:title")),
        ("json-ld", _clean_str(s.main.get("headline")) or _clean_str(s.main.get("name"))),
        ("microdata", _clean_str(s.micro.get("headline")) or _clean_str(s.micro.get("name"))),
        ("dc", s.dc("title")),
        ("title", html_title),
        ("h1", h1),
    ]
    return by_agreement(found, site_names)


def _description(s: _Structured, main: MainContent, title: str) -> tuple[str | None, str]:
    candidates = (  # each read only when those before it are empty
        ("meta", lambda: clean(s.meta("description"))),
        ("og", lambda: s.og_str("og:description")),
        ("json-ld", lambda: _clean_str(s.main.get("description"))),
        ("microdata", lambda: _clean_str(s.micro.get("description"))),
        ("dc", lambda: s.dc("description")),
        ("paragraph", lambda: first_paragraph(main.content, skip=title)),
    )
    for k, read in candidates:
        v = read()
        if v:
            return k, v
    return None, ""


def _canonical(sel: Selector, base: str, url: str) -> str | None:
    # //link[contains(concat(' ', normalize-space(translate(@rel, 'CANONIL', 'canonil')), ' '),
    # ' canonical ')]/@href
    href = None
    for link in _all(sel.root, "link"):
        rel = link.get("rel")
        if rel is not None and " canonical " in f" {normalize_space(rel.translate(_CANONIL))} " \
                and link.get("href") is not None:
            href = link.get("href")
            break
    if href:
        candidate = absolute_url(href.strip(), base)
        if candidate and same_site(candidate, url):
            return candidate.split("#", 1)[0]
    return None


def _time_attr(sel: Selector, xpath: etree.XPath) -> str | None:
    for node in xpath(sel.root)[:5]:
        d = parse_date(node.get("datetime") or node.get("content") or _STRING(node))
        if d:
            return d
    return None


def _published(sel: Selector, s: _Structured, main: MainContent) -> str | None:
    published = (
        s.date("datePublished")
        or parse_date(s.og_str("article:published_time") or None)
        or next(filter(None, (parse_date(s.meta(n) or None) for n in PUBLISHED_META)), None)
        or _time_attr(sel, _PUBLISHED_TIMES)
    )
    if not published and main.content is not None:
        for t in [t for t in main.content.iterdescendants("time") if t.get("datetime") is not None][:3]:
            published = parse_date(t.get("datetime"))
            if published:
                break
    return published


def _modified(sel: Selector, s: _Structured) -> str | None:
    return (
        s.date("dateModified")
        or parse_date(s.og_str("article:modified_time") or None)
        or parse_date(s.og_str("og:updated_time") or None)
        or next(filter(None, (parse_date(s.meta(n) or None) for n in MODIFIED_META)), None)
        or _time_attr(sel, _MODIFIED_TIMES)
        or visible_updated(sel)
    )


def _page_language(sel: Selector, s: _Structured) -> str | None:
    return (
        _language(_first(_HTML_LANG(sel.root)))
        or _language(_first(_HTTP_LANG(sel.root)))
        or _language(s.og_str("og:locale"))
        or _language(first_str(s.main.get("inLanguage")))
        or _language(s.dc("language"))
    )


def _authors(s: _Structured) -> list[str]:
    authors = s.names("author")
    if not authors and s.meta("author"):
        authors = [clean(s.meta("author"))]
    if not authors and s.og.get("article:author"):
        authors = names(s.og.get("article:author"), s.by_id)
    if not authors and s.dc("creator"):
        authors = [s.dc("creator")]
    return authors


def _tags(s: _Structured) -> list[str]:
    tags: list[str] = []
    keywords = s.main.get("keywords")
    tag = s.og.get("article:tag")
    for raw in [s.meta("keywords"), *as_list(keywords or ""), *([tag] if isinstance(tag, str) else [])]:
        for t in str(raw).split(","):
            t = clean(t, 60)
            if t and t not in tags:
                tags.append(t)
    return tags[:20]


def _feeds(sel: Selector, base: str) -> list[dict[str, str]]:
    feeds = []
    for link in _all(sel.root, "link"):
        kind = link.get("type") or ""
        if link.get("rel") != "alternate" or link.get("href") is None or ("rss" not in kind and "atom" not in kind):
            continue
        feed_url = absolute_url(link.get("href"), base)
        if feed_url:
            feeds.append({"url": feed_url, "title": clean(link.get("title", "")), "type": link.get("type", "")})
    return feeds


def _has_video(sel: Selector, base: str) -> bool:
    root = sel.root
    return any(True for _ in _all(root, "video")) or any(
        is_video_url(absolute_url(src, base) or "") for src in (f.get("src") for f in _all(root, "iframe"))
        if src is not None)


def extract_page(body: bytes | str | Selector, url: str, *, http_content_type: str | None = None,
                 excerpt_chars: int = EXCERPT_CHARS) -> dict[str, Any]:
    """Everything illhub reads from one HTML page, as a JSON-friendly dict.

    Keys: ``url``, ``canonical_url`` (None unless a same-site ``rel=canonical``), ``title``,
    ``title_from`` (og, json-ld, microdata, title, h1 or None), ``description``,
    ``description_from``, ``published``, ``modified`` (UTC ISO-8601 or None), ``language``,
    ``author``, ``publisher``, ``site_name``, ``content_type``, ``excerpt`` (at most
    ``excerpt_chars`` characters of the main content's text), ``thumbnail``, ``tags``,
    ``generator``, ``feeds`` (alternate RSS/Atom links), ``documents`` (same-site links to
    PDFs and slides, each ``{url, text}``), ``video_links`` and ``structured`` (which
    metadata styles were found). Never raises on odd markup.
    """
    sel = to_selector(body, url, http_content_type)
    base = base_url(sel, url)
    s = _Structured.read(sel, base)
    site_name = s.og_str("og:site_name") or s.meta("application-name")
    publishers = s.publishers()
    title_from, title = _title(sel, s, s.site_names())
    main = MainContent(sel)
    description_from, description = _description(s, main, title)
    published = _published(sel, s, main)
    links = page_links(sel, url)  # it reads <base href> itself
    generator = clean(s.meta("generator"), 200)
    content_type = infer_content_type(url=url, og_type=s.og_str("@type"), main_types=s.types(), generator=generator,
                                      has_video=_has_video(sel, base), published=published, sel=sel)
    authors = _authors(s)
    return {
        "url": url, "canonical_url": _canonical(sel, base, url),
        "title": title, "title_from": title_from, "description": description, "description_from": description_from,
        "published": published, "modified": _modified(sel, s), "language": _page_language(sel, s),
        "author": ", ".join(authors[:5]) or None,
        "publisher": publishers[0] if publishers else (site_name or None),
        "site_name": site_name or None,
        "content_type": content_type,
        "excerpt": excerpt(main, excerpt_chars) or None,
        "thumbnail": absolute_url(first_str(s.og.get("og:image")), base)
        or absolute_url(first_str(s.main.get("image")), base),
        "tags": _tags(s),
        "generator": generator or None,
        "feeds": _feeds(sel, base),
        "documents": [asdict(lk) for lk in links if is_document_url(lk.url) and same_site(lk.url, url)],
        "video_links": [lk.url for lk in links if is_video_url(lk.url)][:50],
        "structured": s.found,
    }


__all__ = ["Link", "extract_page", "extract_links", "infer_content_type", "link_urls", "to_selector"]
