"""``feed``: an RSS 0.9x/1.0/2.0, Atom or JSON Feed; one resource per entry."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal

from scrapy import Request
from scrapy.http import Response

from harvesters.source import SourceBase, kind, response_content_type
from pipeline.resource import Batch


class FeedSource(SourceBase):
    """An RSS 0.9x/1.0/2.0, Atom or JSON Feed (1, 1.1) at ``url``."""

    kind_name: ClassVar[str] = "feed"
    default_content_type: ClassVar[str] = "article"
    example: ClassVar[str] = """
- id: oclc-next-blog
  name: OCLC Next blog
  kind: feed
  url: https://blog.oclc.org/next/feed/
  organization: OCLC
  topics: [news]
  notes: A WordPress blog; its feed is at /feed/.
"""
    kind: Literal["feed"]
    url: str
    """The feed's own address (RSS 0.9x, 1.0 or 2.0, Atom, or JSON Feed), not the web page that links to it:
    look for the page's RSS link (WordPress: `/feed/`)."""


@kind(FeedSource)
class FeedHandler:
    def start(self, source: FeedSource) -> Iterable[Request]:
        yield Request(source.url)

    def offload(self, response: Response, source: FeedSource) -> tuple[Callable[..., Batch], dict[str, Any]]:
        """The pure function that turns this document into its batch, and its arguments
        (run in a parse worker when the harvest has them: harvesters/offload.py)."""
        from harvesters.parsers.feed import feed_batch

        return feed_batch, {
            "body": response.body, "url": response.url, "source_id": source.id,
            "content_type": source.resource_type, "organization": source.organization,
            "max_items": source.max_items, "http_content_type": response_content_type(response),
            "http_status": response.status,
        }

    def parse(self, response: Response, source: FeedSource) -> Iterable[Batch]:
        fn, kwargs = self.offload(response, source)
        yield fn(**kwargs)

    # -- illhub check-registry: the one request that says whether the URL is of this kind --

    check_advice = "point url at the feed itself (the page's RSS/Atom link), or run illhub add-source URL"

    def check_probes(self, source: FeedSource) -> list[tuple[str, str, str, str]]:
        return [("feed", source.url, "feed", "a feed")]

