from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from scrapy import Request
from scrapy.http import Response

from harvesters.kinds import register, response_content_type
from harvesters.parsers.feed import feed_batch
from pipeline.resource import Batch


@register("feed")
class FeedHandler:
    def start(self, source: Any) -> Iterable[Request]:
        yield Request(source.url)

    def offload(self, response: Response, source: Any) -> tuple[Callable[..., Batch], dict[str, Any]]:
        """The pure function that turns this document into its batch, and its arguments
        (run in a parse worker when the harvest has them: harvesters/offload.py)."""
        return feed_batch, {
            "body": response.body, "url": response.url, "source_id": source.id,
            "content_type": source.resource_type, "organization": source.organization,
            "max_items": source.max_items, "http_content_type": response_content_type(response),
            "http_status": response.status,
        }

    def parse(self, response: Response, source: Any) -> Iterable[Batch]:
        fn, kwargs = self.offload(response, source)
        yield fn(**kwargs)
