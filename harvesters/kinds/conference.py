from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scrapy import Request
from scrapy.http import Response

from harvesters.kinds import register, response_content_type
from harvesters.parsers.conference import parse_program
from pipeline.resource import Batch


@register("conference")
class ConferenceHandler:
    """A conference program page: one event resource per session."""

    def start(self, source: Any) -> Iterable[Request]:
        yield Request(source.url)

    def parse(self, response: Response, source: Any) -> Iterable[Batch]:
        parsed = parse_program(
            response.body, response.url, source_id=source.id, organization=source.organization,
            event_name=source.event_name, year=source.year, timezone=source.timezone,
            selectors=source.selectors.model_dump() if source.selectors else None,
            include_breaks=source.include_breaks, max_items=source.max_items,
            http_content_type=response_content_type(response),
        )
        yield Batch(source.id, parsed.resources, url=response.url, http_status=response.status,
                    warnings=parsed.warnings)
