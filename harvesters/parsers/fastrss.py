"""A fast reader for plain, well-formed RSS 2.0, giving what feedparser gives for it.

feedparser reads a feed through Python SAX callbacks: about 0.5 ms per entry, most of a feed
harvest's parse time. Most feeds are plain RSS 2.0 (WordPress, Blogger, most CMSs): for
those, :func:`parse_plain_rss` reads the document with lxml (libxml2, in C) and builds the
same entry dictionaries feedparser builds (the same keys and values, through feedparser's own
helpers for dates, URL clean-up and text repair; plain dictionaries, not feedparser's class), so the records stored are the same
(tests/test_fastrss.py compares both paths on every feed fixture and on generated feeds).

Anything else is left to feedparser, which recovers what it can of a malformed document:
:func:`parse_plain_rss` answers None unless the document is

- UTF-8 (declared or implied, no byte-order mark) and served as XML (or not said);
- well-formed XML without a DOCTYPE, parsed strictly (no recovery);
- ``<rss version="2.0">`` with one ``<channel>``, namespaces declared on the root only and
  only the common ones (content, Dublin Core, Atom, wfw, slash, syndication);
- made of known elements only (:data:`ITEM_FIELDS`, :data:`CHANNEL_FIELDS`), each holding
  text (no markup inside, no comments), with no attributes but the known ones (no
  ``xml:base``, no ``xml:lang``), and each entry field at most once (categories aside).

So HTML in titles, relative links resolved against ``xml:base``, unusual namespaces (media,
YouTube, iTunes), Atom, RSS 1.0, other encodings, odd structures and anything malformed go
through feedparser as before.
"""

from __future__ import annotations

import re
from typing import Any

from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.urls import _urljoin
from feedparser.util import FeedParserDict
from lxml import etree

CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DC = "{http://purl.org/dc/elements/1.1/}"
ATOM = "{http://www.w3.org/2005/Atom}"
WFW = "{http://wellformedweb.org/CommentAPI/}"
SLASH = "{http://purl.org/rss/1.0/modules/slash/}"
SY = "{http://purl.org/rss/1.0/modules/syndication/}"
NAMESPACES = {CONTENT[1:-1], DC[1:-1], ATOM[1:-1], WFW[1:-1], SLASH[1:-1], SY[1:-1]}

#: An entry's elements this reader knows (by lxml tag) and the attributes each may have.
ITEM_FIELDS: dict[str, frozenset[str]] = {
    "title": frozenset(), "link": frozenset(), "description": frozenset(), "guid": frozenset({"isPermaLink"}),
    "pubDate": frozenset(), "category": frozenset({"domain"}), "comments": frozenset(),
    "enclosure": frozenset({"url", "length", "type"}), DC + "creator": frozenset(),
    CONTENT + "encoded": frozenset(), WFW + "commentRss": frozenset(), SLASH + "comments": frozenset(),
}
#: The channel's elements this reader accepts (their content matters only for title, link and language).
CHANNEL_FIELDS = {"title", "link", "description", "language", "lastBuildDate", "pubDate", "generator", "docs",
                  "ttl", "copyright", "managingEditor", "webMaster", "item", "image",
                  SY + "updatePeriod", SY + "updateFrequency", SY + "updateBase", ATOM + "link"}
IMAGE_FIELDS = {"url", "title", "link", "width", "height", "description"}
#: An ``atom:link`` in the channel that does not change the feed's link in feedparser.
QUIET_ATOM_RELS = {"self", "hub"}
XML_TYPES = {"application/xml", "application/rss+xml", "application/atom+xml", "application/rdf+xml", "text/xml"}

_DECLARATION = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_ROOT = re.compile(rb"<rss[\s>]")
_QUERY_ENTITY = re.compile("&([A-Za-z0-9_]+);")
_EMAIL = re.compile(r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"""
                    r"""([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?""")


class NotPlain(Exception):
    """The document is not one this reader reproduces feedparser on: feedparser reads it."""


def _text(value: str | None, uri: bool = False) -> str:
    """An element's text as feedparser's ``pop`` leaves it for a UTF-8 document: stripped,
    cleaned up as a URI for the elements feedparser resolves (``uri``), UTF-8 misread as
    Latin-1 repaired, windows-1252 code points mapped."""
    if not value:
        return ""
    value = value.strip()
    if uri and value:
        value = _urljoin("", value)
    if value.isascii():
        return value
    try:
        value = value.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return value.translate(_cp1252)


def _content_type_ok(content_type: str | None) -> bool:
    """An XML type, UTF-8 or no charset (``text/xml`` only with its charset said, since bare
    it means US-ASCII to feedparser: :func:`harvesters.parsers.feed.xml_content_type`)."""
    if not content_type:
        return False
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    params = params.strip().lower().replace(" ", "")
    if media not in XML_TYPES or (media == "text/xml" and not params):
        return False
    return params in ("", "charset=utf-8", "charset=utf8", 'charset="utf-8"')


def _checked_root(body: bytes, content_type: str | None) -> Any:
    """The parsed ``<rss>`` element, or NotPlain."""
    if not _content_type_ok(content_type) or body[:1] != b"<":
        raise NotPlain("not served as XML, or a byte-order mark")
    m = _DECLARATION.match(body)
    if m and m.group(1).lower() not in (b"utf-8", b"utf8"):
        raise NotPlain("not UTF-8")
    if b"<!DOCTYPE" in body or b"<!doctype" in body:
        raise NotPlain("a DOCTYPE")
    start = _ROOT.search(body)
    if start is None:
        raise NotPlain("not RSS")
    root_end = body.find(b">", start.end() - 1)
    if body.find(b"xmlns", root_end) != -1 or b"xml:" in body:
        raise NotPlain("namespaces declared below the root, or xml:base / xml:lang")
    try:
        body.decode("utf-8")
        # a parser per document (lxml's are not to be shared between threads); no entities, no network
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False))
    except (UnicodeDecodeError, etree.XMLSyntaxError, ValueError) as e:
        raise NotPlain(f"not well-formed UTF-8 XML ({e})") from e
    if root.tag != "rss" or dict(root.attrib) != {"version": "2.0"}:
        raise NotPlain("not <rss version=\"2.0\">")
    if not set(root.nsmap.values()) <= NAMESPACES:
        raise NotPlain("an unusual namespace")
    return root


def _children(element: Any, allowed: Any) -> list[Any]:
    """An element's child elements, each of an allowed tag; NotPlain on comments, processing
    instructions or text between them."""
    children = []
    if element.text and element.text.strip():
        raise NotPlain("text beside elements")
    for child in element:
        if not isinstance(child.tag, str) or child.tag not in allowed:
            raise NotPlain(f"an element not read here ({child.tag!r})")
        if child.tail and child.tail.strip():
            raise NotPlain("text beside elements")
        children.append(child)
    return children


def _attributes(element: Any, allowed: frozenset[str]) -> dict[str, str]:
    """An element's attributes as feedparser's strict parser passes them on (names lower
    case, ``rel`` and ``type`` values lower case); NotPlain on one not read here."""
    if not element.attrib:
        return {}
    if not set(element.attrib) <= allowed:
        raise NotPlain(f"an attribute not read here on <{element.tag}>")
    out = {}
    for name, value in element.attrib.items():
        name = name.lower()
        out[name] = value.lower() if name in ("rel", "type") else value
    return out


def _leaf(element: Any, uri: bool = False) -> str:
    """The text of an element that holds only text, through :func:`_text`."""
    if len(element):
        raise NotPlain(f"markup inside <{element.tag}>")
    return _text(element.text, uri)


def _link(value: str, in_entry: bool) -> str:
    """feedparser's repair of query strings in a ``<link>`` (``&b;=2`` read as an entity)."""
    if in_entry:
        value = value.replace("&amp;", "&")
    return _QUERY_ENTITY.sub(r"&\g<1>", value)


def _add_tag(entry: dict, term: str | None, scheme: str | None) -> None:
    tags = entry.setdefault("tags", [])
    if not term and not scheme:
        return
    tag = {"term": term, "scheme": scheme, "label": None}
    if tag not in tags:
        tags.append(tag)


def _author(entry: dict, value: str) -> None:
    """``dc:creator``: feedparser's author, author_detail and authors (an e-mail address in
    the text is split off as the detail's email)."""
    detail: dict[str, str] = {}
    entry.setdefault("authors", []).append(detail)
    entry["author"] = value
    if not value:
        return
    author, email = value, None
    m = _EMAIL.search(author)
    if m:
        email = m.group(0)
        author = author.replace(email, "").replace("()", "").replace("<>", "").replace("&lt;&gt;", "").strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    if author or email:
        entry.setdefault("author_detail", detail)
    if author:
        detail["name"] = author
    if email:
        detail["email"] = email


def _entry(item: Any) -> dict[str, Any]:
    """One ``<item>`` as feedparser's entry dictionary (its ``*_detail`` copies of title and
    summary aside: illhub reads them only for Atom, which this reader leaves to feedparser).
    A plain dictionary, not feedparser's class (which costs Python calls on every access): of
    what that class derives from the keys, the feed parser reads only ``enclosures``, which it
    derives itself for a plain entry (:func:`harvesters.parsers.feed.entry_enclosures`)."""
    entry: dict[str, Any] = {}
    seen: set[str] = set()
    has_content = False
    for child in _children(item, ITEM_FIELDS):
        tag = child.tag
        if tag != "category":
            if tag in seen:
                raise NotPlain(f"<{tag}> twice in an entry")
            seen.add(tag)
        attrs = _attributes(child, ITEM_FIELDS[tag])
        if tag == "enclosure":
            if len(child) or (child.text and child.text.strip()):
                raise NotPlain("content inside <enclosure>")
            href = attrs.pop("url", None)
            if href:
                attrs["href"] = href
            attrs["rel"] = "enclosure"
            entry.setdefault("links", []).append(attrs)
        elif tag == "link":
            entry.setdefault("links", []).append({"rel": "alternate", "type": "text/html"})
            value = _link(_leaf(child, uri=True), in_entry=True)
            entry["link"] = value
            if value:
                entry["links"][-1]["href"] = value
        elif tag == "guid":
            is_link = attrs.get("ispermalink", "true") == "true"
            value = _leaf(child, uri=is_link)
            entry["id"] = value
            entry.setdefault("guidislink", is_link and "link" not in entry)
            if is_link:
                entry.setdefault("link", value)
        elif tag == "category":
            _add_tag(entry, None, attrs.get("domain"))
            value = _leaf(child)
            if value:
                tags = entry["tags"]
                if tags and not tags[-1]["term"]:
                    tags[-1]["term"] = value
                else:
                    _add_tag(entry, value, None)
        elif tag == "description":
            if "summary" in entry and not has_content:
                raise NotPlain("a description read as content")
            entry["summary"] = _leaf(child)
        elif tag == CONTENT + "encoded":
            has_content = True
            value = _leaf(child)
            entry.setdefault("content", []).append({"type": "text/html", "language": None, "base": "", "value": value})
            entry.setdefault("summary", value)
        elif tag == DC + "creator":
            _author(entry, _leaf(child))
        elif tag == "pubDate":
            value = _leaf(child)
            entry["published"] = value
            entry["published_parsed"] = _parse_date(value)
        else:
            name = {"title": "title", "comments": "comments", WFW + "commentRss": "wfw_commentrss",
                    SLASH + "comments": "slash_comments"}[tag]
            entry[name] = _leaf(child, uri=name in ("comments", "wfw_commentrss"))
    return entry


def _channel(channel: Any) -> tuple[FeedParserDict, list[Any]]:
    """The channel's title, link and language as feedparser reads them, and its items."""
    feed = FeedParserDict()
    items = []
    seen: set[str] = set()
    for child in _children(channel, CHANNEL_FIELDS):
        tag = child.tag
        if tag == "item":
            items.append(child)
            continue
        if tag in seen and tag != ATOM + "link":
            raise NotPlain(f"<{tag}> twice in the channel")
        seen.add(tag)
        if tag == ATOM + "link":
            attrs = _attributes(child, frozenset({"href", "rel", "type"}))
            if attrs.get("rel") not in QUIET_ATOM_RELS or len(child) or (child.text and child.text.strip()):
                raise NotPlain("an atom:link that may be the feed's link")
        elif tag == "image":
            _attributes(child, frozenset())
            for part in _children(child, IMAGE_FIELDS):
                _attributes(part, frozenset())
                _leaf(part)
        else:
            _attributes(child, frozenset())
            value = _leaf(child, uri=tag in ("link", "docs"))
            if tag == "link":
                feed["link"] = _link(value, in_entry=False)
            elif tag in ("title", "language"):
                feed[tag] = value
    return feed, items


def parse_plain_rss(body: bytes, content_type: str | None) -> FeedParserDict | None:
    """feedparser's result (``feed`` with title, link and language; ``entries``, as plain
    dictionaries; ``version``; ``bozo``) for a plain RSS 2.0 document, or None for anything
    feedparser must read."""
    try:
        root = _checked_root(body, content_type)
        channels = _children(root, {"channel"})
        if len(channels) != 1:
            raise NotPlain("not one channel")
        _attributes(channels[0], frozenset())
        feed, items = _channel(channels[0])
        entries = []
        for item in items:
            _attributes(item, frozenset())
            entries.append(_entry(item))
    except NotPlain:
        return None
    return FeedParserDict(feed=feed, entries=entries, version="rss20", bozo=False, encoding="utf-8")
