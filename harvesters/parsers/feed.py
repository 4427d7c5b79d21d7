"""RSS 0.9x/1.0/2.0 and Atom with feedparser, which is only ever handed bytes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from pipeline.normalize import parse_date
from pipeline.resource import Resource
from pipeline.urls import absolute_url

#: feedparser's own fetching and file access are never used: it gets bytes only.
feedparser.RESOLVE_RELATIVE_URIS = True
feedparser.SANITIZE_HTML = True

DOCUMENT_SUFFIXES = (".pdf", ".ppt", ".pptx", ".doc", ".docx", ".xls", ".xlsx")


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
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if not str(k).endswith("_parsed")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


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


def _description(entry: Any) -> str:
    summary = entry.get("summary") or ""
    if not summary:
        for content in entry.get("content", []) or []:
            if content.get("value"):
                return content["value"]
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


def entry_date(entry: Any, *names: str) -> Any:
    """The first of the named dates the entry really has.

    Read with ``dict.get``: feedparser's own ``get('updated')`` silently answers with the
    published date when there is no updated date (a deprecated fallback), which would
    invent an update time.
    """
    for name in names:
        parsed = dict.get(entry, f"{name}_parsed")
        if parsed:
            return parsed
    for name in names:
        if dict.get(entry, name):
            return dict.get(entry, name)
    return None


def parse_feed(body: bytes, url: str, *, source_id: str = "", content_type: str = "article",
               organization: str | None = None, max_items: int = 1000,
               http_content_type: str | None = None) -> ParsedFeed:
    """Resources from a feed's entries. Raises :class:`NotAFeed` if it is not a feed;
    a malformed feed that could be partly read gives a warning instead."""
    parsed = parse_feed_bytes(body, None, http_content_type)
    check_is_feed(parsed, body)
    # Relative entry links mean the site, not the feed's host (as Miniflux resolves them).
    base = absolute_url(parsed.feed.get("link"), url) or url
    warnings = bozo_warnings(parsed)
    resources = []
    entries = parsed.entries
    if len(entries) > max_items:
        warnings.append(f"feed has {len(entries)} entries; kept the first {max_items} (max_items)")
        entries = entries[:max_items]
    missing_links = 0
    for entry in entries:
        link = _entry_link(entry)
        if link and not urlsplit(link).scheme and not link.startswith("//"):
            link = urljoin(base, link)
        if not link:
            missing_links += 1
            continue
        ctype = content_type
        if link.lower().split("?")[0].endswith(DOCUMENT_SUFFIXES):
            ctype = "document"
        resources.append(
            Resource(
                url=link,
                title=entry.get("title") or "",
                description=_description(entry),
                content_type=ctype,
                source_id=source_id,
                organization=organization,
                published=parse_date(entry_date(entry, "published", "created", "updated")),
                updated=parse_date(entry_date(entry, "updated")),
                author=entry.get("author"),
                language=parsed.feed.get("language"),
                extra={"tags": [t.get("term") for t in entry.get("tags", []) or [] if t.get("term")]}
                if entry.get("tags") else {},
                raw=_plain({k: v for k, v in entry.items() if k not in ("summary_detail", "title_detail")}),
            )
        )
    if missing_links:
        warnings.append(f"{missing_links} entries had no link and were skipped")
    return ParsedFeed(
        title=parsed.feed.get("title", ""),
        link=parsed.feed.get("link"),
        resources=resources,
        warnings=warnings,
        version=parsed.get("version", ""),
    )
