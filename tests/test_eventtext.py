"""Reading events from text (harvesters/parsers/eventtext.py): times, time zones, daylight-saving
changes, sessions past midnight, session types and presenters."""

from __future__ import annotations

from datetime import date, time

import pytest

from harvesters.parsers.eventtext import (
    BadTime,
    localize,
    page_timezone,
    parse_clock,
    parse_presenters,
    session_times,
    session_type,
    zone,
)

LA = zone("America/Los_Angeles")


@pytest.mark.parametrize("text, start, end", [
    ("9:00 – 9:45 am", time(9), time(9, 45)),
    ("10:30am-12pm", time(10, 30), time(12)),
    ("11:00 – 1:00 pm", time(11), time(13)),
    ("Noon – 1:00 pm", time(12), time(13)),
    ("13:00–14:30", time(13), time(14, 30)),
    ("2:00 - 3:00", time(14), time(15)),
    ("9 – 10 a.m.", time(9), time(10)),
    ("10:00 pm - 1:00 am", time(22), time(1)),
    ("1:00 pm - 2:30", time(13), time(14, 30)),
    ("8:30 AM", time(8, 30), None),
])
def test_parse_clock(text, start, end):
    clock = parse_clock(text)
    assert (clock.start, clock.end) == (start, end)


def test_parse_clock_finds_the_first_time_in_text():
    clock = parse_clock("Room 101, 9:00 am – 10:15 am CT", anchored=False)
    assert (clock.start, clock.end, clock.tz) == (time(9), time(10, 15), "CT")
    assert parse_clock("Room 101", anchored=False) is None


def test_parse_clock_labels_and_non_times():
    assert parse_clock("10:30am-12pm PT").tz == "PT"
    assert parse_clock("Session 2") is None
    assert parse_clock("Keynote") is None
    with pytest.raises(BadTime):
        parse_clock("25:99")
    with pytest.raises(BadTime):
        parse_clock("13:00 pm")


def test_dst_fall_back_and_spring_forward():
    # Saturday before the change is daylight time (UTC-7), Sunday after it standard (UTC-8)
    sat = session_times(date(2026, 10, 31), parse_clock("9:00 – 10:00 am"), "America/Los_Angeles")
    sun = session_times(date(2026, 11, 1), parse_clock("9:00 – 10:00 am"), "America/Los_Angeles")
    assert (sat.starts_at, sat.ends_at) == ("2026-10-31T16:00:00Z", "2026-10-31T17:00:00Z")
    assert (sun.starts_at, sun.ends_at) == ("2026-11-01T17:00:00Z", "2026-11-01T18:00:00Z")
    assert not sat.warnings and not sun.warnings
    # 1:30 am happens twice on 1 November: the first (daylight) one, with a warning
    dt, warning = localize(date(2026, 11, 1), time(1, 30), LA)
    assert dt.utcoffset().total_seconds() == -7 * 3600 and "happens twice" in warning
    # 2:30 am does not exist on 8 March 2026: read as 3:30 daylight time, with a warning
    dt, warning = localize(date(2026, 3, 8), time(2, 30), LA)
    assert dt.isoformat() == "2026-03-08T02:30:00-08:00" and "does not exist" in warning
    gap = session_times(date(2026, 3, 8), parse_clock("2:30 am"), "America/Los_Angeles")
    assert gap.starts_at == "2026-03-08T10:30:00Z" and gap.warnings


def test_session_spanning_midnight_ends_next_day():
    t = session_times(date(2026, 6, 5), parse_clock("10:00 pm – 1:00 am"), "America/Chicago")
    assert (t.starts_at, t.ends_at) == ("2026-06-06T03:00:00Z", "2026-06-06T06:00:00Z")


def test_time_label_beats_page_zone_and_missing_zone_warns():
    t = session_times(date(2026, 6, 5), parse_clock("1:00 pm ET"), "America/Los_Angeles")
    assert t.starts_at == "2026-06-05T17:00:00Z" and t.timezone == "America/New_York"
    t = session_times(date(2026, 6, 5), parse_clock("1:00 pm"), None)
    assert t.starts_at == "2026-06-05T13:00:00Z" and "no time zone" in t.warnings[0]


def test_page_timezone_statements():
    assert page_timezone("Welcome! All times are Pacific Time.") == "America/Los_Angeles"
    assert page_timezone("Times listed in CT unless noted") == "America/Chicago"
    assert page_timezone("Schedule (times in Eastern)") == "America/New_York"
    assert page_timezone("Schedule, America/Denver") == "America/Denver"
    assert page_timezone("Keynote at the Central Library") is None


@pytest.mark.parametrize("title, hint, expected", [
    ("Keynote: The Future of ILL", None, "keynote"),
    ("Pre-conference workshop: ILLiad addons", None, "preconference"),
    ("Morning coffee break", None, "break"),
    ("Lunch on your own", None, "break"),
    ("Lunch and Learn: Tipasa reports", None, "session"),
    ("Social Media for ILL Outreach", None, "session"),
    ("Evening Social", None, "social"),
    ("Welcome Reception", None, "social"),
    ("Vendor demo", "Break", "break"),
    ("Evening at the Falls", "SocialEvent", "social"),
    ("Breaking down barriers to lending", None, "session"),
])
def test_session_type(title, hint, expected):
    assert session_type(title, hint) == expected


def test_parse_presenters_shapes():
    assert parse_presenters("Jane Doe, University of Idaho; John Roe, Y College") == [
        {"name": "Jane Doe", "affiliation": "University of Idaho"}, {"name": "John Roe", "affiliation": "Y College"}]
    assert parse_presenters("Presenters: Jane Doe (Univ. of X) and John Roe (OCLC)") == [
        {"name": "Jane Doe", "affiliation": "Univ. of X"}, {"name": "John Roe", "affiliation": "OCLC"}]
    assert parse_presenters("Jane Doe, Boise State University, John Roe & Ann Poe") == [
        {"name": "Jane Doe", "affiliation": "Boise State University"}, {"name": "John Roe", "affiliation": None},
        {"name": "Ann Poe", "affiliation": None}]
    assert parse_presenters("") == []
