from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scrapy import Request
from scrapy.http import Response

from harvesters.kinds import register, response_content_type
from harvesters.parsers.youtube import feed_url_for, feed_url_from_page, feed_url_from_page_url, parse_youtube_feed
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

    def parse(self, response: Response, source: Any) -> Iterable[Request | Batch]:
        if response.meta.get("illhub_step") == "channel_page":
            feed = feed_url_from_page(response.body, response.url)
            if not feed:
                raise ChannelNotFound(
                    f"no channel feed found in {response.url}; set channel_id (UC…) in the registry instead"
                )
            yield Request(feed)
            return
        parsed = parse_youtube_feed(response.body, response.url, source_id=source.id,
                                    organization=source.organization, max_items=source.max_items,
                                    http_content_type=response_content_type(response))
        yield Batch(source.id, parsed.resources, url=response.url, http_status=response.status,
                    warnings=parsed.warnings)
