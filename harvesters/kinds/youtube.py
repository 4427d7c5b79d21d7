"""``youtube``: a YouTube channel's or playlist's video feed; one resource per video."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator
from scrapy import Request
from scrapy.http import Response

from harvesters.source import FieldProblem, SourceBase, kind, response_content_type
from pipeline.resource import Batch

YOUTUBE_CHANNEL_ID = re.compile(r"^UC[A-Za-z0-9_-]{22}$")
YOUTUBE_PLAYLIST_ID = re.compile(r"^(PL|UU|FL|LL|OL|RD)[A-Za-z0-9_-]{10,}$")


class ChannelNotFound(ValueError):
    pass


class YouTubeSource(SourceBase):
    """A YouTube channel or playlist: ``channel_id``, ``playlist_id``, or ``url`` set to the
    feed URL or a channel page (``/@handle``, ``/channel/UC…``)."""

    kind_name: ClassVar[str] = "youtube"
    default_content_type: ClassVar[str] = "video"
    example: ClassVar[str] = """
# one of channel_id, playlist_id or url (the ids here are placeholders)
- id: consortium-youtube
  name: Our consortium on YouTube
  kind: youtube
  channel_id: UCxxxxxxxxxxxxxxxxxxxxxx
  organization: Our Consortium
  topics: [training]
- id: consortium-webinars
  name: Our consortium's webinar playlist
  kind: youtube
  playlist_id: PLxxxxxxxxxxxxxxxx
- id: state-library-youtube
  name: State Library on YouTube
  kind: youtube
  url: https://www.youtube.com/@statelibrary
"""
    kind: Literal["youtube"]
    url: str | None = None
    """Instead of an id: a channel page (`https://www.youtube.com/@handle`, `/channel/UC…`; a handle page is
    fetched once per harvest to find the channel's feed) or the feed itself (`/feeds/videos.xml?channel_id=…`)."""
    channel_id: str | None = None
    """A channel id (`UC` + 22 characters); the feed URL is derived from it."""
    playlist_id: str | None = None
    """A playlist id (`PL…`, `UU…`); the feed URL is derived from it."""

    @field_validator("channel_id")
    @classmethod
    def _check_channel(cls, v: str | None) -> str | None:
        if v is not None and not YOUTUBE_CHANNEL_ID.match(v):
            raise ValueError(f"{v!r} is not a YouTube channel id (UC followed by 22 characters)")
        return v

    @field_validator("playlist_id")
    @classmethod
    def _check_playlist(cls, v: str | None) -> str | None:
        if v is not None and not YOUTUBE_PLAYLIST_ID.match(v):
            raise ValueError(f"{v!r} is not a YouTube playlist id (such as PL… or UU…)")
        return v

    @model_validator(mode="after")
    def _one_way(self) -> YouTubeSource:
        given = [n for n in ("channel_id", "playlist_id", "url") if getattr(self, n)]
        if len(given) != 1:
            raise FieldProblem(
                "channel_id/playlist_id/url",
                "give exactly one of channel_id, playlist_id or url (a channel page or feed URL)"
                + (f"; got {', '.join(given)}" if given else "")
            )
        if self.url:
            path = urlsplit(self.url).path
            if not (path.startswith("/@") or path.startswith("/channel/UC") or path.endswith("/feeds/videos.xml")
                    or path.startswith("/c/") or path.startswith("/user/")):
                raise FieldProblem(
                    "url",
                    "url must be a channel page (https://www.youtube.com/@handle or /channel/UC…) "
                    "or a feed (https://www.youtube.com/feeds/videos.xml?channel_id=…)"
                )
        return self


@kind(YouTubeSource)
class YouTubeHandler:
    def start(self, source: YouTubeSource) -> Iterable[Request]:
        from harvesters.parsers.youtube import feed_url_for, feed_url_from_page_url

        if source.channel_id or source.playlist_id:
            yield Request(feed_url_for(channel_id=source.channel_id, playlist_id=source.playlist_id))
            return
        feed = feed_url_from_page_url(source.url)
        if feed:
            yield Request(feed)
        else:  # a /@handle page: fetch it and find the channel's feed
            yield Request(source.url, meta={"illhub_step": "channel_page"})

    def offload(self, response: Response, source: YouTubeSource) -> tuple[Callable[..., Batch], dict[str, Any]] | None:
        """The pure function that turns a channel feed into its batch, and its arguments
        (None for a channel page, which only leads to the feed)."""
        from harvesters.parsers.youtube import youtube_batch

        if response.meta.get("illhub_step") == "channel_page":
            return None
        return youtube_batch, {
            "body": response.body, "url": response.url, "source_id": source.id, "organization": source.organization,
            "max_items": source.max_items, "http_content_type": response_content_type(response),
            "http_status": response.status,
        }

    def parse(self, response: Response, source: YouTubeSource) -> Iterable[Request | Batch]:
        from harvesters.parsers.youtube import feed_url_from_page

        if response.meta.get("illhub_step") == "channel_page":
            feed = feed_url_from_page(response.body, response.url)
            if not feed:
                raise ChannelNotFound(
                    f"no channel feed found in {response.url}; set channel_id (UC…) in the registry instead"
                )
            yield Request(feed)
            return
        call = self.offload(response, source)
        assert call is not None
        fn, kwargs = call
        yield fn(**kwargs)

    # -- illhub check-registry: the one request that says whether the URL is of this kind --

    check_advice = "set channel_id (UC…, from the channel page's source) instead of url"

    def check_probes(self, source: YouTubeSource) -> list[tuple[str, str, str, str]]:
        from harvesters.parsers.youtube import feed_url_for, feed_url_from_page_url

        feed = (feed_url_for(channel_id=source.channel_id, playlist_id=source.playlist_id)
                if source.channel_id or source.playlist_id else feed_url_from_page_url(source.url))
        if feed:
            return [("youtube", feed, "youtube-feed", "a YouTube feed")]
        return [("youtube", source.url, "channel-page", "a YouTube channel page")]

    def read_check(self, check: Any, c: Any, body: bytes, headers: dict[str, Any]) -> str | None:
        from harvesters.registry_check import content_type

        if c.purpose == "channel-page":
            from harvesters.parsers.youtube import feed_url_from_page

            feed = feed_url_from_page(body, check.last_url)
            if not feed:
                return "the page names no channel feed (is it a channel page?)"
            channel = feed.rsplit("channel_id=", 1)[-1]
            c.evidence = f"a channel page: channel {channel}"
            c.fields["channel_id"] = channel
            return None
        from harvesters.discover import read_feed

        parsed = read_feed(body, c.probe or check.last_url, content_type(headers) or "")
        if parsed is None:
            return "not a YouTube feed (no Atom feed in the answer)"
        title = (parsed.feed.get("title") or "").strip()
        n = len(parsed.entries)
        c.evidence = f"a YouTube feed{f' ({title})' if title else ''}: {n} video{'s' if n != 1 else ''}"
        return None

