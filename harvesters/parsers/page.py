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

import copy
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import extruct
import html_text
from lxml import etree
from parsel import Selector
from w3lib.encoding import html_to_unicode

from harvesters.parsers.links import is_document_url, is_video_url, url_path_lower
from harvesters.parsers.structured import as_list, first_str, jsonld_nodes, main_node, names, schema_types
from harvesters.parsers.text import EXCERPT_CHARS, first_paragraph, normalize_space, visible_updated
from harvesters.parsers.titles import by_agreement
from pipeline.normalize import clean_text, parse_date
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

#: Where the main content usually is, tried in order (platform containers included).
MAIN_XPATHS = (
    "//main", "//*[@role='main']", "//article",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' mt-content-container ')]",  # MindTouch
    "//*[@id='s-lg-guide-main']",  # LibGuides
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' article-body ')]",  # Zendesk
    "//*[@id='content' or @id='main-content' or @id='main' or @id='primary']",
    "//body",
)
#: Removed before reading text: navigation, page chrome, forms, scripts.
BOILERPLATE_XPATH = (
    ".//nav | .//header | .//footer | .//aside | .//form | .//script | .//style | .//noscript | .//template"
    " | .//svg | .//iframe | .//*[@role='navigation' or @role='banner' or @role='contentinfo' or @role='search']"
    " | .//*[@aria-hidden='true'] | .//*[@hidden]"
    " | .//*[contains(concat(' ', normalize-space(@class), ' '), ' breadcrumb ')"
    " or contains(concat(' ', normalize-space(@class), ' '), ' breadcrumbs ')"
    " or contains(concat(' ', normalize-space(@class), ' '), ' skip-link ')]"
)
PUBLISHED_META = ("citation_publication_date", "citation_date", "dc.date", "dc.date.issued", "dc.date.created",
                  "dc.date.published", "dc.created", "dc.issued", "dcterms.date", "dcterms.issued", "dcterms.created",
                  "date", "pubdate", "publish-date", "publish_date", "article.published", "sailthru.date")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
MODIFIED_META = ("dcterms.modified", "dc.date.modified", "dc.modified", "last-modified", "lastmod", "revised",
                 "article.updated", "modified")

@dataclass
class Link:
    url: str
    text: str


# -- helpers --------------------------------------------------------------------------


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


def _clean_str(value: Any) -> str:
    return clean_text(value) if isinstance(value, str) else ""


def _language(value: str | None) -> str | None:
    value = (value or "").strip().replace("_", "-")
    if not value or len(value) > 20 or not all(part.isalnum() for part in value.split("-")):
        return None
    primary, *rest = value.split("-")
    if not primary.isalpha() or not 2 <= len(primary) <= 3:
        return None
    return "-".join([primary.lower(), *[r.upper() if len(r) == 2 else r for r in rest]])


def _main_content(sel: Selector) -> Any:
    """A cleaned copy of the page's main content element (boilerplate removed)."""
    node = None
    for xp in MAIN_XPATHS:
        found = sel.xpath(xp)
        if found:
            # the largest candidate of this kind (pages sometimes have several <article>s)
            node = found[0] if len(found) == 1 else max(found, key=lambda s: len(s.xpath("string(.)").get("")))
            break
    if node is None or not isinstance(node.root, etree._Element):
        return None
    root = copy.deepcopy(node.root)
    for bad in root.xpath(BOILERPLATE_XPATH):
        if bad.getparent() is not None:
            bad.drop_tree()
    return root


def _excerpt(main: Any, limit: int) -> str:
    if main is None:
        return ""
    text = html_text.extract_text(main, guess_layout=False)
    return clean_text(text, limit)


# -- the extractor ---------------------------------------------------------------------


#: Links read from a parsed page, by base URL (the crawl kind asks again after extract_page).
_LINKS: weakref.WeakKeyDictionary[Selector, dict[str, list[Link]]] = weakref.WeakKeyDictionary()


def extract_links(body: bytes | str | Selector, url: str, http_content_type: str | None = None) -> list[Link]:
    """Every http(s) link of a page, absolute, without fragment, in document order, once each."""
    sel = to_selector(body, url, http_content_type)
    base = absolute_url(sel.xpath("//base/@href").get(), url) or url
    if base in _LINKS.get(sel, {}):
        return [Link(lk.url, lk.text) for lk in _LINKS[sel][base]]
    links = _read_links(sel, base)
    if isinstance(body, Selector):
        _LINKS.setdefault(sel, {})[base] = [Link(lk.url, lk.text) for lk in links]
    return links


def _read_links(sel: Selector, base: str) -> list[Link]:
    out: dict[str, Link] = {}
    root = sel.root
    # lxml's own elements: a parsel Selector per link and per expression cost more than the rest
    anchors = root.xpath("//a[@href]") if isinstance(root, etree._Element) else []
    for a in anchors:
        href = absolute_url(a.get("href", ""), base)
        if not href:
            continue
        href = href.split("#", 1)[0]
        alts = a.xpath(".//img/@alt")
        # what XPath's normalize-space(string(.)) gives (itertext, like string(), skips comments)
        text = clean_text(normalize_space("".join(a.itertext()))) or clean_text(a.get("title", "")) \
            or clean_text(normalize_space(str(alts[0])) if alts else "")
        if href not in out:
            out[href] = Link(href, text[:300])
        elif not out[href].text and text:
            out[href].text = text[:300]
    return list(out.values())


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
        platform = bool(sel.xpath("//*[contains(concat(' ', normalize-space(@class), ' '), ' mt-content-container ')]"
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
        data = extruct.extract(sel.root, base_url=base, syntaxes=["json-ld", "opengraph", "microdata"],
                               errors="ignore", uniform=True)
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
        for i, node in enumerate(root.xpath("//meta[@content]") if isinstance(root, etree._Element) else ()):
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
                return clean_text(min(found)[1])  # the first in the page
        return ""

    def site_names(self) -> list[str]:
        """What the page calls its site: ``og:site_name``, ``application-name``, its JSON-LD
        WebSite and publisher, its Dublin Core publisher."""
        found = [self.og_str("og:site_name"), clean_text(self.meta("application-name")),
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
    html_title = clean_text(sel.xpath("//head/title/text() | //title/text()").get(""))
    h1 = clean_text(sel.xpath("normalize-space(string((//h1)[1]))").get(""))
    found = [
        ("og", s.og_str("og:title")),
        ("json-ld", _clean_str(s.main.get("headline")) or _clean_str(s.main.get("name"))),
        ("microdata", _clean_str(s.micro.get("headline")) or _clean_str(s.micro.get("name"))),
        ("dc", s.dc("title")),
        ("title", html_title),
        ("h1", h1),
    ]
    return by_agreement(found, site_names)


def _description(s: _Structured, main_content: Any, title: str) -> tuple[str | None, str]:
    candidates = [
        ("meta", clean_text(s.meta("description"))),
        ("og", s.og_str("og:description")),
        ("json-ld", _clean_str(s.main.get("description"))),
        ("microdata", _clean_str(s.micro.get("description"))),
        ("dc", s.dc("description")),
        ("paragraph", first_paragraph(main_content, skip=title)),
    ]
    return next(((k, v) for k, v in candidates if v), (None, ""))


def _canonical(sel: Selector, base: str, url: str) -> str | None:
    href = sel.xpath("//link[contains(concat(' ', normalize-space(translate(@rel, 'CANONIL', 'canonil')), ' '),"
                     " ' canonical ')]/@href").get()
    if href:
        candidate = absolute_url(href.strip(), base)
        if candidate and same_site(candidate, url):
            return candidate.split("#", 1)[0]
    return None


def _time_attr(sel: Selector, xpath: str) -> str | None:
    for node in sel.xpath(xpath)[:5]:
        d = parse_date(node.attrib.get("datetime") or node.attrib.get("content") or node.xpath("string(.)").get())
        if d:
            return d
    return None


def _published(sel: Selector, s: _Structured, main_content: Any) -> str | None:
    published = (
        s.date("datePublished")
        or parse_date(s.og_str("article:published_time") or None)
        or next(filter(None, (parse_date(s.meta(n) or None) for n in PUBLISHED_META)), None)
        or _time_attr(sel, "//*[@itemprop='datePublished'] | //time[@pubdate]"
                           " | //time[contains(concat(' ', normalize-space(@class), ' '), ' published ')]")
    )
    if not published and main_content is not None:
        for t in main_content.xpath(".//time[@datetime]")[:3]:
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
        or _time_attr(sel, "//*[@itemprop='dateModified']"
                           " | //time[contains(concat(' ', normalize-space(@class), ' '), ' updated ')]")
        or visible_updated(sel)
    )


def _page_language(sel: Selector, s: _Structured) -> str | None:
    return (
        _language(sel.xpath("/html/@lang | /html/@xml:lang").get())
        or _language(sel.xpath("//meta[translate(@http-equiv, 'CONTENTLAGU', 'contentlagu')='content-language']"
                               "/@content").get())
        or _language(s.og_str("og:locale"))
        or _language(first_str(s.main.get("inLanguage")))
        or _language(s.dc("language"))
    )


def _authors(s: _Structured) -> list[str]:
    authors = s.names("author")
    if not authors and s.meta("author"):
        authors = [clean_text(s.meta("author"))]
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
            t = clean_text(t, 60)
            if t and t not in tags:
                tags.append(t)
    return tags[:20]


def _feeds(sel: Selector, base: str) -> list[dict[str, str]]:
    feeds = []
    for link in sel.xpath("//link[@rel='alternate'][@href][contains(@type, 'rss') or contains(@type, 'atom')]"):
        feed_url = absolute_url(link.attrib.get("href"), base)
        if feed_url:
            feeds.append({"url": feed_url, "title": clean_text(link.attrib.get("title", "")),
                          "type": link.attrib.get("type", "")})
    return feeds


def _has_video(sel: Selector, base: str) -> bool:
    embedded = sel.xpath("//video | //iframe/@src").getall()
    return bool(sel.xpath("//video")) or any(
        is_video_url(absolute_url(src, base) or "") for src in embedded if isinstance(src, str))


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
    base = absolute_url(sel.xpath("//base/@href").get(), url) or url
    s = _Structured.read(sel, base)
    site_name = s.og_str("og:site_name") or s.meta("application-name")
    publishers = s.publishers()
    title_from, title = _title(sel, s, s.site_names())
    main_content = _main_content(sel)
    description_from, description = _description(s, main_content, title)
    published = _published(sel, s, main_content)
    links = extract_links(sel, url)  # it reads <base href> itself
    generator = clean_text(s.meta("generator"), 200)
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
        "excerpt": _excerpt(main_content, excerpt_chars) or None,
        "thumbnail": absolute_url(first_str(s.og.get("og:image")), base)
        or absolute_url(first_str(s.main.get("image")), base),
        "tags": _tags(s),
        "generator": generator or None,
        "feeds": _feeds(sel, base),
        "documents": [asdict(lk) for lk in links if is_document_url(lk.url) and same_site(lk.url, url)],
        "video_links": [lk.url for lk in links if is_video_url(lk.url)][:50],
        "structured": s.found,
    }


__all__ = ["Link", "extract_page", "extract_links", "infer_content_type", "to_selector"]
