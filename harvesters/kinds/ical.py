"""``ical``: an iCalendar feed (a Sched event's ``/all.ics``); one event per VEVENT."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal

from scrapy import Request
from scrapy.http import Response

from harvesters.source import EventSourceBase, kind
from pipeline.resource import Batch


class ICalSource(EventSourceBase):
    """An iCalendar feed (a Sched event's ``/all.ics``): one event per VEVENT."""

    kind_name: ClassVar[str] = "ical"
    example: ClassVar[str] = """
- id: nwill-2020-sched
  name: NWILL 2020 (Sched)
  kind: ical
  url: https://nwill2020.sched.com/all.ics
  event_name: NWILL 2020
  timezone: America/Los_Angeles
  topics: [conferences]
"""
    kind: Literal["ical"]


@kind(ICalSource)
class ICalHandler:
    """An iCalendar feed: one event resource per VEVENT."""

    def start(self, source: ICalSource) -> Iterable[Request]:
        yield Request(source.url)

    def parse(self, response: Response, source: ICalSource) -> Iterable[Batch]:
        from harvesters.parsers.ical import parse_ical

        parsed = parse_ical(
            response.body, response.url, source_id=source.id, organization=source.organization,
            event_name=source.event_name, timezone=source.timezone, include_breaks=source.include_breaks,
            max_items=source.max_items,
        )
        yield Batch(source.id, parsed.resources, url=response.url, http_status=response.status,
                    warnings=parsed.warnings)
