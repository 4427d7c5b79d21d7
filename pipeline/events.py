"""What an event resource carries: the event columns of the ``resources`` table, filled from
``Resource.extra`` (the contract between the event parsers and the store).

Every time stored is UTC ISO-8601; the original IANA time zone is kept beside it.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.normalize import clean_text
from pipeline.urls import canonical_url

#: The session types a program can hold. ``break`` is skipped unless a source asks for it.
SESSION_TYPES = ("keynote", "preconference", "session", "social", "break")

#: Columns of the ``resources`` table that hold event fields (filled from ``Resource.extra``).
EVENT_COLUMNS = (
    "starts_at", "ends_at", "timezone", "location", "presenters", "event_name", "event_year",
    "session_type", "slides_url", "recording_url",
)


def event_fields(
    *, starts_at: str | None = None, ends_at: str | None = None, timezone: str | None = None,
    location: str | None = None, presenters: list[dict[str, Any]] | None = None, event_name: str | None = None,
    event_year: int | None = None, session_type: str = "session", slides_url: str | None = None,
    recording_url: str | None = None, **more: Any,
) -> dict[str, Any]:
    """The ``Resource.extra`` of an event: the event columns, plus kind-specific keys."""
    fields = {
        "starts_at": starts_at, "ends_at": ends_at, "timezone": timezone,
        "location": clean_text(location, 300) or None, "presenters": presenters or [],
        "event_name": clean_text(event_name, 200) or None, "event_year": event_year,
        "session_type": session_type, "slides_url": slides_url, "recording_url": recording_url,
    }
    fields.update({k: v for k, v in more.items() if v not in (None, [], "")})
    return fields


def event_columns(extra: dict[str, Any]) -> dict[str, Any] | None:
    """Values for the :data:`EVENT_COLUMNS` of a resource from its ``extra``; None when it is
    not an event. ``presenters`` is JSON; slides and recording links are canonical."""
    if not isinstance(extra, dict) or "session_type" not in extra:
        return None
    row = {c: extra.get(c) for c in EVENT_COLUMNS}
    row["presenters"] = json.dumps(row["presenters"] or [], ensure_ascii=False)
    for key in ("slides_url", "recording_url"):
        row[key] = canonical_url(row[key]) if row[key] else None
    year = row["event_year"]
    row["event_year"] = int(year) if isinstance(year, int) or (isinstance(year, str) and year.isdigit()) else None
    return row
