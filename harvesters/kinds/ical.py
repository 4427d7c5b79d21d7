from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scrapy import Request
from scrapy.http import Response

from harvesters.kinds import register
from harvesters.parsers.ical import parse_ical
from pipeline.resource import Batch


@register("ical")
class ICalHandler:
    """An iCalendar feed: one event resource per VEVENT."""

    def start(self, source: Any) -> Iterable[Request]:
        yield Request(source.url)

    def parse(self, response: Response, source: Any) -> Iterable[Batch]:
        parsed = parse_ical(
            response.body, response.url, source_id=source.id, organization=source.organization,
            event_name=source.event_name, timezone=source.timezone, include_breaks=source.include_breaks,
            max_items=source.max_items,
        )
        yield Batch(source.id, parsed.resources, url=response.url, http_status=response.status,
                    warnings=parsed.warnings)
