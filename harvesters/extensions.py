"""Scrapy extensions of the harvester."""

from __future__ import annotations

from time import monotonic
from typing import Any

from scrapy import signals


class SpacingFromResponse:
    """Count a host's download delay from when its last response arrived, not from when
    the request left.

    Scrapy measures ``DOWNLOAD_DELAY`` from the moment a request is dequeued; event-loop lag
    can then put two requests closer together at the server than the delay. With one request
    at a time per host, restarting the clock when the response arrives guarantees the server
    sees at least the delay between requests (measured by benchmarks/politeness.py).
    """

    def __init__(self, crawler: Any):
        self.crawler = crawler
        crawler.signals.connect(self.response_downloaded, signal=signals.response_downloaded)

    @classmethod
    def from_crawler(cls, crawler: Any) -> SpacingFromResponse:
        return cls(crawler)

    def response_downloaded(self, response: Any, request: Any, spider: Any = None) -> None:
        downloader = self.crawler.engine.downloader
        slot = downloader.slots.get(request.meta.get("download_slot") or downloader.get_slot_key(request))
        if slot is not None:
            slot.lastseen = monotonic()
