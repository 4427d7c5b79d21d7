"""The catalog's event queries and its Atom and iCal outputs, fetched through Datasette's
test client and parsed back with feedparser and icalendar."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import feedparser
import icalendar
import pytest
from datasette.app import Datasette

from catalog.app import build_metadata
from harvesters.parsers.ical import parse_ical
from pipeline.event_links import link_media
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, store_batch, sync_sources

NOW = datetime.now(UTC).replace(microsecond=0)


def stamp(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%M%SZ")


def calendar() -> bytes:
    """A Sched-style calendar with one past and two upcoming sessions, relative to now."""
    soon, later, past = NOW + timedelta(days=10), NOW + timedelta(days=40), NOW - timedelta(days=30)
    events = [
        ("up-1", soon, "Borrowing 101 Bootcamp", "Room 1", "https://conf.example.org/event/1"),
        ("up-2", later, "Keynote: ILL in 2030", "Main Hall", None),
        ("past-1", past, "Rapido Roundtable", "Room 2", "https://conf.example.org/event/3"),
    ]
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Sched.com Test//EN", "X-WR-CALNAME:Test Summit",
             "X-WR-TIMEZONE:America/Chicago"]
    for uid, start, title, room, url in events:
        lines += ["BEGIN:VEVENT", f"UID:{uid}", f"DTSTART:{stamp(start)}", f"DTEND:{stamp(start + timedelta(hours=1))}",
                  f"SUMMARY:{title}", f"LOCATION:{room}", f"DESCRIPTION:About {title}."]
        lines += [f"URL:{url}"] if url else []
        lines += ["END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines).encode()


@pytest.fixture
def catalog(tmp_path):
    path = tmp_path / "catalog.db"
    db = open_db(path)
    sync_sources(db, [{"id": "summit", "name": "Summit", "kind": "ical", "url": "https://conf.example.org/all.ics"},
                      {"id": "blog", "name": "Blog", "kind": "feed", "url": "https://blog.example.org/feed"},
                      {"id": "tube", "name": "Tube", "kind": "youtube"}])
    parsed = parse_ical(calendar(), "https://conf.example.org/all.ics", event_name="Test Summit 2026")
    store_batch(db, Batch("summit", parsed.resources, url="https://conf.example.org/all.ics"))
    store_batch(db, Batch("blog", [Resource(url="https://blog.example.org/post/1", title="A post about lending",
                                            description="Lending tips", content_type="article",
                                            organization="Blog Org")]))
    store_batch(db, Batch("tube", [Resource(
        url="https://www.youtube.com/watch?v=tEsTsUmMit1", title="Test Summit: Rapido Roundtable (recording)",
        content_type="video", published=(NOW - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ"))]))
    assert len(link_media(db)) == 1
    db.close()
    return path


def fetch(db_path, path: str):
    async def go():
        ds = Datasette([str(db_path)], metadata=build_metadata(db_path))
        await ds.invoke_startup()
        return await ds.client.get(path)

    return asyncio.run(go())


def test_upcoming_events_query(catalog):
    r = fetch(catalog, "/catalog/upcoming_events.json?_shape=objects")
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert [row["title"] for row in rows] == ["Borrowing 101 Bootcamp", "Keynote: ILL in 2030"]
    assert rows[0]["event_name"] == "Test Summit 2026" and rows[0]["timezone"] == "America/Chicago"
    assert rows[1]["url"] == "https://conf.example.org/all.ics?uid=up-2"


def test_past_sessions_and_by_conference_queries(catalog):
    rows = fetch(catalog, "/catalog/past_sessions_with_media.json?_shape=objects").json()["rows"]
    assert [row["title"] for row in rows] == ["Rapido Roundtable"]
    assert rows[0]["recording_url"] == "https://www.youtube.com/watch?v=tEsTsUmMit1"  # linked after the harvest
    year = (NOW + timedelta(days=10)).year
    rows = fetch(catalog, f"/catalog/sessions_by_conference.json?_shape=objects&conference=summit&year={year}"
                 ).json()["rows"]
    assert "Borrowing 101 Bootcamp" in {row["title"] for row in rows}
    assert all(row["event_year"] == year for row in rows)
    rows = fetch(catalog, "/catalog/sessions_by_conference.json?_shape=objects&conference=nothing&year=").json()["rows"]
    assert rows == []
    rows = fetch(catalog, "/catalog/sessions_by_conference.json?_shape=objects&conference=&year=").json()["rows"]
    assert len(rows) == 3


def test_atom_feed_of_new_resources(catalog):
    r = fetch(catalog, "/catalog/new_resources_feed.atom")
    assert r.status_code == 200, r.text[:500]
    feed = feedparser.parse(r.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10" and feed.feed.title == "New in illhub"
    titles = {e.title for e in feed.entries}
    assert {"A post about lending", "Borrowing 101 Bootcamp", "Test Summit: Rapido Roundtable (recording)"} <= titles
    assert len(feed.entries) == 5
    post = next(e for e in feed.entries if e.title == "A post about lending")
    assert post.link == "https://blog.example.org/post/1" and post.id == "https://blog.example.org/post/1"
    assert post.author == "Blog Org" and "Lending tips" in post.content[0].value
    assert post.updated_parsed is not None


def test_ical_feed_of_upcoming_events(catalog):
    r = fetch(catalog, "/catalog/upcoming_events_calendar.ics")
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(r.content)
    assert str(cal.get("X-WR-CALNAME")) == "Upcoming events (illhub)"
    events = {str(e.get("SUMMARY")): e for e in cal.walk("VEVENT")}
    assert set(events) == {"Borrowing 101 Bootcamp", "Keynote: ILL in 2030"}
    boot = events["Borrowing 101 Bootcamp"]
    start = NOW + timedelta(days=10)
    assert boot.get("DTSTART").dt == start
    assert boot.get("DTEND").dt == start + timedelta(hours=1)
    assert str(boot.get("UID")).endswith("@illhub")
    description = str(boot.get("DESCRIPTION"))
    assert "Test Summit 2026" in description and "Where: Room 1" in description
    assert "https://conf.example.org/event/1" in description


def test_presenters_are_json_in_the_catalog(catalog):
    rows = fetch(catalog, "/catalog/upcoming_events.json?_shape=objects").json()["rows"]
    assert json.loads(rows[0]["presenters"]) == []


def test_feeds_of_an_empty_catalog(tmp_path):
    path = tmp_path / "catalog.db"
    open_db(path).close()
    r = fetch(path, "/catalog/new_resources_feed.atom")
    assert r.status_code == 200, r.text[:300]
    feed = feedparser.parse(r.content)
    assert not feed.bozo and [e.title for e in feed.entries] == ["The catalog has no resources yet"]
    r = fetch(path, "/catalog/upcoming_events_calendar.ics")
    assert r.status_code == 200
    assert icalendar.Calendar.from_ical(r.content).walk("VEVENT") == []


def test_event_cards_show_conference_presenters_and_media_links(catalog):
    from catalog.app import make_datasette

    async def go(path):
        ds = make_datasette(catalog)
        await ds.invoke_startup()
        return await ds.client.get(path)

    html = asyncio.run(go("/catalog/past_sessions_with_media")).text
    card = html.split('<ol class="cards">')[1].split("</ol>")[0]
    assert '<span class="event-name">Test Summit 2026</span>' in card
    assert '<a class="recording" href="https://www.youtube.com/watch?v=tEsTsUmMit1">Recording' in card
    html = asyncio.run(go("/catalog/upcoming_events")).text
    assert '<span class="location">Room 1</span>' in html
    # the calendar query offers its .ics link
    html = asyncio.run(go("/catalog/upcoming_events_calendar")).text
    assert "upcoming_events_calendar.ics" in html


def test_presenters_render_as_escaped_names():
    from catalog import cells, labels

    value = json.dumps([{"name": "Ann Lee", "affiliation": "River College"}, {"name": "<script>x</script>"}])
    assert labels.presenter_names(value) == "Ann Lee (River College), <script>x</script>"
    html = str(cells.render_cell(row={"presenters": value}, value=value, column="presenters", table="resources",
                                 database="catalog", table_url=lambda name: f"/catalog/{name}"))
    assert html == '<span class="presenters">Ann Lee (River College), &lt;script&gt;x&lt;/script&gt;</span>'
    assert labels.presenter_names("[]") == "" and labels.presenter_names("not json") == ""
