"""Metadata of one HTML page: a pure function (bytes or str + URL in, a plain dict out).

Structured data is read with extruct (JSON-LD, OpenGraph, microdata); the rest of the
page with parsel/lxml XPath; URLs with w3lib. No network, no Scrapy: the crawler, the
sitemap and any other caller (``illhub add-source`` discovery) hand it a page's bytes.

Precedence, first non-empty wins:

* title: ``og:title`` → JSON-LD ``headline``/``name`` → microdata → ``<title>`` (minus a
  trailing " | Site name") → first ``<h1>``
* description: ``<meta name=description>`` → ``og:description`` → JSON-LD/microdata
  ``description`` → the first meaningful paragraph of the main content
* canonical URL: ``<link rel=canonical>``, only when it is on the same site as the page
* published: JSON-LD/microdata ``datePublished`` → ``article:published_time`` → date
  ``<meta>`` tags (Dublin Core, citation) → ``<time itemprop=datePublished|pubdate>`` →
  the first ``<time datetime>`` of the main content
* modified: JSON-LD/microdata ``dateModified`` → ``article:modified_time`` /
  ``og:updated_time`` → modified ``<meta>`` tags → ``<time itemprop=dateModified>`` →
  a visible "Last updated: …" / "Last modified …" line
* language: ``<html lang>`` → ``Content-Language`` meta → ``og:locale`` → JSON-LD ``inLanguage``
* author: JSON-LD/microdata ``author`` → ``<meta name=author>`` → ``article:author`` (when a name)
* publisher: JSON-LD ``publisher`` → ``og:site_name`` → ``application-name``
* content type: see :func:`infer_content_type`
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import extruct
import html_text
from lxml import etree
from parsel import Selector
from w3lib.encoding import html_to_unicode

from harvesters.parsers.links import is_document_url, is_video_url, url_path_lower
from harvesters.parsers.text import EXCERPT_CHARS, first_paragraph
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
PUBLISHED_META = ("citation_publication_date", "citation_date", "dc.date", "dc.date.issued", "dcterms.date",
                  "dcterms.issued", "dcterms.created", "date", "pubdate", "publish-date", "publish_date",
                  "article.published", "sailthru.date")
MODIFIED_META = ("dcterms.modified", "dc.date.modified", "last-modified", "lastmod", "revised",
                 "article.updated", "modified")
UPDATED_LABELS = ("last updated", "last modified", "page last updated", "page last modified", "last revised",
                  "updated", "modified", "revised")


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


def _types(node: dict[str, Any]) -> set[str]:
    t = node.get("@type") or node.get("type") or []
    if isinstance(t, str):
        t = [t]
    out = set()
    for v in t:
        if isinstance(v, str):
            out.add(v.rsplit("/", 1)[-1].rsplit("#", 1)[-1])
    return out


def _jsonld_nodes(items: list[Any]) -> list[dict[str, Any]]:
    """Every JSON-LD object, ``@graph`` members included, in document order."""
    nodes: list[dict[str, Any]] = []
    stack = list(reversed(items))
    while stack and len(nodes) < 200:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            graph = item.get("@graph")
            if graph is not None:
                stack.extend(reversed(graph if isinstance(graph, list) else [graph]))
                rest = {k: v for k, v in item.items() if k not in ("@graph", "@context")}
                if rest and _types(rest):
                    nodes.append(rest)
            else:
                nodes.append(item)
    return nodes


def _main_node(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    for group in MAIN_TYPES_ORDER:
        for node in nodes:
            if _types(node) & group:
                return node
    return None


def _resolve(value: Any, by_id: dict[str, dict[str, Any]]) -> Any:
    if isinstance(value, dict) and set(value) <= {"@id"} and value.get("@id") in by_id:
        return by_id[value["@id"]]
    return value


def _names(value: Any, by_id: dict[str, dict[str, Any]]) -> list[str]:
    """Names of a schema.org Person/Organization value (a string, an object, a list, an @id)."""
    out: list[str] = []
    for v in value if isinstance(value, list) else [value]:
        v = _resolve(v, by_id)
        if isinstance(v, str):
            name = _clean_str(v)
        elif isinstance(v, dict):
            name = _clean_str(v.get("name")) or _clean_str(v.get("legalName"))
        else:
            name = ""
        if name and not name.startswith(("http://", "https://")) and name not in out:
            out.append(name)
    return out


def _first_str(value: Any) -> str:
    if isinstance(value, list):
        for v in value:
            s = _first_str(v)
            if s:
                return s
        return ""
    if isinstance(value, dict):
        return _first_str(value.get("url") or value.get("contentUrl") or value.get("@id"))
    return value.strip() if isinstance(value, str) else ""


def _language(value: str | None) -> str | None:
    value = (value or "").strip().replace("_", "-")
    if not value or len(value) > 20 or not all(part.isalnum() for part in value.split("-")):
        return None
    primary, *rest = value.split("-")
    if not primary.isalpha() or not 2 <= len(primary) <= 3:
        return None
    return "-".join([primary.lower(), *[r.upper() if len(r) == 2 else r for r in rest]])


def _strip_site_suffix(title: str, site_names: list[str]) -> str:
    for site in site_names:
        if not site:
            continue
        for sep in (" | ", " - ", " – ", " — ", " :: ", " · "):
            suffix = sep + site
            if title.endswith(suffix) and len(title) > len(suffix):
                return title[: -len(suffix)].strip()
            prefix = site + sep
            if title.startswith(prefix) and len(title) > len(prefix):
                return title[len(prefix):].strip()
    return title


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


def _date_after_label(text: str) -> str | None:
    """The date in a visible line such as "Last Updated: Oct 3, 2025 10:12 AM"."""
    low = text.lower()
    for label in UPDATED_LABELS:
        i = low.find(label)
        if i < 0:
            continue
        rest = text[i + len(label):].lstrip(" :\u00a0-–—").removeprefix("on ").removeprefix("On ")
        words = rest.split()
        for n in range(min(len(words), 7), 0, -1):
            candidate = " ".join(words[:n]).rstrip(".,;|")
            if any(c.isdigit() for c in candidate):
                date = parse_date(candidate)
                if date:
                    return date
        return None
    return None


_XML_SPACE = re.compile(r"[ \t\r\n]+")
_VISIBLE_LABELS = ("last updated", "last modified", "updated:", "modified:", "updated on", "last revised")


def _normalize_space(text: str) -> str:
    """XPath's normalize-space(): runs of XML white space (not NBSP) become one space."""
    return _XML_SPACE.sub(" ", text).strip(" ")


def _visible_updated(sel: Selector) -> str | None:
    """The date after a visible "Last updated" (or similar) label: the elements holding a
    text node with a label (at most 10, in document order), each tried with its parent."""
    root = sel.root
    if not isinstance(root, etree._Element):
        return None
    # The body's whole text, white space collapsed, contains any label that one of its text
    # nodes contains: a page without one (most pages) is done without looking at each node.
    whole = _normalize_space(sel.xpath("string(//body)").get("")).lower()
    if not any(lab in whole for lab in _VISIBLE_LABELS):
        return None
    holders: dict[Any, None] = {}
    for text in root.xpath("//body//text()"):
        low = _normalize_space(text).lower()
        if any(lab in low for lab in _VISIBLE_LABELS):
            # a tail's element is its preceding sibling; the text node's own parent is that one's
            holder = text.getparent()
            if text.is_tail and holder is not None:
                holder = holder.getparent()
            if holder is not None:
                holders[holder] = None
    if not holders:
        return None
    order = {el: i for i, el in enumerate(root.iter())}
    for node in sorted(holders, key=lambda el: order.get(el, 0))[:10]:
        parent = node.getparent()
        for element in (node, parent) if parent is not None else (node,):
            text = clean_text("".join(element.itertext()))
            if len(text) > 160:
                break
            date = _date_after_label(text)
            if date:
                return date
    return None


# -- the extractor ---------------------------------------------------------------------


def extract_links(body: bytes | str | Selector, url: str, http_content_type: str | None = None) -> list[Link]:
    """Every http(s) link of a page, absolute, without fragment, in document order, once each."""
    sel = to_selector(body, url, http_content_type)
    base = absolute_url(sel.xpath("//base/@href").get(), url) or url
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
        text = clean_text(_normalize_space("".join(a.itertext()))) or clean_text(a.get("title", "")) \
            or clean_text(_normalize_space(str(alts[0])) if alts else "")
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
    data = extruct.extract(sel.root, base_url=base, syntaxes=["json-ld", "opengraph", "microdata"],
                           errors="ignore", uniform=True)
    og: dict[str, Any] = {}
    for item in data.get("opengraph", []):
        for k, v in item.items():
            if not k.startswith("@") or k == "@type":
                og.setdefault(k, v)
    nodes = _jsonld_nodes(data.get("json-ld", []))
    by_id = {n["@id"]: n for n in nodes if isinstance(n.get("@id"), str)}
    main = _main_node(nodes) or {}
    micro_nodes = [n for n in data.get("microdata", []) if isinstance(n, dict)]
    micro = _main_node(micro_nodes) or (micro_nodes[0] if micro_nodes else {})

    def meta(*names: str) -> str:
        for name in names:
            v = sel.xpath(
                "//meta[translate(@name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')=$n]/@content",
                n=name,
            ).get()
            if v and v.strip():
                return v.strip()
        return ""

    site_name = _clean_str(og.get("og:site_name")) or meta("application-name")
    publisher_names = _names(main.get("publisher"), by_id) or _names(micro.get("publisher"), by_id)
    if not publisher_names:
        orgs = [n for n in nodes if _types(n) & {"Organization", "Library", "CollegeOrUniversity", "GovernmentOrganization",
                                                  "NGO", "EducationalOrganization", "Corporation"}]
        publisher_names = _names(orgs[:1], by_id)

    # title
    html_title = clean_text(sel.xpath("//head/title/text() | //title/text()").get(""))
    h1 = clean_text(sel.xpath("normalize-space(string((//h1)[1]))").get(""))
    candidates = [
        ("og", _clean_str(og.get("og:title"))),
        ("json-ld", _clean_str(main.get("headline")) or _clean_str(main.get("name"))),
        ("microdata", _clean_str(micro.get("headline")) or _clean_str(micro.get("name"))),
        ("title", _strip_site_suffix(html_title, [site_name, *publisher_names])),
        ("h1", h1),
    ]
    title_from, title = next(((k, v) for k, v in candidates if v), (None, ""))

    # main content, description, excerpt
    main_content = _main_content(sel)
    desc_candidates = [
        ("meta", clean_text(meta("description"))),
        ("og", _clean_str(og.get("og:description"))),
        ("json-ld", _clean_str(main.get("description"))),
        ("microdata", _clean_str(micro.get("description"))),
        ("paragraph", first_paragraph(main_content, skip=title)),
    ]
    description_from, description = next(((k, v) for k, v in desc_candidates if v), (None, ""))

    # canonical
    canonical = None
    href = sel.xpath("//link[contains(concat(' ', normalize-space(translate(@rel, 'CANONIL', 'canonil')), ' '),"
                     " ' canonical ')]/@href").get()
    if href:
        candidate = absolute_url(href.strip(), base)
        if candidate and same_site(candidate, url):
            canonical = candidate.split("#", 1)[0]

    # dates
    def time_attr(xpath: str) -> str | None:
        for node in sel.xpath(xpath)[:5]:
            d = parse_date(node.attrib.get("datetime") or node.attrib.get("content") or node.xpath("string(.)").get())
            if d:
                return d
        return None

    published = (
        parse_date(_first_str(main.get("datePublished")) or None)
        or parse_date(_first_str(micro.get("datePublished")) or None)
        or parse_date(_clean_str(og.get("article:published_time")) or None)
        or next(filter(None, (parse_date(meta(n) or None) for n in PUBLISHED_META)), None)
        or time_attr("//*[@itemprop='datePublished'] | //time[@pubdate]"
                     " | //time[contains(concat(' ', normalize-space(@class), ' '), ' published ')]")
    )
    if not published and main_content is not None:
        for t in main_content.xpath(".//time[@datetime]")[:3]:
            published = parse_date(t.get("datetime"))
            if published:
                break
    modified = (
        parse_date(_first_str(main.get("dateModified")) or None)
        or parse_date(_first_str(micro.get("dateModified")) or None)
        or parse_date(_clean_str(og.get("article:modified_time")) or None)
        or parse_date(_clean_str(og.get("og:updated_time")) or None)
        or next(filter(None, (parse_date(meta(n) or None) for n in MODIFIED_META)), None)
        or time_attr("//*[@itemprop='dateModified'] | //time[contains(concat(' ', normalize-space(@class), ' '), ' updated ')]")
        or _visible_updated(sel)
    )

    # language, author
    language = (
        _language(sel.xpath("/html/@lang | /html/@xml:lang").get())
        or _language(sel.xpath("//meta[translate(@http-equiv, 'CONTENTLAGU', 'contentlagu')='content-language']/@content").get())
        or _language(_clean_str(og.get("og:locale")))
        or _language(_first_str(main.get("inLanguage")))
    )
    authors = _names(main.get("author"), by_id) or _names(micro.get("author"), by_id)
    if not authors and meta("author"):
        authors = [clean_text(meta("author"))]
    if not authors and og.get("article:author"):
        authors = _names(og.get("article:author"), by_id)

    # links and content type
    links = extract_links(sel, base)
    video_links = [lk.url for lk in links if is_video_url(lk.url)]
    embedded = sel.xpath("//video | //iframe/@src").getall()
    has_video = bool(sel.xpath("//video")) or any(
        is_video_url(absolute_url(s, base) or "") for s in embedded if isinstance(s, str)
    )
    generator = clean_text(meta("generator"), 200)
    main_types = _types(main) | _types(micro)
    content_type = infer_content_type(url=url, og_type=_clean_str(og.get("@type")), main_types=main_types,
                                      generator=generator, has_video=has_video, published=published, sel=sel)

    thumbnail = absolute_url(_first_str(og.get("og:image")), base) or absolute_url(_first_str(main.get("image")), base)
    tags: list[str] = []
    keywords = main.get("keywords")
    for raw in ([meta("keywords")] + (keywords if isinstance(keywords, list) else [keywords or ""])
                + ([og.get("article:tag")] if isinstance(og.get("article:tag"), str) else [])):
        for t in str(raw).split(","):
            t = clean_text(t, 60)
            if t and t not in tags:
                tags.append(t)
    feeds = []
    for link in sel.xpath("//link[@rel='alternate'][@href][contains(@type, 'rss') or contains(@type, 'atom')]"):
        feed_url = absolute_url(link.attrib.get("href"), base)
        if feed_url:
            feeds.append({"url": feed_url, "title": clean_text(link.attrib.get("title", "")),
                          "type": link.attrib.get("type", "")})
    documents = [asdict(lk) for lk in links if is_document_url(lk.url) and same_site(lk.url, url)]
    return {
        "url": url,
        "canonical_url": canonical,
        "title": title,
        "title_from": title_from,
        "description": description,
        "description_from": description_from,
        "published": published,
        "modified": modified,
        "language": language,
        "author": ", ".join(authors[:5]) or None,
        "publisher": publisher_names[0] if publisher_names else (site_name or None),
        "site_name": site_name or None,
        "content_type": content_type,
        "excerpt": _excerpt(main_content, excerpt_chars) or None,
        "thumbnail": thumbnail,
        "tags": tags[:20],
        "generator": generator or None,
        "feeds": feeds,
        "documents": documents,
        "video_links": video_links[:50],
        "structured": sorted(k for k in ("json-ld", "opengraph", "microdata") if data.get(k)),
    }


__all__ = ["Link", "extract_page", "extract_links", "infer_content_type", "to_selector"]
