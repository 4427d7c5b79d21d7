"""Event columns in the catalog, and recordings/slides found later linked to their sessions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harvesters.parsers.conference import parse_program
from harvesters.parsers.ical import parse_ical
from pipeline.event_links import best_session, conference_keys, link_media, normalize_title, similarity
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, store_batch, sync_sources

FIXTURES = Path(__file__).parent / "fixtures"
PROGRAM = "https://cascadia.example.org/2026-conference-program"


@pytest.fixture
def db(tmp_path):
    db = open_db(tmp_path / "catalog.db")
    sync_sources(db, [
        {"id": "program", "name": "Program", "kind": "conference", "url": PROGRAM},
        {"id": "sched", "name": "Sched", "kind": "ical", "url": "https://cascadia2026.sched.example/all.ics"},
        {"id": "videos", "name": "Videos", "kind": "youtube"},
        {"id": "docs", "name": "Docs", "kind": "feed"},
    ])
    yield db
    db.close()


def program_batch() -> Batch:
    parsed = parse_program((FIXTURES / "conference" / "nwill-style-program.html").read_bytes(), PROGRAM, source_id="program")
    return Batch("program", parsed.resources, url=PROGRAM, warnings=parsed.warnings)


def row(db, title: str) -> dict:
    return dict(next(db["resources"].rows_where("title = ?", [title])))


def video(url: str, title: str, published: str = "2026-11-10T00:00:00Z", description: str = "",
          organization: str | None = None, content_type: str = "video") -> Resource:
    return Resource(url=url, title=title, description=description, content_type=content_type,
                    published=published, organization=organization)


def test_event_columns_written_and_idempotent(db):
    first = store_batch(db, program_batch(), now="2026-11-20T00:00:00Z")
    assert first["new"] == 8
    keynote = row(db, "Keynote: Resource Sharing After the Pandemic")
    assert keynote["content_type"] == "event"
    assert (keynote["starts_at"], keynote["ends_at"]) == ("2026-10-31T16:00:00Z", "2026-10-31T17:00:00Z")
    assert keynote["timezone"] == "America/Los_Angeles" and keynote["event_year"] == 2026
    assert keynote["event_name"] == "Cascadia ILL Conference 2026" and keynote["session_type"] == "keynote"
    assert json.loads(keynote["presenters"]) == [{"name": "Priya Natarajan", "affiliation": "Cascade Public Library"}]
    assert keynote["slides_url"] == "https://cascadia.example.org/files/2026/keynote-natarajan.pdf"
    before = [dict(r) for r in db["resources"].rows]
    again = store_batch(db, program_batch(), now="2026-11-21T00:00:00Z")
    assert again["unchanged"] == 8 and again["new"] == again["updated"] == 0
    after = [dict(r) for r in db["resources"].rows]
    assert [{k: v for k, v in r.items() if k != "last_seen"} for r in before] == \
        [{k: v for k, v in r.items() if k != "last_seen"} for r in after]


def test_ical_events_stored(db):
    parsed = parse_ical((FIXTURES / "ical" / "sched-style.ics").read_bytes(), "https://cascadia2026.sched.example/all.ics")
    store_batch(db, Batch("sched", parsed.resources, url="https://cascadia2026.sched.example/all.ics"))
    trivia = row(db, "Night Owl Trivia")
    assert (trivia["starts_at"], trivia["ends_at"], trivia["session_type"]) == \
        ("2026-11-01T06:30:00Z", "2026-11-01T08:30:00Z", "social")
    assert db.execute("select count(*) from resources where content_type = 'event'").fetchone()[0] == 7


def test_changed_session_updates_columns(db):
    store_batch(db, program_batch(), now="2026-11-20T00:00:00Z")
    batch = program_batch()
    keynote = next(r for r in batch.resources if r.title.startswith("Keynote"))
    keynote.extra["location"] = "Grand Ballroom"
    keynote.extra["starts_at"] = "2026-10-31T16:30:00Z"
    result = store_batch(db, batch, now="2026-11-21T00:00:00Z")
    assert result["updated"] == 1
    r = row(db, "Keynote: Resource Sharing After the Pandemic")
    assert (r["location"], r["starts_at"]) == ("Grand Ballroom", "2026-10-31T16:30:00Z")


def test_recording_found_later_is_linked_to_its_session(db):
    store_batch(db, program_batch(), now="2026-11-20T00:00:00Z")
    store_batch(db, Batch("videos", [
        # the program already links this one: linked by its URL
        video("https://www.youtube.com/watch?v=cAsCaDiA001", "Lending workflows (Cascadia ILL 2026)"),
        # names the conference and the year; the title matches a session that has no recording yet
        video("https://www.youtube.com/watch?v=cAsCaDiA002",
              "Cascadia ILL 2026 — Keynote: Resource Sharing after the Pandemic (recording)"),
        # same talk title, but another year: not linked
        video("https://www.youtube.com/watch?v=cAsCaDiA003", "Cascadia ILL 2024: Social Media for ILL Outreach"),
        # does not name the conference: not linked
        video("https://www.youtube.com/watch?v=oTher000004", "Social Media for ILL Outreach"),
        # a deck: fills slides_url of the matching session
        video("https://cascadia.example.org/files/trivia.pdf", "Cascadia ILL slides: Night Owl Trivia Social",
              content_type="document"),
    ]), now="2026-11-21T00:00:00Z")
    links = {link.media_id: link for link in link_media(db)}
    ids = {r["url"]: r["id"] for r in db["resources"].rows}
    keynote = row(db, "Keynote: Resource Sharing After the Pandemic")
    lending = row(db, "Lending Workflows in Tipasa")
    trivia = row(db, "Night Owl Trivia Social")
    assert links[ids["https://www.youtube.com/watch?v=cAsCaDiA001"]].session_id == lending["id"]
    assert links[ids["https://www.youtube.com/watch?v=cAsCaDiA001"]].rule == "same-link"
    assert links[ids["https://www.youtube.com/watch?v=cAsCaDiA002"]].session_id == keynote["id"]
    assert keynote["recording_url"] == "https://www.youtube.com/watch?v=cAsCaDiA002"
    assert keynote["slides_url"].endswith("keynote-natarajan.pdf")  # untouched
    assert trivia["slides_url"] == "https://cascadia.example.org/files/trivia.pdf"
    assert ids["https://www.youtube.com/watch?v=cAsCaDiA003"] not in links
    assert ids["https://www.youtube.com/watch?v=oTher000004"] not in links
    assert len(links) == 3
    linked = dict(db.execute("select url, session_id from resources where session_id is not null").fetchall())
    assert linked["https://www.youtube.com/watch?v=cAsCaDiA002"] == keynote["id"]
    # linking again finds nothing new; re-harvesting the program keeps the linked recording
    assert link_media(db) == []
    store_batch(db, program_batch(), now="2026-11-22T00:00:00Z")
    assert row(db, "Keynote: Resource Sharing After the Pandemic")["recording_url"].endswith("cAsCaDiA002")


def test_matching_rule_details():
    keys = conference_keys("Great Lakes Resource Sharing Conference")
    assert "glrsc" in keys and "great lakes resource sharing" in keys
    assert conference_keys("NWILL 2020") == ["nwill"]
    assert "ill" not in conference_keys("Cascadia ILL Conference 2026")  # too short to name a conference
    assert normalize_title("NWILL 2020: Borrowing 101 — Session Recording", ["nwill"]) == "borrowing 101"
    assert similarity("lending workflows tipasa", "lending workflows tipasa sam ortiz") >= 0.9  # contained
    assert similarity("borrowing 101", "lending 101") < 0.85

    from pipeline.event_links import Session

    def session(sid, title, year=2020, name="NWILL 2020"):
        k = conference_keys(name)
        return Session(sid, title, name, year, None, k, normalize_title(title, k))

    sessions = [session("a", "Borrowing 101"), session("b", "Lending 101"), session("c", "Copyright Corner"),
                session("d", "Copyright Corner!", name="NWILL 2020")]
    # published the year after the conference, no year in the title: still a match
    found, score = best_session({"title": "NWILL: Borrowing 101", "published": "2021-02-01T00:00:00Z"}, sessions)
    assert found.id == "a" and score == 1.0
    # published two years later: no
    assert best_session({"title": "NWILL: Borrowing 101", "published": "2022-06-01T00:00:00Z"}, sessions)[0] is None
    # two sessions equally good: ambiguous, nothing linked
    assert best_session({"title": "NWILL 2020 Copyright Corner", "published": None}, sessions)[0] is None
    # same organization stands in for naming the conference
    org_sessions = [Session("e", "Borrowing 101", "NWILL 2020", 2020, "NWILL", ["nwill"], "borrowing 101")]
    assert best_session({"title": "Borrowing 101", "published": "2020-10-05T00:00:00Z", "organization": "NWILL"},
                        org_sessions)[0].id == "e"


def test_reprocess_keeps_event_columns(db):
    from pipeline.reprocess import reprocess

    store_batch(db, program_batch(), now="2026-11-20T00:00:00Z")
    before = [dict(r) for r in db["resources"].rows]
    result = reprocess(db, now="2026-11-21T00:00:00Z")
    assert result.resources == 8 and result.changed == 0
    assert [dict(r) for r in db["resources"].rows] == before
    # a changed stored entry is rebuilt with its event columns
    db.execute("update resources set content_hash = 'stale', starts_at = null where title like 'Keynote:%'")
    result = reprocess(db, now="2026-11-22T00:00:00Z")
    assert result.changed == 1
    assert row(db, "Keynote: Resource Sharing After the Pandemic")["starts_at"] == "2026-10-31T16:00:00Z"
