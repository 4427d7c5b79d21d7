"""RSS 0.9x/1.0/2.0 and Atom with feedparser, which is only ever handed bytes; JSON Feed
(:mod:`harvesters.parsers.jsonfeed`) when the document is JSON.

An entry's link is its own link, else its permalink guid, else its enclosure's URL (a podcast
episode, a PDF: the content type then follows the enclosure's MIME type); an entry without a
title is titled with the first sentence of its text."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

import charset_normalizer
import feedparser

from harvesters.parsers.fastrss import parse_plain_rss
from harvesters.parsers.links import is_document_url, is_video_url
from harvesters.parsers.text import title_from_text
from pipeline.normalize import parse_date
from pipeline.resource import Batch, Resource
from pipeline.urls import absolute_url

#: feedparser's own fetching and file access are never used: it gets bytes only.
feedparser.RESOLVE_RELATIVE_URIS = True
feedparser.SANITIZE_HTML = True

#: Longest string kept in an entry's raw record. Normalization reads at most 80,000
#: characters of any field, so the cap loses nothing a reprocess would use.
RAW_TEXT_MAX = 100_000

_ENTRY_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s>/]")
_ENTRY_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>")
_XML_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']", re.I)
_HIGH_TEXT = re.compile(rb">([^<]*[\x80-\xff][^<]*)<")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


class NotAFeed(ValueError):
    """The bytes are not a feed (an HTML page, an error page, nothing)."""


@dataclass
class ParsedFeed:
    title: str
    link: str | None
    resources: list[Resource]
    warnings: list[str] = field(default_factory=list)
    version: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    """feedparser's dict subclasses and time tuples made JSON-friendly for the raw record."""
    kind = type(value)
    if kind is str:  # the common cases first, by exact type (what isinstance gives them too)
        return value if len(value) <= RAW_TEXT_MAX else value[:RAW_TEXT_MAX]
    if value is None or kind is bool or kind is int:
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            k = k if type(k) is str else str(k)
            if not k.endswith("_parsed"):  # a short string or None as it is, without a call
                out[k] = v if v is None or (type(v) is str and len(v) <= RAW_TEXT_MAX) else _plain(v)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return value[:RAW_TEXT_MAX]
    if isinstance(value, (int, float, bool)):
        return value
    return str(value)[:RAW_TEXT_MAX]


def _entry_link(entry: Any) -> str | None:
    link = entry.get("link")
    if link:
        return link
    for candidate in entry.get("links", []) or []:
        if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
            return candidate["href"]
    guid = entry.get("id") or entry.get("guid")
    if guid and str(guid).startswith(("http://", "https://")):
        return guid
    return None


def entry_enclosures(entry: Any) -> list[Any]:
    """feedparser's ``enclosures`` of an entry: its links of ``rel="enclosure"``, without their
    ``rel``. Derived by feedparser's class on each access; for a plain dictionary (the fast
    reader's entries, :mod:`harvesters.parsers.fastrss`), derived the same way here."""
    if type(entry) is not dict:
        return entry.get("enclosures", []) or []
    try:
        return [{name: value for name, value in link.items() if name != "rel"}
                for link in entry["links"] if link["rel"] == "enclosure"]
    except KeyError:  # as feedparser's get() answers then
        return []


def _enclosure(entry: Any) -> dict[str, Any] | None:
    """The entry's first enclosure (``<enclosure>``, Atom ``rel="enclosure"``): url, type, length."""
    for candidate in entry_enclosures(entry):
        if candidate.get("href"):
            out = {"url": candidate["href"], "type": (candidate.get("type") or "").strip().lower() or None}
            try:
                out["length"] = int(candidate.get("length") or 0) or None
            except (TypeError, ValueError):
                out["length"] = None
            return out
    return None


def media_kind(mime: str | None, url: str = "") -> str | None:
    """``audio``, ``video`` or ``document`` from an enclosure's MIME type (else its URL); None
    for anything else (an image, an unknown type)."""
    mime = (mime or "").split(";", 1)[0].strip().lower()
    if mime.startswith("audio/"):
        return "audio"
    if mime.startswith("video/") or (not mime and is_video_url(url)):
        return "video"
    if mime in DOCUMENT_MIME or (not mime and is_document_url(url)):
        return "document"
    return None


#: The catalog's content type for an entry known only by its enclosure: recordings (audio or
#: video) are ``video``, the vocabulary's type for recordings; PDFs and office files ``document``.
MEDIA_CONTENT_TYPES = {"audio": "video", "video": "video", "document": "document"}
DOCUMENT_MIME = {"application/pdf", "application/msword", "application/vnd.ms-powerpoint", "application/rtf",
                 "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                 "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                 "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.presentation"}


def _as_html(value: str, detail: Any, declared: bool) -> str:
    """A field's value as HTML, which normalizing reads: a value the feed declares plain text
    (an Atom text construct, ``type="text"`` or no type) is text as it stands, so ``&lt;`` and
    ``<`` in it are escaped first, not decoded or taken for markup. RSS declares nothing
    (feedparser only guesses), and its fields are read as HTML, as feed readers read them."""
    if value and declared and isinstance(detail, dict) and detail.get("type") == "text/plain":
        return html.escape(value, quote=False)
    return value


def _description(entry: Any, declared: bool) -> str:
    summary = _as_html(entry.get("summary") or "", entry.get("summary_detail"), declared)
    if not summary:
        for content in entry.get("content", []) or []:
            if content.get("value"):
                return _as_html(content["value"], content, declared)
    return summary


def parse_feed_bytes(body: bytes, url: str | None, content_type: str | None = None) -> Any:
    """feedparser on bytes. HTML is neither sanitized nor rewritten here: every text field is
    reduced to plain text by :func:`pipeline.normalize.clean_text` anyway, and skipping
    feedparser's sanitizer halves the parse time."""
    headers = {"content-location": url} if url else {}
    if content_type:
        headers["content-type"] = content_type
    return feedparser.parse(body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False)


def check_is_feed(parsed: Any, body: bytes) -> None:
    if parsed.get("version") or parsed.entries:
        return
    head = body[:2048].lstrip().lower()
    if head.startswith(b"<!doctype html") or b"<html" in head:
        raise NotAFeed("got an HTML page, not a feed (look for the site's RSS/Atom link, often /feed/)")
    if not body.strip():
        raise NotAFeed("got an empty response, not a feed")
    reason = parsed.get("bozo_exception")
    raise NotAFeed(f"not an RSS or Atom feed ({reason or 'unrecognized format'})")


def bozo_warnings(parsed: Any) -> list[str]:
    """A warning for a feed feedparser could only partly read (or read despite a wrong header)."""
    if not parsed.get("bozo"):
        return []
    exc = parsed.get("bozo_exception")
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        return [f"declared character encoding was wrong ({exc}); read as {parsed.get('encoding')}"]
    if isinstance(exc, feedparser.NonXMLContentType):
        if "no content-type" in str(exc).lower():
            return []  # the server sent no Content-Type at all: nothing to warn about
        return [f"feed served with a non-XML content type ({exc}); parsed anyway"]
    return [f"malformed feed ({exc}); recovered {len(parsed.entries)} entries"]


_ISO_DATE = re.compile(r"^\s*\d{4}-\d{1,2}-\d{1,2}")


def entry_date(entry: Any, *names: str) -> Any:
    """The first of the named dates the entry really has.

    Read with ``dict.get``: feedparser's own ``get('updated')`` silently answers with the
    published date when there is no updated date (a deprecated fallback), which would
    invent an update time.
    """
    for name in names:
        raw = dict.get(entry, name)
        if isinstance(raw, str) and _ISO_DATE.match(raw):
            # feedparser rolls impossible ISO dates over (month 13 → next year): read them ourselves
            return raw
        parsed = dict.get(entry, f"{name}_parsed")
        if parsed:
            return parsed
    for name in names:
        if dict.get(entry, name):
            return dict.get(entry, name)
    return None


def cut_entries(body: bytes, max_items: int) -> tuple[bytes, int | None]:
    """The document with only its first ``max_items`` entries (and its closing tags), and
    how many entry start tags it had; ``(body, None)`` when it has no more than that.

    feedparser reads a whole document; a feed of 100,000 entries would cost seconds and
    memory for entries that are thrown away, so the bytes are cut before parsing.
    """
    starts = _ENTRY_START.finditer(body)
    cut = None
    total = 0
    for total, m in enumerate(starts, start=1):  # noqa: B007 - total is used after the loop
        if total == max_items + 1:
            cut = m.start()
    if cut is None:
        return body, None
    last_end = None
    for last_end in _ENTRY_END.finditer(body, cut):  # noqa: B007 - the last match is wanted
        pass
    tail = body[last_end.end():] if last_end is not None else b""
    return body[:cut] + tail, total


def _declared_encoding(body: bytes, http_content_type: str | None) -> str | None:
    if http_content_type:
        m = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", http_content_type, re.I)
        if m:
            return m.group(1).lower()
    m = _XML_ENCODING.match(body[:200])
    return m.group(1).decode("ascii").lower() if m else None


def xml_content_type(value: str | None) -> str | None:
    """The HTTP content type to give feedparser. By RFC 3023 a ``text/xml`` document without a
    charset is US-ASCII whatever its XML declaration says, and feedparser warns when it is
    not; but ``text/xml`` is many servers' default for any XML file, and feed readers follow
    the XML declaration or the byte-order mark instead. So does illhub: such a header is read
    as ``application/xml`` (which defers to the document). A charset the server does state is
    kept, and a document whose bytes contradict its declaration is still reported."""
    if not value:
        return value
    media, _, params = value.partition(";")
    media = media.strip().lower()
    if "charset" in params.lower() or not (media == "text/xml" or (media.startswith("text/") and media.endswith("+xml"))):
        return value
    return "application/" + media[len("text/"):] + (f";{params}" if params.strip() else "")


def repair_encoding(body: bytes, http_content_type: str | None) -> tuple[bytes, str | None, str | None]:
    """Bytes feedparser can read, the content type to give it, and a warning, for a feed
    that claims UTF-8 (or nothing, which means UTF-8) but is not.

    feedparser alone tries UTF-8, then windows-1252, then iso-8859-2, which accepts any
    bytes: Shift_JIS or UTF-8 with a few invalid bytes would come out as mojibake. Here a
    document that is mostly valid UTF-8 keeps its text (invalid bytes become U+FFFD), and
    one that is neither UTF-8 nor windows-1252 is decoded with the encoding
    charset-normalizer detects. Everything else is left to feedparser.
    """
    if body.startswith(_BOMS):
        return body, http_content_type, None
    declared = _declared_encoding(body, http_content_type)
    if declared not in (None, "utf-8", "utf8"):
        return body, http_content_type, None
    try:
        body.decode("utf-8")
        return body, http_content_type, None
    except UnicodeDecodeError:
        pass
    text = body.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good = sum(1 for c in text if c > "\x7f") - bad
    if good and good >= bad:
        warning = f"feed is UTF-8 with {bad} invalid byte sequence(s); they were replaced by U+FFFD"
    else:
        try:
            body.decode("cp1252")
            return body, http_content_type, None  # feedparser reads windows-1252 (and warns)
        except UnicodeDecodeError:
            pass
        # Detect on the text between tags: the ASCII markup would drown a short title.
        sample = b" ".join(_HIGH_TEXT.findall(body[: 4 * 1024 * 1024]))[:65536]
        best = charset_normalizer.from_bytes(sample).best() if sample else None
        if best is None:
            return body, http_content_type, None
        try:
            text = body.decode(best.encoding)
        except (UnicodeDecodeError, LookupError):
            return body, http_content_type, None
        warning = f"feed is not UTF-8 (as declared or implied) but {best.encoding}; read as {best.encoding}"
    media = (http_content_type or "application/xml").split(";")[0].strip() or "application/xml"
    data = _XML_ENCODING.sub(lambda m: m.group(0).replace(m.group(1), b"utf-8"), text.encode("utf-8"), count=1)
    return data, f"{media}; charset=utf-8", warning


def feed_batch(body: bytes, url: str, *, source_id: str, content_type: str = "article",
               organization: str | None = None, max_items: int = 1000, http_content_type: str | None = None,
               http_status: int | None = None) -> Batch:
    """One feed document as the batch a ``feed`` source stores (used inline and in parse workers)."""
    parsed = parse_feed(body, url, source_id=source_id, content_type=content_type, organization=organization,
                        max_items=max_items, http_content_type=http_content_type)
    return Batch(source_id, parsed.resources, url=url, http_status=http_status, warnings=parsed.warnings,
                 site=absolute_url(parsed.link, url))


def entry_link_and_type(link: str | None, enclosure: dict[str, Any] | None, base: str,
                        content_type: str) -> tuple[str | None, str, dict[str, Any]]:
    """An entry's link (its own, else its enclosure's: a podcast episode, a PDF), made absolute
    (http(s) only: javascript:, data:, file:, protocol-relative and credential-bearing links
    are never kept, see :func:`pipeline.urls.absolute_url`), its content type and the extra
    fields saying what the enclosure is. Shared by RSS/Atom and JSON Feed."""
    extra: dict[str, Any] = {}
    kind = media_kind(enclosure.get("type"), enclosure["url"]) if enclosure else None
    if enclosure:
        extra["enclosure"] = {k: v for k, v in enclosure.items() if v}
        if kind:
            extra["media"] = kind
    raw = link or (enclosure or {}).get("url")
    absolute = absolute_url(raw, base) if raw else None
    ctype = content_type
    if absolute and not link and kind:
        ctype = MEDIA_CONTENT_TYPES[kind]  # known only by its enclosure: what the enclosure is
    if absolute and is_document_url(absolute):
        ctype = "document"
    return absolute, ctype, extra


def _entry_resource(entry: Any, base: str, *, content_type: str, source_id: str, organization: str | None,
                    language: str | None, declared_types: bool = False) -> Resource | None | bool:
    """One entry as a Resource; None when it has no link at all, False when its link is unsafe."""
    own = _entry_link(entry)
    enclosure = _enclosure(entry)
    if not own and not enclosure:
        return None
    link, ctype, extra = entry_link_and_type(own, enclosure, base, content_type)
    if not link:
        return False
    description = _description(entry, declared_types)
    if entry.get("tags"):
        extra["tags"] = [t.get("term") for t in entry.get("tags", []) or [] if t.get("term")]
    return Resource(
        url=link,
        # an entry without a title (a microblog post) is titled from its text, not its URL
        title=_as_html(entry.get("title") or "", entry.get("title_detail"), declared_types)
        or title_from_text(description),
        description=description,
        content_type=ctype,
        source_id=source_id,
        organization=organization,
        published=parse_date(entry_date(entry, "published", "created", "updated")),
        updated=parse_date(entry_date(entry, "updated")),
        author=entry.get("author"),
        language=language,
        extra=extra,
        raw=_plain({k: v for k, v in entry.items() if k not in ("summary_detail", "title_detail")}),
    )


def looks_like_json(body: bytes) -> bool:
    """Whether a feed document is JSON (a JSON Feed, or JSON that is not a feed at all)."""
    return body[:64].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def parse_feed(body: bytes, url: str, *, source_id: str = "", content_type: str = "article",
               organization: str | None = None, max_items: int = 1000,
               http_content_type: str | None = None) -> ParsedFeed:
    """Resources from a feed's entries. Raises :class:`NotAFeed` if it is not a feed;
    a malformed feed that could be partly read gives a warning instead."""
    warnings: list[str] = []
    if looks_like_json(body):
        from harvesters.parsers.jsonfeed import parse_json_feed

        return parse_json_feed(body, url, source_id=source_id, content_type=content_type, organization=organization,
                               max_items=max_items)
    body, total = cut_entries(body, max_items)
    http_content_type = xml_content_type(http_content_type)
    body, http_content_type, encoding_warning = repair_encoding(body, http_content_type)
    # plain RSS 2.0 through lxml, anything else (and anything malformed) through feedparser
    parsed = (None if encoding_warning else parse_plain_rss(body, http_content_type)) \
        or parse_feed_bytes(body, None, http_content_type)
    check_is_feed(parsed, body)
    # Relative entry links mean the site, not the feed's host (as Miniflux resolves them).
    base = absolute_url(parsed.feed.get("link"), url) or url
    warnings += bozo_warnings(parsed)
    if encoding_warning:
        warnings.append(encoding_warning)
    resources = []
    entries = parsed.entries
    if total is not None or len(entries) > max_items:
        warnings.append(f"feed has {total or len(entries)} entries; kept the first {max_items} (max_items)")
        entries = entries[:max_items]
    missing_links = unsafe_links = 0
    for entry in entries:
        resource = _entry_resource(entry, base, content_type=content_type, source_id=source_id,
                                   organization=organization, language=parsed.feed.get("language"),
                                   declared_types=str(parsed.get("version", "")).startswith("atom"))
        if resource is None:
            missing_links += 1
        elif resource is False:
            unsafe_links += 1
        else:
            resources.append(resource)
    if missing_links:
        warnings.append(f"{missing_links} entries had no link and were skipped")
    if unsafe_links:
        warnings.append(f"{unsafe_links} entries had a link that is not a plain http(s) URL "
                        "(javascript:, data:, file:, protocol-relative or with a password) and were skipped")
    return ParsedFeed(
        title=parsed.feed.get("title", ""),
        link=parsed.feed.get("link"),
        resources=resources,
        warnings=warnings,
        version=parsed.get("version", ""),
    )
