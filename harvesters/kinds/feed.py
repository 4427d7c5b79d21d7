from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scrapy import Request
from scrapy.http import Response

from harvesters.kinds import register, response_content_type
from harvesters.parsers.feed import parse_feed
from pipeline.resource import Batch


@register("feed")
class FeedHandler:
    def start(self, source: Any) -> Iterable[Request]:
        yield Request(source.url)

    def parse(self, response: Response, source: Any) -> Iterable[Batch]:
        parsed = parse_feed(
            response.body, response.url, source_id=source.id, content_type=source.resource_type,
            organization=source.organization, max_items=source.max_items,
            http_content_type=response_content_type(response),
        )
        yield Batch(source.id, parsed.resources, url=response.url, http_status=response.status,
                    warnings=parsed.warnings)
