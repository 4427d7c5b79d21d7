"""JSON Feed (https://jsonfeed.org, versions 1 and 1.1; ``application/feed+json``): pure JSON
in, the same :class:`~harvesters.parsers.feed.ParsedFeed` as RSS and Atom out.

An item's link is its ``url``, else its ``external_url``, else its ``id`` when that is a web
address, else its first attachment (a podcast episode: the content type then follows the
attachment's MIME type, as for an RSS enclosure). An item without a title is titled with the
first sentence of its text. Version 1.1's ``authors`` and ``language`` are read, and version
1's ``author``; an item without an author takes the feed's.
"""

from __future__ import annotations

import json
from typing import Any

from harvesters.parsers.feed import RAW_TEXT_MAX, NotAFeed, ParsedFeed, entry_link_and_type
from harvesters.parsers.text import title_from_text
from pipeline.normalize import clean_text, parse_date
from pipeline.resource import Resource
from pipeline.urls import absolute_url

VERSION_PREFIX = "https://jsonfeed.org/version/"


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _authors(node: dict[str, Any]) -> list[str]:
    people = node.get("authors")
    if not isinstance(people, list):
        people = [node.get("author")] if isinstance(node.get("author"), dict) else []
    return [clean_text(p["name"], 200) for p in people if isinstance(p, dict) and _str(p.get("name"))]


def _attachment(item: dict[str, Any]) -> dict[str, Any] | None:
    for a in item.get("attachments") or []:
        if isinstance(a, dict) and _str(a.get("url")):
            length = a.get("size_in_bytes")
            return {"url": _str(a["url"]), "type": _str(a.get("mime_type")).lower() or None,
                    "length": length if isinstance(length, int) and length > 0 else None,
                    "title": _str(a.get("title")) or None}
    return None


def _own_link(item: dict[str, Any]) -> str | None:
    for key in ("url", "external_url", "id"):
        value = _str(item.get(key))
        if value and (key != "id" or value.startswith(("http://", "https://"))):
            return value
    return None


def _raw(item: dict[str, Any]) -> dict[str, Any]:
    return {k: (v[:RAW_TEXT_MAX] if isinstance(v, str) else v) for k, v in item.items()}


def load_json_feed(body: bytes) -> dict[str, Any]:
    """The feed object; :class:`NotAFeed` for JSON that is not a JSON Feed."""
    try:
        data = json.loads(body.decode("utf-8-sig", errors="replace"))
    except ValueError as e:
        raise NotAFeed(f"not an RSS or Atom feed, nor a JSON Feed (JSON that cannot be read: {str(e)[:80]})") from None
    version = data.get("version") if isinstance(data, dict) else None
    if not (isinstance(version, str) and version.startswith(VERSION_PREFIX)) or not isinstance(data.get("items"), list):
        raise NotAFeed("not an RSS or Atom feed, nor a JSON Feed (JSON without a jsonfeed.org version and items)")
    return data


def parse_json_feed(body: bytes, url: str, *, source_id: str = "", content_type: str = "article",
                    organization: str | None = None, max_items: int = 1000) -> ParsedFeed:
    """Resources from a JSON Feed's items. Raises :class:`NotAFeed` if it is not one."""
    data = load_json_feed(body)
    home = absolute_url(_str(data.get("home_page_url")), url)
    base = home or url
    language = _str(data.get("language")) or None
    feed_authors = _authors(data)
    warnings: list[str] = []
    items = [i for i in data["items"] if isinstance(i, dict)]
    if len(items) > max_items:
        warnings.append(f"feed has {len(items)} entries; kept the first {max_items} (max_items)")
        items = items[:max_items]
    resources: list[Resource] = []
    missing = unsafe = 0
    for item in items:
        own, attachment = _own_link(item), _attachment(item)
        if not own and not attachment:
            missing += 1
            continue
        link, ctype, extra = entry_link_and_type(own, attachment, base, content_type)
        if not link:
            unsafe += 1
            continue
        text = _str(item.get("content_html")) or _str(item.get("content_text"))
        tags = [clean_text(t, 60) for t in item.get("tags") or [] if isinstance(t, str) and t.strip()]
        if tags:
            extra["tags"] = tags
        authors = _authors(item) or feed_authors
        resources.append(Resource(
            url=link,
            title=_str(item.get("title")) or title_from_text(_str(item.get("summary")) or text),
            description=_str(item.get("summary")) or text,
            content_type=ctype,
            source_id=source_id,
            organization=organization,
            published=parse_date(_str(item.get("date_published")) or None),
            updated=parse_date(_str(item.get("date_modified")) or None),
            author=", ".join(authors[:5]) or None,
            language=_str(item.get("language")) or language,
            thumbnail=absolute_url(_str(item.get("image")) or _str(item.get("banner_image")), base),
            extra=extra,
            raw=_raw(item),
        ))
    if missing:
        warnings.append(f"{missing} entries had no link and were skipped")
    if unsafe:
        warnings.append(f"{unsafe} entries had a link that is not a plain http(s) URL and were skipped")
    version = "json11" if data["version"].rstrip("/").endswith("1.1") else "json1"
    return ParsedFeed(title=clean_text(_str(data.get("title")), 300), link=home, resources=resources,
                      warnings=warnings, version=version)
