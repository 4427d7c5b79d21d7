"""iCalendar feeds (RFC 5545) with the ``icalendar`` library: one event per VEVENT.

Shaped on Sched's ``/all.ics`` (UID, UTC start and end, SUMMARY, LOCATION, DESCRIPTION, URL,
CATEGORIES for tracks) but reads any calendar: TZID times, floating times, all-day dates,
DURATION instead of DTEND. A broken property costs that value and a warning, never the feed.

Link rule: an event's ``URL`` when it has one; otherwise the feed URL with ``?uid=UID``
(a query, not a fragment, because canonical URLs drop fragments), so each event keeps one
stable resource id across harvests. Each occurrence of a repeating event, and each of several
events sharing one UID, adds ``occurrence=KEY`` to that link (see
:func:`harvesters.parsers.icalread.occurrence_key`: the occurrence's ``RECURRENCE-ID``, else
its start), so a moved occurrence keeps its identity.

Files that are not quite right still give every event that reads: several VCALENDARs, an
unreadable property outside the events (named in a warning), a file cut short
(:func:`harvesters.parsers.icalread.read_calendars`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from w3lib.url import add_or_replace_parameter

from harvesters.parsers.eventtext import ParsedEvents, aware_times, parse_presenters, session_type
from harvesters.parsers.icalread import (
    MAX_OCCURRENCES,
    WINDOW_AHEAD,
    WINDOW_BACK,
    expand_series,
    is_repeating,
    occurrence_key,
    read_calendars,
)
from harvesters.parsers.icaltz import offset_label, time_zone_of, vtimezone_locations, zone_name
from pipeline.events import event_fields
from pipeline.normalize import clean_text, parse_date
from pipeline.resource import Resource
from pipeline.urls import absolute_url

_SPEAKERS_LINE = re.compile(r"^\s*(?:speakers?|presenters?|panelists?)\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)


class NotACalendar(ValueError):
    """The bytes are not an iCalendar feed."""


def _prop_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_prop_text(v) for v in value)
    return str(value)


def _value(component: Any, name: str, label: str, out: ParsedEvents) -> Any:
    """A property's Python value (datetime, date, timedelta); None with a warning if broken."""
    prop = component.get(name)
    if prop is None:
        return None
    try:
        return prop.dt
    except (ValueError, AttributeError) as e:
        out.warn(f"{label}: {name} could not be read ({str(e)[:120]}); left out")
        return None


def _categories(component: Any) -> list[str]:
    found = component.get("CATEGORIES")
    if found is None:
        return []
    items = found if isinstance(found, list) else [found]
    names: list[str] = []
    for item in items:
        for cat in getattr(item, "cats", None) or [item]:
            text = clean_text(str(cat), 100)
            if text and text not in names:
                names.append(text)
    return names


def check_is_calendar(body: bytes) -> None:
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").upper()
    if head.startswith(b"BEGIN:VCALENDAR"):
        return
    if not head:
        raise NotACalendar("got an empty response, not an iCalendar feed")
    if head.startswith(b"<!DOCTYPE HTML") or b"<HTML" in head:
        raise NotACalendar("got an HTML page, not an iCalendar feed (for Sched use https://EVENT.sched.com/all.ics)")
    raise NotACalendar("not an iCalendar feed (it does not start with BEGIN:VCALENDAR)")


def event_link(feed_url: str, uid: str) -> str:
    """The stable link of an event without a URL of its own: the feed URL with ``?uid=UID``."""
    return add_or_replace_parameter(feed_url, "uid", uid)


@dataclass
class _Calendar:
    """What the events of one VCALENDAR share."""

    component: Any
    tz: str | None
    locations: dict[str, str]


@dataclass
class _Reader:
    """Turns VEVENTs (or occurrences of repeating ones) into event resources."""

    url: str
    source_id: str
    organization: str | None
    event_name: str | None
    timezone: str | None
    include_breaks: bool
    max_items: int
    out: ParsedEvents
    seen_links: set[str] = field(default_factory=set)
    count: int = 0
    full: bool = False

    def zone(self, ev: Any, start: Any, cal: _Calendar) -> str | None:
        """The event's zone: its DTSTART's TZID (as an IANA name, else a fixed offset), else the
        source's ``timezone``, else the calendar's X-WR-TIMEZONE; UTC for UTC times."""
        prop = ev.get("DTSTART")
        tzid = (getattr(prop, "params", None) or {}).get("TZID")
        name = time_zone_of(str(tzid), start, cal.locations) if tzid else None
        name = name or self.timezone or cal.tz
        if not name and isinstance(start, datetime) and start.tzinfo is not None:
            name = getattr(start.tzinfo, "key", None) or offset_label(start)
            name = "UTC" if name == "UTC+00:00" else name
        return name

    def link(self, ev: Any, uid: str, occurrence: str | None) -> str:
        own = absolute_url(_prop_text(ev.get("URL")).strip() or None, self.url)
        link = own or event_link(self.url, uid)
        if occurrence:
            return add_or_replace_parameter(link, "occurrence", occurrence)
        if link in self.seen_links:
            link = event_link(self.url, uid)
        return link

    def add(self, ev: Any, cal: _Calendar, occurrence: str | None = None) -> None:
        """One event resource for ``ev`` (an occurrence of a repeating event when ``occurrence``
        names which one)."""
        out = self.out
        if len(out.resources) >= self.max_items:
            if not self.full:
                out.warn(f"calendar has more events; kept the first {self.max_items} (max_items)")
            self.full = True
            return
        self.count += 1
        title = clean_text(_prop_text(ev.get("SUMMARY")), 300)
        uid = _prop_text(ev.get("UID")).strip()
        label = f"event {title or uid or f'#{self.count}'!r}"
        if _prop_text(ev.get("STATUS")).upper() == "CANCELLED":
            out.skipped["cancelled"] = out.skipped.get("cancelled", 0) + 1
            return
        categories = _categories(ev)
        kind = session_type(title, " ".join(categories) or None)
        if kind == "break" and not self.include_breaks:
            out.skipped["breaks"] = out.skipped.get("breaks", 0) + 1
            return
        start = _value(ev, "DTSTART", label, out)
        end = _value(ev, "DTEND", label, out)
        duration = _value(ev, "DURATION", label, out)
        if end is None and isinstance(duration, timedelta) and isinstance(start, (date, datetime)):
            end = start + duration
        tz_name = self.zone(ev, start, cal)
        times = aware_times(start, end, tz_name, label=f"{label}: ")
        for w in times.warnings:
            out.warn(w)
        if start is None:
            out.warn(f"{label}: no readable start time; kept without one")
        if not uid:
            uid = hashlib.sha1(f"{title}|{times.starts_at}".encode()).hexdigest()[:16]
            out.warn(f"{label}: no UID; derived one from its title and start")
        description = _prop_text(ev.get("DESCRIPTION"))
        speakers = _SPEAKERS_LINE.search(description)
        link = self.link(ev, uid, occurrence)
        self.seen_links.add(link)
        out.resources.append(Resource(
            url=link,
            title=title or "(untitled event)",
            description=description,
            content_type="event",
            source_id=self.source_id,
            organization=self.organization,
            published=parse_date(_value(ev, "CREATED", label, out)),
            updated=parse_date(_value(ev, "LAST-MODIFIED", label, out)),
            extra=event_fields(
                starts_at=times.starts_at, ends_at=times.ends_at, timezone=times.timezone or tz_name,
                location=_prop_text(ev.get("LOCATION")), presenters=parse_presenters(speakers.group(1)) if speakers else [],
                event_name=self.event_name, event_year=times.year, session_type=kind, uid=uid, categories=categories,
                occurrence=occurrence,
            ),
            raw={"ical": ev.to_ical().decode("utf-8", "replace")[:20000]},
        ))


def _groups(calendar: Any) -> list[list[Any]]:
    """The calendar's VEVENTs, those sharing a UID together, in the order they first appear."""
    groups: dict[Any, list[Any]] = {}
    for index, ev in enumerate(calendar.walk("VEVENT")):
        uid = _prop_text(ev.get("UID")).strip() or ("no-uid", index)
        groups.setdefault(uid, []).append(ev)
    return list(groups.values())


def _read_group(reader: _Reader, cal: _Calendar, components: list[Any], now: datetime) -> None:
    """One UID's VEVENTs: a repeating event's occurrences, several events sharing a UID each
    with its own start, or one event."""
    if is_repeating(components):
        series = expand_series(cal.component, components, now)
        title = clean_text(_prop_text(components[0].get("SUMMARY")), 80)
        label = f"event {title or _prop_text(components[0].get('UID'))!r}"
        if series.error:
            reader.out.warn(f"{label}: its repetition could not be read ({series.error}); kept as written")
            for ev in components:
                reader.add(ev, cal, occurrence_key(ev) if len(components) > 1 else None)
            return
        if series.capped:
            reader.out.warn(f"{label}: repeats more than {MAX_OCCURRENCES} times between {WINDOW_BACK.days} days ago "
                            f"and {WINDOW_AHEAD.days} days ahead; kept {MAX_OCCURRENCES} (the upcoming ones first, "
                            "then the most recent)")
        for occurrence in series.occurrences:
            reader.add(occurrence, cal, occurrence_key(occurrence))
    elif len(components) > 1:
        for ev in components:
            reader.add(ev, cal, occurrence_key(ev))
    else:
        reader.add(components[0], cal)


def parse_ical(body: bytes, url: str, *, source_id: str = "", organization: str | None = None,
               event_name: str | None = None, timezone: str | None = None, include_breaks: bool = False,
               max_items: int = 1000, now: datetime | None = None) -> ParsedEvents:
    """Events from an iCalendar feed. Raises :class:`NotACalendar` when the bytes are not one.

    Time zone of each event (kept as ``timezone``): the TZID of its DTSTART (as an IANA name,
    see :mod:`harvesters.parsers.icaltz`), else the source's ``timezone``, else the calendar's
    ``X-WR-TIMEZONE``, else UTC. Floating times are read in that zone. ``event_name`` is the
    source's, else the calendar's ``X-WR-CALNAME``. Repeating events become one event per
    occurrence (see :mod:`harvesters.parsers.icalread`); ``now`` is the harvest's time.
    """
    check_is_calendar(body)
    calendars, skipped = read_calendars(body)
    if not calendars:
        raise NotACalendar("the iCalendar feed could not be read: it holds no VCALENDAR")
    cal_name = next(filter(None, (clean_text(_prop_text(c.get("X-WR-CALNAME")), 200) for c in calendars)), "")
    out = ParsedEvents(title=cal_name, resources=[])
    for note in skipped:
        out.warn(f"calendar: {note}; every event that could be read was kept")
    reader = _Reader(url, source_id, organization, event_name or cal_name or None, timezone, include_breaks,
                     max_items, out)
    out.skipped = {"breaks": 0, "cancelled": 0}
    now = now or datetime.now(UTC)
    for calendar in calendars:
        # the calendar's own zone is read as a TZID is: Windows names and embedded IANA names too
        locations = vtimezone_locations(calendar)
        cal_tz = zone_name(_prop_text(calendar.get("X-WR-TIMEZONE")).strip() or None, locations)
        cal = _Calendar(calendar, cal_tz, locations)
        for components in _groups(calendar):
            _read_group(reader, cal, components, now)
            if reader.full:
                break
    return out
