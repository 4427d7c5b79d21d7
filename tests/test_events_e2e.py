"""End to end: `illhub harvest` of a loopback-served program page, a Sched-style .ics and a
YouTube playlist (the demo's event sources); recordings linked to their sessions."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta

from illhub.demo import DemoServer, render_template
from tests.conftest import run_cli

EVENT_SOURCES = ("demo-lakeside-summit", "demo-northwind-ill-day", "demo-northwind-ill-day-videos")


def harvest(registry, db):
    args = ["harvest", "--registry", str(registry), "--db", str(db), "--delay", "0.01", "--quiet"]
    for s in EVENT_SOURCES:
        args += ["--source", s]
    return run_cli(*args)


def test_harvest_program_calendar_and_recordings(demo_server, demo_registry_file, tmp_path):
    db = tmp_path / "catalog.db"
    result = harvest(demo_registry_file, db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 recording(s) or slide deck(s) linked to their conference sessions" in result.stdout
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    runs = {r["source_id"]: r for r in conn.execute("select * from harvest_runs")}
    assert {s: runs[s]["status"] for s in EVENT_SOURCES} == dict.fromkeys(EVENT_SOURCES, "ok")
    assert runs["demo-lakeside-summit"]["items_new"] == 5  # 6 events, the lunch break skipped
    assert runs["demo-northwind-ill-day"]["items_new"] == 5  # 7 lines, registration and lunch skipped
    events = {r["title"]: r for r in conn.execute("select * from resources where content_type = 'event'")}
    assert len(events) == 10
    # the calendar's dates follow the demo server's today: the keynote is 12 days ahead
    today = demo_server.today
    keynote = events["Keynote: Rapido One Year Later"]
    day = today + timedelta(days=12)
    assert (keynote["starts_at"], keynote["ends_at"]) == (f"{day:%Y-%m-%d}T14:30:00Z", f"{day:%Y-%m-%d}T15:30:00Z")
    assert keynote["timezone"] == "America/Chicago" and keynote["session_type"] == "keynote"
    assert keynote["event_name"] == "Lakeside Resource Sharing Summit (DEMO)"
    assert json.loads(keynote["presenters"]) == [{"name": "Avery Quinn",
                                                  "affiliation": "Northwind University Libraries"}]
    assert events["Summit Social at the Boathouse"]["session_type"] == "social"
    # the program page: Central time, canonical session links, slides from the page
    borrowing = events["Borrowing 101 for New Staff"]
    assert borrowing["starts_at"] == "2025-11-07T16:00:00Z" and borrowing["timezone"] == "America/Chicago"
    assert borrowing["url"] == ("https://demo-northwind.example.edu/ill-day/2025/program/"
                                "?session=2025-11-07-borrowing-101-for-new-staff")
    assert borrowing["event_name"] == "Northwind ILL Day 2025 (DEMO)" and borrowing["event_year"] == 2025
    # recordings on YouTube linked to their sessions: by title, and by the link the program gave
    linked = dict(conn.execute("select url, session_id from resources where session_id is not null").fetchall())
    assert linked == {
        "https://www.youtube.com/watch?v=dEmOvid0301": events["Keynote: Resource Sharing in a Shared-Print World"]["id"],
        "https://www.youtube.com/watch?v=dEmOvid0302": borrowing["id"],
        "https://www.youtube.com/watch?v=dEmOvid0303": events["Copyright Clinic: CONTU and Section 108"]["id"],
    }
    assert borrowing["recording_url"] == "https://www.youtube.com/watch?v=dEmOvid0302"
    shared_print = events["Keynote: Resource Sharing in a Shared-Print World"]
    assert shared_print["recording_url"] == "https://www.youtube.com/watch?v=dEmOvid0301"
    assert shared_print["slides_url"].endswith("/slides/keynote-shared-print.pdf")
    # every request went to the loopback demo server, with our User-Agent
    paths = set(demo_server.targets())
    assert {"/events/lakeside-summit/all.ics", "/events/northwind-ill-day-2025.html"} <= paths

    # a second harvest changes nothing but last_seen
    before = conn.execute("select id, content_hash, first_seen, last_changed, recording_url, session_id "
                          "from resources order by id").fetchall()
    again = harvest(demo_registry_file, db)
    assert again.returncode == 0 and "linked to their conference sessions" not in again.stdout
    after = conn.execute("select id, content_hash, first_seen, last_changed, recording_url, session_id "
                         "from resources order by id").fetchall()
    assert [tuple(r) for r in before] == [tuple(r) for r in after]


def test_demo_calendar_always_has_upcoming_events():
    # whatever the year, the served calendar has sessions after "today" and one before
    with DemoServer(today=date(2031, 2, 27)) as server:
        import urllib.request

        with urllib.request.urlopen(server.base + "/events/lakeside-summit/all.ics", timeout=5) as r:
            body = r.read()
            assert r.headers["Content-Type"].startswith("text/calendar")
    from harvesters.parsers.ical import parse_ical

    parsed = parse_ical(body, server.base + "/events/lakeside-summit/all.ics")
    starts = sorted(r.extra["starts_at"] for r in parsed.resources)
    assert starts[0] == "2031-01-18T18:00:00Z"  # 40 days before
    assert starts[1] == "2031-03-11T14:30:00Z"  # 12 days after, across the month end
    assert not parsed.warnings


def test_render_template_tokens():
    today = date(2026, 11, 28)
    assert render_template("{{day}} {{day+3}} {{day-28}} {{year}} {{year+1}}", today) == \
        "20261128 20261201 20261031 2026 2027"
    assert render_template("{{date+14}}", today) == "Saturday, December 12, 2026"
