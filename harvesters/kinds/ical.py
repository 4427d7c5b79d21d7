"""``ical``: an iCalendar feed (a Sched event's ``/all.ics``); one event per VEVENT."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

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
        return self._parse(response.body, response.url, source)

    @staticmethod
    def _parse(body: bytes, url: str, source: ICalSource) -> ParsedEvents:
        """The calendar's events, as a harvest and check-registry both read them."""
        from harvesters.parsers.ical import parse_ical

        return parse_ical(
            body, url, source_id=source.id, organization=source.organization,
            event_name=source.event_name, timezone=source.timezone, include_breaks=source.include_breaks,
            max_items=source.max_items,
        )

    # -- illhub check-registry: the one request that says whether the URL is of this kind --

    check_advice = "point url at the .ics itself (Sched: https://<event>.sched.com/all.ics)"

    def check_probes(self, source: ICalSource) -> list[tuple[str, str, str, str]]:
        return [("ical", source.url, "ical", "a calendar")]

    def read_check(self, check: Any, c: Any, body: bytes, headers: dict[str, Any]) -> str | None:
        from harvesters.parsers.ical import NotACalendar

        try:
            parsed = self._parse(body, check.last_url, check.source)
        except NotACalendar as e:
            return str(e)
        n = len(parsed.resources)
        if not n:
            return "the calendar holds no events"
        c.evidence = f"a calendar: {n} event{'s' if n != 1 else ''}"
        return None

