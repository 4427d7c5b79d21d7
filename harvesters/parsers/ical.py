"""iCalendar feeds (RFC 5545) with the ``icalendar`` library: one event per VEVENT.

Shaped on Sched's ``/all.ics`` (UID, UTC start and end, SUMMARY, LOCATION, DESCRIPTION, URL,
CATEGORIES for tracks) but reads any calendar: TZID times, floating times, all-day dates,
DURATION instead of DTEND. A broken property costs that value and a warning, never the feed.

Link rule: an event's ``URL`` when it has one; otherwise the feed URL with ``?uid=UID``
(a query, not a fragment, because canonical URLs drop fragments), so each event keeps one
stable resource id across harvests.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta
from typing import Any

import icalendar
from w3lib.url import add_or_replace_parameter

from harvesters.parsers.eventtext import ParsedEvents, aware_times, parse_presenters, session_type, zone
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


def _tzid(component: Any, name: str) -> str | None:
    prop = component.get(name)
    params = getattr(prop, "params", None) or {}
    tzid = params.get("TZID")
    return str(tzid) if tzid and zone(str(tzid)) else None


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


def parse_ical(body: bytes, url: str, *, source_id: str = "", organization: str | None = None,
               event_name: str | None = None, timezone: str | None = None, include_breaks: bool = False,
               max_items: int = 1000) -> ParsedEvents:
    """Events from an iCalendar feed. Raises :class:`NotACalendar` when the bytes are not one.

    Time zone of each event (kept as ``timezone``): the TZID of its DTSTART, else the source's
    ``timezone``, else the calendar's ``X-WR-TIMEZONE``, else UTC. Floating times are read in
    that zone. ``event_name`` is the source's, else the calendar's ``X-WR-CALNAME``.
    """
    check_is_calendar(body)
    try:
        cal = icalendar.Calendar.from_ical(body)
    except ValueError as e:
        raise NotACalendar(f"the iCalendar feed could not be read: {str(e)[:200]}") from None
    cal_name = clean_text(_prop_text(cal.get("X-WR-CALNAME")), 200)
    cal_tz = _prop_text(cal.get("X-WR-TIMEZONE")).strip() or None
    if cal_tz and zone(cal_tz) is None:
        cal_tz = None
    out = ParsedEvents(title=cal_name, resources=[])
    event_name = event_name or cal_name or None
    skipped_breaks = cancelled = 0
    seen_links: set[str] = set()
    for index, ev in enumerate(cal.walk("VEVENT")):
        if len(out.resources) >= max_items:
            out.warn(f"calendar has more events; kept the first {max_items} (max_items)")
            break
        title = clean_text(_prop_text(ev.get("SUMMARY")), 300)
        uid = _prop_text(ev.get("UID")).strip()
        label = f"event {title or uid or f'#{index + 1}'!r}"
        if _prop_text(ev.get("STATUS")).upper() == "CANCELLED":
            cancelled += 1
            continue
        categories = _categories(ev)
        kind = session_type(title, " ".join(categories) or None)
        if kind == "break" and not include_breaks:
            skipped_breaks += 1
            continue
        start = _value(ev, "DTSTART", label, out)
        end = _value(ev, "DTEND", label, out)
        duration = _value(ev, "DURATION", label, out)
        if end is None and isinstance(duration, timedelta) and isinstance(start, (date, datetime)):
            end = start + duration
        tz_name = _tzid(ev, "DTSTART") or timezone or cal_tz
        if not tz_name and isinstance(start, datetime) and start.tzinfo is not None:
            tz_name = getattr(start.tzinfo, "key", None) or "UTC"
        times = aware_times(start, end, tz_name, label=f"{label}: ")
        for w in times.warnings:
            out.warn(w)
        if start is None:
            out.warn(f"{label}: no readable start time; kept without one")
        if ev.get("RRULE") is not None or ev.get("RDATE") is not None:
            out.warn(f"{label}: repeats (RRULE); stored once, at its first occurrence")
        if not uid:
            uid = hashlib.sha1(f"{title}|{times.starts_at}".encode()).hexdigest()[:16]
            out.warn(f"{label}: no UID; derived one from its title and start")
        description = _prop_text(ev.get("DESCRIPTION"))
        speakers = _SPEAKERS_LINE.search(description)
        link = absolute_url(_prop_text(ev.get("URL")).strip() or None, url) or event_link(url, uid)
        if link in seen_links:
            link = event_link(url, uid)
        seen_links.add(link)
        out.resources.append(Resource(
            url=link,
            title=title or "(untitled event)",
            description=description,
            content_type="event",
            source_id=source_id,
            organization=organization,
            published=parse_date(_value(ev, "CREATED", label, out)),
            updated=parse_date(_value(ev, "LAST-MODIFIED", label, out)),
            extra=event_fields(
                starts_at=times.starts_at, ends_at=times.ends_at, timezone=times.timezone or tz_name,
                location=_prop_text(ev.get("LOCATION")), presenters=parse_presenters(speakers.group(1)) if speakers else [],
                event_name=event_name, event_year=times.year, session_type=kind, uid=uid, categories=categories,
            ),
            raw={"ical": ev.to_ical().decode("utf-8", "replace")[:20000]},
        ))
    out.skipped = {"breaks": skipped_breaks, "cancelled": cancelled}
    return out
