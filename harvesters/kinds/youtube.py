from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from scrapy import Request
from scrapy.http import Response

from harvesters.kinds import register, response_content_type
from harvesters.parsers.youtube import feed_url_for, feed_url_from_page, feed_url_from_page_url, youtube_batch
from pipeline.resource import Batch


class ChannelNotFound(ValueError):
    pass


@register("youtube")
class YouTubeHandler:
    def start(self, source: Any) -> Iterable[Request]:
        if source.channel_id or source.playlist_id:
            yield Request(feed_url_for(channel_id=source.channel_id, playlist_id=source.playlist_id))
            return
        feed = feed_url_from_page_url(source.url)
        if feed:
            yield Request(feed)
        else:  # a /@handle page: fetch it and find the channel's feed
            yield Request(source.url, meta={"illhub_step": "channel_page"})

    def offload(self, response: Response, source: Any) -> tuple[Callable[..., Batch], dict[str, Any]] | None:
        """The pure function that turns a channel feed into its batch, and its arguments
        (None for a channel page, which only leads to the feed)."""
        if response.meta.get("illhub_step") == "channel_page":
            return None
        return youtube_batch, {
            "body": response.body, "url": response.url, "source_id": source.id, "organization": source.organization,
            "max_items": source.max_items, "http_content_type": response_content_type(response),
            "http_status": response.status,
        }

    def parse(self, response: Response, source: Any) -> Iterable[Request | Batch]:
        if response.meta.get("illhub_step") == "channel_page":
            feed = feed_url_from_page(response.body, response.url)
            if not feed:
                raise ChannelNotFound(
                    f"no channel feed found in {response.url}; set channel_id (UC…) in the registry instead"
                )
            yield Request(feed)
            return
        fn, kwargs = self.offload(response, source)
        yield fn(**kwargs)
