"""Reading a calendar file as calendars publish them, and expanding its repeating events.

*Tolerant reading.* ``icalendar`` refuses a whole file for one unreadable property outside an
event (a bad ``RDATE`` in a VTIMEZONE block, say) and for a file holding two VCALENDARs. Here
such a file keeps everything that reads: several VCALENDARs are read one after the other, a
property that cannot be read is left out (and named), and a file that stops before its END
lines keeps the components it had. Inside events ``icalendar``'s own tolerance applies (the
property is kept as unreadable and the event parser says so).

*Repeating events* (``RRULE``, ``RDATE``, ``EXDATE``, and ``RECURRENCE-ID`` overrides sharing
the master's UID) are expanded with ``recurring-ical-events`` over a bounded window around
the harvest (:data:`WINDOW_BACK` before it, :data:`WINDOW_AHEAD` after it), at most
:data:`MAX_OCCURRENCES` per event; a series that ends before the window keeps its last
occurrences, one that starts after it its first ones.
"""

from __future__ import annotations

import itertools
import warnings
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import icalendar
import recurring_ical_events
from icalendar.error import GloballyUniqueTZIDGuessed
from icalendar.parser.ical.component import ComponentIcalParser

#: How far back and ahead of the harvest a repeating event's occurrences are kept.
WINDOW_BACK = timedelta(days=365)
WINDOW_AHEAD = timedelta(days=2 * 365)
#: Occurrences kept per repeating event, at most.
MAX_OCCURRENCES = 200
#: Occurrences generated per repeating event while looking for the window, at most.
SCAN_LIMIT = 20_000


class _TolerantParser(ComponentIcalParser):
    """``icalendar``'s parser, leaving out what it cannot read instead of refusing the file."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skipped: list[str] = []

    def _where(self) -> str:
        component = self.component
        return f" in {component.name}" if component is not None and getattr(component, "name", "") else ""

    def handle_line_parse_error(self, exception: Exception) -> None:
        component = self.component
        if component is not None and component.ignore_exceptions:
            super().handle_line_parse_error(exception)
            return
        self.skipped.append(f"a line{self._where()} could not be read ({str(exception)[:80]}) and was left out")

    def handle_property(self, name: str, params: Any, vals: str, line: Any) -> None:
        if self.component is None:
            if name != "X-COMMENT":
                self.skipped.append(f"{name} stands outside any component and was left out")
            return
        super().handle_property(name, params, vals, line)

    def handle_property_parse_error(self, exception: Exception, name: str, params: Any, val: str,
                                    line: Any) -> None:
        if self.component.ignore_exceptions or name[:2].upper() == "X-":
            super().handle_property_parse_error(exception, name, params, val, line)
            return
        self.skipped.append(f"{name}{self._where()} could not be read ({str(exception)[:80]}) and was left out")

    def handle_begin_component(self, vals: str) -> None:
        if vals.upper() == "VCALENDAR" and self._stack:
            # a VCALENDAR starting inside another: the first one was not closed
            while self._stack:
                self.handle_end_component(self._stack[-1].name or "")
        super().handle_begin_component(vals)

    def handle_end_component(self, vals: str) -> None:
        if not self._stack:
            self.skipped.append(f"END:{vals} has no BEGIN and was ignored")
            return
        super().handle_end_component(vals)

    def prepare_components(self) -> None:
        if self._stack:
            self.skipped.append("the file ends before its END lines (cut short?)")
            while self._stack:
                self.handle_end_component(self._stack[-1].name or "")
        super().prepare_components()


class _TolerantCalendar(icalendar.Calendar):
    @classmethod
    def _get_ical_parser(cls, st: str | bytes) -> ComponentIcalParser:
        return _TolerantParser(st, cls._get_component_factory(), cls.types_factory)


def read_calendars(body: bytes) -> tuple[list[icalendar.Calendar], list[str]]:
    """The VCALENDARs of a file, and notes on what had to be left out to read them."""
    parser = _TolerantCalendar._get_ical_parser(body)
    with warnings.catch_warnings():
        # "/mozilla.org/…/America/New_York" read as America/New_York: what icaltz.zone_name does too
        warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
        components = parser.parse()
    calendars = [c for c in components if getattr(c, "name", "") == "VCALENDAR"]
    others = len(components) - len(calendars)
    if others:
        parser.skipped.append(f"{others} component(s) stand outside any VCALENDAR and were left out")
    return calendars, parser.skipped


# -- repeating events -------------------------------------------------------------------------


def is_repeating(components: list[Any]) -> bool:
    """Whether the VEVENTs sharing one UID form a series (a rule, dates, or moved occurrences)."""
    return any(c.get(k) is not None for c in components for k in ("RRULE", "RDATE", "RECURRENCE-ID"))


def _as_utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def occurrence_key(component: Any) -> str:
    """What tells one occurrence of a series from the others: its ``RECURRENCE-ID`` (the slot
    it was scheduled in, which stays the same when it is moved), else its start; in UTC
    (``20260305T150000Z``), as a date for all-day events (``20260305``)."""
    for name in ("RECURRENCE-ID", "DTSTART"):
        prop = component.get(name)
        value = getattr(prop, "dt", None)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return value.strftime("%Y%m%dT%H%M%S")
            return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        if isinstance(value, date):
            return value.strftime("%Y%m%d")
    return ""


@dataclass
class Series:
    """The occurrences kept of one repeating event."""

    occurrences: list[Any] = field(default_factory=list)
    #: Occurrences within the window left out by :data:`MAX_OCCURRENCES`.
    capped: int = 0
    error: str | None = None


def _series_calendar(calendar: Any, components: list[Any]) -> icalendar.Calendar:
    """A calendar holding one series with what it needs: the time zones and X-WR-TIMEZONE."""
    sub = icalendar.Calendar()
    for key in ("VERSION", "PRODID", "X-WR-TIMEZONE"):
        if calendar.get(key) is not None:
            sub[key] = calendar[key]
    for tz in calendar.walk("VTIMEZONE"):
        sub.add_component(tz)
    for c in components:
        sub.add_component(c)
    return sub


def _start(occurrence: Any) -> datetime | None:
    return _as_utc(getattr(occurrence.get("DTSTART"), "dt", None))


def _in_window(query: Any, now: datetime, out: Series) -> None:
    """Occurrences from the window's start to its end: the upcoming ones first (up to the
    cap), then the most recent past ones in the room left."""
    start, end = now - WINDOW_BACK, now + WINDOW_AHEAD
    past: deque[Any] = deque(maxlen=MAX_OCCURRENCES)
    upcoming: list[Any] = []
    seen_past = 0
    for occurrence in query.after(start.date()):
        when = _start(occurrence)
        if when is None:
            continue
        if when > end:
            break
        if when < now:
            seen_past += 1
            past.append(occurrence)
        elif len(upcoming) < MAX_OCCURRENCES:
            upcoming.append(occurrence)
        else:
            out.capped += 1
            break  # more upcoming ones than the cap: the count past it is not needed
    room = MAX_OCCURRENCES - len(upcoming)
    kept_past = list(past)[len(past) - room:] if room else []
    out.capped += seen_past - len(kept_past)
    out.occurrences = kept_past + upcoming


def _outside_window(query: Any, now: datetime, out: Series) -> None:
    """A series with nothing in the window: its last occurrences when it is over, its first
    ones when it has not begun."""
    first = list(itertools.islice(query.all(), MAX_OCCURRENCES))
    if first and (_start(first[0]) or now) > now:
        out.occurrences = first
        return
    last: deque[Any] = deque(itertools.islice(query.all(), SCAN_LIMIT), maxlen=MAX_OCCURRENCES)
    out.occurrences = list(last)


def expand_series(calendar: Any, components: list[Any], now: datetime) -> Series:
    """The occurrences of the series ``components`` (one UID) kept for a harvest at ``now``."""
    out = Series()
    try:
        query = recurring_ical_events.of(_series_calendar(calendar, components))
        _in_window(query, now, out)
        if not out.occurrences:
            _outside_window(query, now, out)
    except (ValueError, TypeError, AttributeError) as e:  # recurring_ical_events.InvalidCalendar is a ValueError
        out.error = f"{type(e).__name__}: {str(e)[:120]}"
    return out
