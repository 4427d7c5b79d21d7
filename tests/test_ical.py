"""The ical kind: its parser on a saved calendar (tests/fixtures/ical/), options and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvesters.parsers.eventtext import (
    zone,
)
from harvesters.parsers.ical import NotACalendar, parse_ical

FIXTURES = Path(__file__).parent / "fixtures" / "ical"


LA = zone("America/Los_Angeles")


def by_title(resources):
    return {r.title: r for r in resources}


def test_ical_sched_style_feed():
    feed = "https://cascadia2026.sched.example/all.ics"
    parsed = parse_ical((FIXTURES / "sched-style.ics").read_bytes(), feed, source_id="s")
    events = by_title(parsed.resources)
    keynote = events["Keynote: Resource Sharing After the Pandemic"]
    assert keynote.content_type == "event"
    assert keynote.url == "https://cascadia2026.sched.example/event/AbC1/keynote-resource-sharing-after-the-pandemic"
    assert keynote.extra["starts_at"] == "2026-10-31T16:00:00Z" and keynote.extra["ends_at"] == "2026-10-31T17:00:00Z"
    assert keynote.extra["timezone"] == "America/Los_Angeles"  # X-WR-TIMEZONE
    assert keynote.extra["event_name"] == "Cascadia ILL 2026" and keynote.extra["event_year"] == 2026
    assert keynote.extra["session_type"] == "keynote" and keynote.extra["location"] == "Cedar Room"
    assert keynote.extra["presenters"] == [{"name": "Priya Natarajan", "affiliation": "Cascade Public Library"}]
    assert keynote.extra["uid"] == "7f3c1a9e2b1d4c5e8a9b0c1d2e3f4a5b"
    lending = events["Lending Workflows in Tipasa"]
    assert lending.extra["categories"] == ["Lending", "Systems track"]
    assert [p["name"] for p in lending.extra["presenters"]] == ["Sam Ortiz", "Lee Park"]
    assert "Olympic University" in lending.extra["presenters"][1]["affiliation"]
    # no URL: the feed URL with ?uid= (stable and fragment-free)
    social = events["Social Media for ILL Outreach"]
    assert social.url == feed + "?uid=ac3d4e5f60718293a4b5c6d7e8f90a1b"
    assert social.extra["starts_at"] == "2026-11-01T17:00:00Z"  # TZID, standard time after the change
    # floating local time with a DURATION, past midnight into the repeated hour
    trivia = events["Night Owl Trivia"]
    assert (trivia.extra["starts_at"], trivia.extra["ends_at"]) == ("2026-11-01T06:30:00Z", "2026-11-01T08:30:00Z")
    assert trivia.extra["session_type"] == "social"
    # all-day date: local midnight
    assert events["Vendor Day (all day)"].extra["starts_at"] == "2026-11-02T08:00:00Z"
    # broken DTEND / DTSTART: kept, with warnings, never a crash
    pre = events["Pre-conference: ILLiad Addons Hands-On"]
    assert pre.extra["session_type"] == "preconference" and pre.extra["ends_at"] is None
    assert events["Mystery Session"].extra["starts_at"] is None
    assert any("DTEND could not be read" in w for w in parsed.warnings)
    assert any("Mystery Session" in w and "no readable start" in w for w in parsed.warnings)
    # breaks and cancelled events left out
    assert "Coffee Break" not in events and "Cancelled: Vendor Panel" not in events
    assert parsed.skipped == {"breaks": 1, "cancelled": 1}
    assert len(parsed.resources) == 7


def test_ical_options_and_errors():
    body = (FIXTURES / "sched-style.ics").read_bytes()
    parsed = parse_ical(body, "https://x.example/all.ics", event_name="NWILL 2026", timezone="America/Denver",
                        include_breaks=True, max_items=3)
    assert len(parsed.resources) == 3 and parsed.resources[0].extra["event_name"] == "NWILL 2026"
    assert parsed.resources[0].extra["timezone"] == "America/Denver"
    assert any(r.extra["session_type"] == "break" for r in parsed.resources)
    repeating = body.replace(b"UID:7f3c1a9e2b1d4c5e8a9b0c1d2e3f4a5b", b"UID:7f3c1a9e2b1d4c5e8a9b0c1d2e3f4a5b\r\nRRULE:FREQ=WEEKLY;COUNT=3")
    assert any("repeats (RRULE)" in w for w in parse_ical(repeating, "https://x.example/all.ics").warnings)
    with pytest.raises(NotACalendar, match="HTML page"):
        parse_ical(b"<!DOCTYPE html><html><body>Sched</body></html>", "https://x.example/all.ics")
    with pytest.raises(NotACalendar, match="empty"):
        parse_ical(b"  ", "https://x.example/all.ics")
    # a truncated calendar (no END lines) is read as far as it goes or refused, never a crash
    try:
        parse_ical(body[: len(body) // 2], "https://x.example/all.ics")
    except NotACalendar:
        pass
