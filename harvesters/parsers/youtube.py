"""YouTube channel and playlist feeds (Atom with the ``yt`` and ``media`` namespaces).

Quirks handled: the feed-level ``yt:channelId`` may lack the ``UC`` prefix that every
entry's keeps; ``media:description`` is often empty (Shorts); a ``/shorts/`` link marks
a Short; there is no duration; a feed holds at most 15 entries.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from harvesters.parsers.feed import ParsedFeed, bozo_warnings, check_is_feed, entry_date, parse_feed_bytes
from pipeline.normalize import parse_date
from pipeline.resource import Batch, Resource
from pipeline.urls import absolute_url

FEED_PATH = "/feeds/videos.xml"
CHANNEL_ID_IN_PAGE = re.compile(rb'(?:"channelId"\s*:\s*"|channel_id=|/channel/)(UC[A-Za-z0-9_-]{22})')
FEED_LINK_IN_PAGE = re.compile(
    rb'<link[^>]+type="application/rss\+xml"[^>]+href="([^"]*/feeds/videos\.xml\?channel_id=UC[A-Za-z0-9_-]{22})"'
)


def feed_url_for(*, channel_id: str | None = None, playlist_id: str | None = None,
                 base: str = "https://www.youtube.com") -> str:
    if channel_id:
        return f"{base}{FEED_PATH}?channel_id={channel_id}"
    if playlist_id:
        return f"{base}{FEED_PATH}?playlist_id={playlist_id}"
    raise ValueError("channel_id or playlist_id is required")


def feed_url_from_page_url(url: str) -> str | None:
    """The feed of a ``/channel/UC…`` page, derived without fetching; None for ``/@handle``."""
    parts = urlsplit(url)
    m = re.match(r"^/channel/(UC[A-Za-z0-9_-]{22})", parts.path)
    if m:
        return feed_url_for(channel_id=m.group(1), base=f"{parts.scheme}://{parts.netloc}")
    if parts.path.endswith(FEED_PATH):
        return url
    return None


def feed_url_from_page(body: bytes, page_url: str) -> str | None:
    """Find a channel's feed in its HTML page (the RSS ``<link>``, else the channel id)."""
    parts = urlsplit(page_url)
    base = f"{parts.scheme}://{parts.netloc}"
    m = FEED_LINK_IN_PAGE.search(body)
    if m:
        href = m.group(1).decode("ascii", "replace").replace("&amp;", "&")
        channel = re.search(r"channel_id=(UC[A-Za-z0-9_-]{22})", href)
        if channel:
            return feed_url_for(channel_id=channel.group(1), base=base)
    m = CHANNEL_ID_IN_PAGE.search(body)
    if m:
        return feed_url_for(channel_id=m.group(1).decode("ascii"), base=base)
    return None


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def youtube_batch(body: bytes, url: str, *, source_id: str, organization: str | None = None,
                  max_items: int = 1000, http_content_type: str | None = None,
                  http_status: int | None = None) -> Batch:
    """One channel or playlist feed as the batch a ``youtube`` source stores (used inline and
    in parse workers)."""
    parsed = parse_youtube_feed(body, url, source_id=source_id, organization=organization, max_items=max_items,
                                http_content_type=http_content_type)
    return Batch(source_id, parsed.resources, url=url, http_status=http_status, warnings=parsed.warnings,
                 site=absolute_url(parsed.link, url))


def parse_youtube_feed(body: bytes, url: str, *, source_id: str = "", organization: str | None = None,
                       max_items: int = 1000, http_content_type: str | None = None) -> ParsedFeed:
    parsed = parse_feed_bytes(body, url, http_content_type)
    check_is_feed(parsed, body)
    warnings = bozo_warnings(parsed)
    feed_channel = parsed.feed.get("yt_channelid") or ""
    if feed_channel and not feed_channel.startswith("UC"):
        feed_channel = "UC" + feed_channel
    # A playlist feed's title is the playlist's; its author is the channel.
    channel_title = parsed.feed.get("author") or parsed.feed.get("title") or ""
    resources = []
    for entry in parsed.entries[:max_items]:
        video_id = entry.get("yt_videoid")
        link = entry.get("link") or (f"https://www.youtube.com/watch?v={video_id}" if video_id else None)
        if not link:
            continue
        is_short = "/shorts/" in link
        if is_short and video_id:
            link = f"https://www.youtube.com/watch?v={video_id}"
        thumbs = entry.get("media_thumbnail") or []
        stats = entry.get("media_statistics") or {}
        rating = entry.get("media_starrating") or {}
        channel_id = entry.get("yt_channelid") or feed_channel
        extra = {
            "video_id": video_id,
            "channel_id": channel_id,
            "channel_title": channel_title,
            "is_short": is_short,
        }
        if _int(stats.get("views")) is not None:
            extra["views"] = _int(stats.get("views"))
        if _float(rating.get("average")) is not None:
            extra["star_rating"] = _float(rating.get("average"))
            extra["rating_count"] = _int(rating.get("count"))
        resources.append(
            Resource(
                url=link,
                title=entry.get("title") or "",
                description=entry.get("summary") or "",
                content_type="video",
                source_id=source_id,
                organization=organization,
                published=parse_date(entry_date(entry, "published")),
                updated=parse_date(entry_date(entry, "updated")),
                author=entry.get("author") or channel_title or None,
                thumbnail=thumbs[0].get("url") if thumbs else None,
                extra=extra,
                raw={k: (v if isinstance(v, (str, int, float, bool, list, dict)) else str(v))
                     for k, v in entry.items() if not k.endswith("_parsed") and not k.endswith("_detail")},
            )
        )
    return ParsedFeed(title=parsed.feed.get("title") or channel_title, link=parsed.feed.get("link"), resources=resources,
                      warnings=warnings, version=parsed.get("version", ""),
                      meta={"channel_id": feed_channel})
