"""``ical``: an iCalendar feed (a Sched event's ``/all.ics``); one event per VEVENT."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from harvesters.source import EventHandler, EventSourceBase, kind

if TYPE_CHECKING:
    from scrapy.http import Response

    from harvesters.parsers.eventtext import ParsedEvents


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
class ICalHandler(EventHandler):
    """An iCalendar feed: one event resource per VEVENT."""

    def read(self, response: Response, source: ICalSource) -> ParsedEvents:
        from harvesters.parsers.ical import parse_ical

        return parse_ical(
            response.body, response.url, source_id=source.id, organization=source.organization,
            event_name=source.event_name, timezone=source.timezone, include_breaks=source.include_breaks,
            max_items=source.max_items,
        )
