"""The ical kind: its parser on a saved calendar (tests/fixtures/ical/), options and errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from harvesters.parsers.eventtext import (
    zone,
)
from harvesters.parsers.ical import NotACalendar, parse_ical
from tests.conftest import run_cli

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
    # a repeating event is no longer stored once at its first occurrence (with a warning): each
    # occurrence is an event of its own (tests/test_ical.py::test_recurring_* has the details)
    weekly = [r for r in parse_ical(repeating, "https://x.example/all.ics", now=datetime(2026, 12, 7, tzinfo=UTC))
              .resources if r.extra["uid"] == "7f3c1a9e2b1d4c5e8a9b0c1d2e3f4a5b"]
    # weekly at 9:00 in the calendar's X-WR-TIMEZONE (Los Angeles), across the change to standard time
    assert [r.extra["starts_at"] for r in weekly] == ["2026-10-31T16:00:00Z", "2026-11-07T17:00:00Z",
                                                      "2026-11-14T17:00:00Z"]
    assert len({r.url for r in weekly}) == 3
    with pytest.raises(NotACalendar, match="HTML page"):
        parse_ical(b"<!DOCTYPE html><html><body>Sched</body></html>", "https://x.example/all.ics")
    with pytest.raises(NotACalendar, match="empty"):
        parse_ical(b"  ", "https://x.example/all.ics")
    # a truncated calendar (no END lines) is read as far as it goes or refused, never a crash
    try:
        parse_ical(body[: len(body) // 2], "https://x.example/all.ics")
    except NotACalendar:
        pass


# -- real-world calendars: repeating events, time-zone names, files that are not quite right ----

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TRAINING = "https://calendar.prairie-demo.example.org/training.ics"


def parse_fixture(name: str, url: str = TRAINING, **kw):
    return parse_ical((FIXTURES / name).read_bytes(), url, now=NOW, **kw)


def test_recurring_series_with_moved_cancelled_skipped_and_added_occurrences():
    """A Google Calendar export: a weekly series (RRULE … UNTIL), an EXDATE, an RDATE, an
    override moving one occurrence to another hour and one cancelling another, all sharing
    the master's UID. Each occurrence is an event of its own, the moved one at its new hour."""
    parsed = parse_fixture("recurring-google.ics")
    hours = [r for r in parsed.resources if r.extra["uid"] == "3k9q2v7prairieofficehours@google.com"]
    starts = [r.extra["starts_at"] for r in hours]
    assert starts == [
        "2026-11-05T20:00:00Z", "2026-11-12T20:00:00Z", "2026-11-19T20:00:00Z",  # Nov 26: EXDATE (Thanksgiving)
        "2026-12-03T20:00:00Z",
        "2026-12-10T16:00:00Z",  # moved to 10:00 CST by its RECURRENCE-ID override
        "2026-12-17T20:00:00Z",  # Dec 24: cancelled by an override
        "2026-12-30T20:00:00Z",  # the RDATE: an extra Wednesday session
        "2026-12-31T20:00:00Z", "2027-01-07T20:00:00Z", "2027-01-14T20:00:00Z", "2027-01-21T20:00:00Z",
        "2027-01-28T20:00:00Z",  # the UNTIL
    ]
    moved = hours[4]
    assert moved.title == "ILL Office Hours (morning this week)" and moved.extra["ends_at"] == "2026-12-10T17:00:00Z"
    assert "board meeting" in moved.description
    # identity: the slot each occurrence was scheduled in (RECURRENCE-ID), so a moved one keeps its id
    assert moved.extra["occurrence"] == "20261210T200000Z"
    assert moved.url == TRAINING + "?uid=3k9q2v7prairieofficehours%40google.com&occurrence=20261210T200000Z"
    assert len({r.url for r in hours}) == len(hours) == 12
    assert all(r.extra["timezone"] == "America/Chicago" for r in hours)
    assert hours[0].extra["presenters"] == [{"name": "Dana Whitfield", "affiliation": "Prairie Library Network"}]
    assert parsed.skipped["cancelled"] == 1
    # the one-off event is read as before: one event, the ?uid= link, no occurrence key
    webinar = [r for r in parsed.resources if r.title == "Reciprocal Borrowing Agreements Webinar"]
    assert [(r.url, r.extra["starts_at"], r.extra.get("occurrence")) for r in webinar] == [
        (TRAINING + "?uid=6e1r3onceonlywebinar%40google.com", "2027-02-04T19:00:00Z", None)]


def test_events_sharing_a_uid_without_a_rule_are_kept_apart():
    """A three-day workshop exported as three VEVENTs with one UID and one URL: three events,
    each identified by its start (they used to collapse into one)."""
    parsed = parse_fixture("recurring-google.ics")
    days = [r for r in parsed.resources if r.title == "Tipasa Lending Workshop"]
    assert [(r.extra["starts_at"], r.description) for r in days] == [
        ("2027-01-13T15:00:00Z", "Day 1 of 3: setting up lending."),
        ("2027-01-14T15:00:00Z", "Day 2 of 3: the lending queue."),
        ("2027-01-15T15:00:00Z", "Day 3 of 3: statistics and troubleshooting.")]
    base = "https://training.prairie-demo.example.org/workshops/tipasa-lending"
    assert [r.url for r in days] == [base + "?occurrence=20270113T150000Z", base + "?occurrence=20270114T150000Z",
                                     base + "?occurrence=20270115T150000Z"]


def test_recurring_window_and_cap():
    """Open-ended series are read from a year back to two years ahead, at most 200 occurrences
    each (the upcoming first); a series that ended before the window keeps its occurrences."""
    parsed = parse_fixture("recurring-google.ics")
    monthly = [r.extra["starts_at"] for r in parsed.resources if r.title == "Monthly Resource Sharing Call"]
    assert monthly[0] == "2026-01-07T17:00:00Z" and monthly[-1] == "2028-11-01T16:00:00Z" and len(monthly) == 35
    daily = [r.extra["starts_at"] for r in parsed.resources if r.title == "ILL Desk Huddle"]
    assert len(daily) == 200 and daily[0] == "2026-12-07T14:30:00Z"  # today's, then the next 199
    assert any("ILL Desk Huddle" in w and "more than 200 times" in w for w in parsed.warnings)
    spring = [r.extra["starts_at"] for r in parsed.resources if r.title == "Spring 2024 Copyright Clinic"]
    assert spring == ["2024-04-15T15:00:00Z", "2024-04-22T15:00:00Z", "2024-04-29T15:00:00Z", "2024-05-06T15:00:00Z"]
    assert len(parsed.warnings) == 1, parsed.warnings  # nothing else to say about this calendar


def test_a_repetition_that_cannot_be_read_keeps_the_event_as_written():
    body = (FIXTURES / "recurring-google.ics").read_bytes().replace(b"RRULE:FREQ=MONTHLY;BYDAY=1WE",
                                                                    b"RRULE:FREQ=FORTNIGHTLY;BYDAY=1WE")
    parsed = parse_ical(body, TRAINING, now=NOW)
    monthly = [r for r in parsed.resources if r.title == "Monthly Resource Sharing Call"]
    assert [r.extra["starts_at"] for r in monthly] == ["2019-03-06T17:00:00Z"]
    assert any("Monthly Resource Sharing Call" in w and "repetition could not be read" in w for w in parsed.warnings)


def test_windows_and_custom_time_zone_names_become_iana_or_a_fixed_offset():
    """Outlook/Exchange names zones the Windows way, with VTIMEZONE blocks; other tools embed
    an IANA name in a TZID or give X-LIC-LOCATION. The stored zone is never "UTC" for a time
    that is not in UTC."""
    parsed = parse_fixture("outlook-zones.ics", "https://outlook.demo.example.org/owa/calendar/reach.ics")
    got = {r.title: (r.extra["starts_at"], r.extra["timezone"]) for r in parsed.resources}
    assert got == {
        "Committee meeting: ILL code revision": ("2027-01-20T18:00:00Z", "America/New_York"),  # Eastern Standard Time
        "Partner call with the Tokyo consortium": ("2027-01-22T00:00:00Z", "Asia/Tokyo"),  # Tokyo Standard Time
        # a display name with no IANA equivalent: the VTIMEZONE's offset on that day
        "Empréstimo entre bibliotecas: encontro regional": ("2027-05-11T13:00:00Z", "UTC-03:00"),
        "Mountain region lending clinic": ("2027-01-26T22:00:00Z", "America/Denver"),  # X-LIC-LOCATION
        "Document delivery round table (India)": ("2027-01-27T12:30:00Z", "UTC+05:30"),  # home-made TZID, +0530
        # no VTIMEZONE at all, an IANA name inside the TZID: the local time is read in that zone
        "West coast borrowing workshop": ("2027-01-28T18:00:00Z", "America/Los_Angeles"),
        "European partners: ISO ILL messages": ("2027-01-29T15:00:00Z", "Europe/Berlin"),
    }
    assert parsed.warnings == []
    assert next(r for r in parsed.resources if r.title.startswith("Partner call")).extra["event_year"] == 2027


def test_the_calendars_own_zone_is_read_like_a_tzid():
    """X-WR-TIMEZONE written the Windows way (as Outlook publishes it): floating times are read
    in the zone it names, as a TZID of that name would be, not stored as UTC."""
    body = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Exchange//EN\r\n"
            b"X-WR-TIMEZONE:Tokyo Standard Time\r\n"
            b"BEGIN:VEVENT\r\nUID:floating-1@outlook.demo.example.org\r\n"
            b"DTSTART:20270122T090000\r\nDTEND:20270122T100000\r\n"
            b"SUMMARY:Partner call with the Tokyo consortium\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    [r] = parse_ical(body, "https://outlook.demo.example.org/owa/calendar/floating.ics", source_id="t",
                     now=datetime(2027, 1, 1, tzinfo=UTC)).resources
    assert (r.extra["starts_at"], r.extra["timezone"]) == ("2027-01-22T00:00:00Z", "Asia/Tokyo")


@pytest.mark.parametrize(("tzid", "expected"), [
    ("America/Chicago", "America/Chicago"), ("america/chicago", "America/Chicago"),
    ("Central Standard Time", "America/Chicago"), ("W. Europe Standard Time", "Europe/Berlin"),
    ('"Tokyo Standard Time"', "Asia/Tokyo"), ("custom_America/New_York", "America/New_York"),
    ("/freeassociation.sourceforge.net/Tzfile/America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
    ("(UTC-03:00) Brasília", None), ("Custom Time Zone 1", None), ("", None),
])
def test_zone_name(tzid, expected):
    from harvesters.parsers.icaltz import zone_name

    assert zone_name(tzid) == expected


def test_two_calendars_and_an_unreadable_property_keep_every_event():
    """One file holding two VCALENDARs, the first with a VTIMEZONE whose RDATE cannot be read:
    icalendar refuses such a file whole; every event is kept and the warning names what was left out."""
    parsed = parse_fixture("two-calendars-bad-rdate.ics", "https://events.lakeshore-demo.example.org/ill.ics")
    assert [(r.title, r.extra["starts_at"], r.extra["timezone"]) for r in parsed.resources] == [
        ("Interlibrary Loan Basics for New Staff", "2027-02-09T19:00:00Z", "America/New_York"),
        ("Scanning and Document Delivery", "2027-02-16T19:00:00Z", "America/New_York"),
        ("Courier Changes for Spring", "2027-03-02T19:00:00Z", "UTC"),
    ]
    assert parsed.title == "Lakeshore ILL events (DEMO)"
    assert len(parsed.warnings) == 1 and parsed.warnings[0].startswith("calendar: RDATE in STANDARD could not be read")
    assert "every event that could be read was kept" in parsed.warnings[0]


def test_a_calendar_cut_short_keeps_the_events_it_had():
    body = (FIXTURES / "two-calendars-bad-rdate.ics").read_bytes()
    cut = body[: body.index(b"BEGIN:VEVENT\r\nUID:event-1188")]
    parsed = parse_ical(cut, "https://events.lakeshore-demo.example.org/ill.ics", now=NOW)
    assert [r.title for r in parsed.resources] == ["Interlibrary Loan Basics for New Staff"]
    assert any("ends before its END lines" in w for w in parsed.warnings)


def weekly_calendar(first: date) -> str:
    """A small Outlook-style calendar: a weekly series from ``first`` (4 times, the third moved
    to the afternoon), in a Windows-named zone with its VTIMEZONE."""
    moved = first + timedelta(days=14)
    return "\r\n".join([
        "BEGIN:VCALENDAR", "PRODID:Microsoft Exchange Server 2010", "VERSION:2.0",
        "BEGIN:VTIMEZONE", "TZID:Eastern Standard Time",
        "BEGIN:STANDARD", "DTSTART:16010101T020000", "TZOFFSETFROM:-0400", "TZOFFSETTO:-0500",
        "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=1SU;BYMONTH=11", "END:STANDARD",
        "BEGIN:DAYLIGHT", "DTSTART:16010101T020000", "TZOFFSETFROM:-0500", "TZOFFSETTO:-0400",
        "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=2SU;BYMONTH=3", "END:DAYLIGHT", "END:VTIMEZONE",
        "BEGIN:VEVENT", "UID:weekly-lending-lab", "SUMMARY:Lending Lab",
        f"DTSTART;TZID=Eastern Standard Time:{first:%Y%m%d}T100000",
        f"DTEND;TZID=Eastern Standard Time:{first:%Y%m%d}T110000",
        "RRULE:FREQ=WEEKLY;COUNT=4", "END:VEVENT",
        "BEGIN:VEVENT", "UID:weekly-lending-lab", "SUMMARY:Lending Lab (afternoon)",
        f"RECURRENCE-ID;TZID=Eastern Standard Time:{moved:%Y%m%d}T100000",
        f"DTSTART;TZID=Eastern Standard Time:{moved:%Y%m%d}T150000",
        f"DTEND;TZID=Eastern Standard Time:{moved:%Y%m%d}T160000", "END:VEVENT",
        "END:VCALENDAR", ""])


def test_harvest_stores_each_occurrence_once_with_its_zone(tmp_path):
    from tests.harvesting import harvest_sites, rows
    from tests.server import StubServer

    first = date.today() + timedelta(days=10)
    with StubServer() as srv:
        srv.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
        srv.add("/lab.ics", weekly_calendar(first), "text/calendar; charset=utf-8")
        registry = f"sources:\n  - {{id: lab, name: Lending Lab, kind: ical, url: '{srv.base}/lab.ics'}}\n"
        web = harvest_sites(tmp_path, {"srv": srv}, registry)
        assert web["result"].returncode == 0, web["result"].stdout + web["result"].stderr
        got = rows(web["db"], "select title, timezone, url from resources order by starts_at")
        assert [(t, z) for t, z, _ in got] == [("Lending Lab", "America/New_York"), ("Lending Lab", "America/New_York"),
                                               ("Lending Lab (afternoon)", "America/New_York"),
                                               ("Lending Lab", "America/New_York")]
        assert len({u for _, _, u in got}) == 4
        assert rows(web["db"], "select status, items_new from harvest_runs") == [("ok", 4)]
        srv.clear()
        result = run_cli("harvest", "--registry", str(web["registry"]), "--db", str(web["db"]), "--refetch",
                         "--quiet", "--delay", "0.005")
        assert result.returncode == 0, result.stdout + result.stderr
        assert rows(web["db"], "select count(*) from resources") == [(4,)]  # the same four: stable identities
