"""The time zone of a calendar's times, named the way the catalog keeps it: an IANA name.

Calendars name their zones in many ways. Outlook and Exchange write Windows names
("Tokyo Standard Time", "W. Europe Standard Time") or display names ("(UTC-03:00) Brasília"),
often with a VTIMEZONE block describing the offsets; other tools embed an IANA name in a
home-made TZID ("custom_America/New_York", "/mozilla.org/20070129_1/America/New_York") or
add ``X-LIC-LOCATION`` to the VTIMEZONE. The instants are right either way (``icalendar``
reads the VTIMEZONE); what this module finds is the name to store beside them:

1. an IANA name as it is (any case);
2. ``X-LIC-LOCATION`` of the VTIMEZONE with that TZID;
3. a Windows zone name, through CLDR's windowsZones table (as ``icalendar`` carries it);
4. an IANA name embedded in the TZID;
5. otherwise, for a time that has an offset (from the VTIMEZONE), a fixed-offset label such as
   ``UTC-03:00``: never ``UTC`` for a time that is not in UTC.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

_AREAS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian",
          "Pacific", "Etc", "US", "Canada", "Brazil", "Mexico", "Chile")
_EMBEDDED = re.compile(r"(?i)(?<![A-Za-z])((?:" + "|".join(_AREAS) + r")(?:/[A-Za-z0-9_+\-]+){1,2})")


@lru_cache(maxsize=1)
def _iana_by_lower_name() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones() if name not in ("localtime", "Factory")}


@lru_cache(maxsize=1)
def _windows_by_lower_name() -> dict[str, str]:
    return {name.lower(): iana for name, iana in WINDOWS_TO_OLSON.items()}


def iana_zone(name: str | None) -> str | None:
    """The IANA name ``name`` spells (any case), or None."""
    if not name:
        return None
    found = _iana_by_lower_name().get(name.strip().lower())
    if found is None:
        return None
    try:
        ZoneInfo(found)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return found


def zone_name(tzid: str | None, locations: dict[str, str] | None = None) -> str | None:
    """The IANA zone a calendar's TZID stands for (rules 1–4 above), or None."""
    if not tzid:
        return None
    tzid = tzid.strip().strip('"').strip()
    found = iana_zone(tzid)
    if found:
        return found
    location = (locations or {}).get(tzid)
    if location:
        return location
    found = _windows_by_lower_name().get(tzid.lower())
    if found:
        return found
    for m in _EMBEDDED.finditer(tzid):
        candidate = m.group(1)
        while "/" in candidate:  # "America/New_York/extra" → "America/New_York"
            found = iana_zone(candidate)
            if found:
                return found
            candidate = candidate.rsplit("/", 1)[0]
    return None


def offset_label(value: Any) -> str | None:
    """``UTC+09:00`` for an aware datetime nine hours ahead of UTC; None for dates and floating times."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        return None
    offset = value.utcoffset()
    if offset is None:
        return None
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def vtimezone_locations(calendar: Any) -> dict[str, str]:
    """TZID → IANA name from the ``X-LIC-LOCATION`` of a calendar's VTIMEZONE blocks."""
    out: dict[str, str] = {}
    for tz in calendar.walk("VTIMEZONE"):
        tzid = str(tz.get("TZID") or "").strip()
        location = iana_zone(str(tz.get("X-LIC-LOCATION") or ""))
        if tzid and location:
            out[tzid] = location
    return out


def time_zone_of(tzid: str | None, value: Any, locations: dict[str, str] | None = None) -> str | None:
    """The zone to store for a time given with ``TZID=tzid``: an IANA name, else the
    fixed-offset label of ``value`` when it has an offset, else None (a floating time in an
    unknown zone: the source's or calendar's zone applies)."""
    if not tzid:
        return None
    return zone_name(tzid, locations) or offset_label(value)
