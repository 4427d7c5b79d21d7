"""The practitioner's hub (catalog/hub.py, catalog/outputs.py, catalog/wording.py) on the demo
catalog: its pages speak no Datasette jargon, link to each other by name, and give feeds,
calendars, a spreadsheet and a LibGuide snippet that parse back with feedparser, icalendar
and Python's csv module; search reads ILL wording; the demo's links keep working."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from html import unescape
from html.parser import HTMLParser

import feedparser
import pytest
from icalendar import Calendar

from catalog import labels, wording
from tests.conftest import ROOT, run_cli
from tests.test_catalog_web import Client

#: What no page a visitor reaches from the front page may show (visible text).
JARGON = ("View and edit SQL", "Custom SQL", "Filter by column", "Links from other tables", "_sort", "arraycontains",
          "source_id", "content_type", "first_seen", "fetch_cache", "raw_entries", "source_state", "harvest_runs",
          "resource_tags", "resources_fts", "_sqlite_migrations", "web_frontier", "JSON shape", "rowid")
PAGES = ("/", "/search", "/search?q=fair+use", "/topic/copyright", "/system/tipasa", "/topics", "/events", "/sources",
         "/subscribe", "/suggest-a-source", "/source/demo-northwind-blog", "/search?q=copywright",
         "/topic/copyright/libguide")


class _Text(HTMLParser):
    """The text a person sees (scripts and styles left out)."""

    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self.skip -= tag in ("script", "style") and self.skip > 0

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    p = _Text()
    p.feed(html)
    return " ".join(" ".join(p.parts).split())


def harvest_demo(directory) -> object:
    """The demo catalog, harvested by `illhub demo --no-serve` into ``directory``."""
    db = directory / "demo.db"
    result = run_cli("demo", "--db", str(db), "--no-serve")
    assert result.returncode == 0, result.stdout + result.stderr
    return db


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    return harvest_demo(tmp_path_factory.mktemp("hub"))


@pytest.fixture(scope="module")
def hub(demo_db):
    c = Client(demo_db)
    yield c
    c.close()


def event_id(db, title: str) -> str:
    return sqlite3.connect(db).execute("select id from resources where title = ?", [title]).fetchone()[0]


@pytest.mark.parametrize("path", PAGES)
def test_pages_speak_no_datasette_jargon(hub, path):
    text = visible_text(hub.get(path).text)
    for word in JARGON:
        assert word not in text, (path, word)


def test_every_page_announces_a_feed_and_the_menu(hub):
    for path in ("/", "/topics", "/demo/resources"):
        html = hub.get(path).text
        assert re.search(r'<link rel="alternate" type="application/atom\+xml" title="[^"]+" href="/search/feed\.atom">', html)
    topic = hub.get("/topic/copyright").text
    assert 'type="application/atom+xml"' in topic and 'href="/topic/copyright/feed.atom"' in topic
    for label in ("Topics", "Events", "Subscribe", "Suggest a source"):
        assert f">{label}</a>" in hub.get("/").text


def test_topic_page_by_name_with_videos_sources_and_outputs(hub, demo_db):
    html = hub.get("/topic/copyright").text
    n = sqlite3.connect(demo_db).execute(
        "select count(*) from resource_tags where col = 'topics' and value = 'copyright'").fetchone()[0]
    assert "<h1>Copyright and fair use</h1>" in html and f"{n} resources" in html
    assert 'id="videos-title"' in html and "Copyright Clinic: CONTU and Section 108 (full session)" in html
    assert 'id="sources-title"' in html and 'href="/source/demo-curated-copyright"' in html
    for out in ("feed.atom", "list.csv", "libguide", "events.ics"):
        assert f'href="/topic/copyright/{out}' in html
    assert 'href="/demo/resources.csv?_stream=on&amp;_size=max&amp;_topic=copyright"' in html  # full data, one click on
    hub.get("/topic/no-such-topic", status=404)


def test_system_and_source_pages(hub):
    html = hub.get("/system/tipasa").text
    assert "<h1>Tipasa</h1>" in html and "From OCLC." in html
    assert "Tipasa tip: clearing the lending queue in five minutes" in html
    src = hub.get("/source/demo-northwind-blog").text
    assert "Northwind University Libraries — Resource Sharing Blog (DEMO)" in src
    for fact in ("Published by", "How it is read", "Last harvest", "Health", "Freshness"):
        assert f"<dt>{fact}</dt>" in src
    assert "Copyright in ILL: the CONTU" in src
    broken = hub.get("/source/demo-moved-feed").text
    assert "failed" in broken
    hub.get("/source/nope", status=404)


def test_event_page_shows_its_own_zone_with_utc_and_add_to_calendar(hub, demo_db):
    rid = event_id(demo_db, "Pre-summit webinar: Getting Ready for Rapido")
    html = hub.get(f"/resource/{rid}").text
    assert re.search(r"<strong>\w{3} \d+ \w{3} \d{4}, \d\d:\d\d–\d\d:\d\d C[DS]T</strong> .*\(America/Chicago\)", html)
    assert re.search(r'class="utc">\w{3} \d+ \w{3} \d{4}, \d\d:\d\d–\d\d:\d\d UTC<', html)
    assert f'href="/resource/{rid}/event.ics"' in html and "Speakers: Jo Park (Lakeside Library Consortium)" in html
    # the topic and system names link to their pages
    assert 'href="/system/rapido"' in html and 'href="/topic/conferences"' in html


def test_a_resource_page_says_why_it_has_each_topic(hub, demo_db):
    """Every topic and system on a resource's page with the reason it was given (its
    classified_by), in words: the keyword, or that its source gives it to everything, or a
    person's choice; nothing of the raw JSON or the source's internal id."""
    conn = sqlite3.connect(demo_db)
    rid, why = conn.execute("select id, classified_by from resources where title = ?",
                            ["Pre-summit webinar: Getting Ready for Rapido"]).fetchone()
    conn.close()
    html = unescape(hub.get(f"/resource/{rid}").text)
    box = html.split('class="why-tagged"')[1].split("</details>")[0]
    assert "<summary>Why these topics?</summary>" in box
    reasons = json.loads(why)
    assert reasons and len(re.findall(r"<li>", box)) == len(reasons)
    for key, reason in reasons.items():
        label = labels.term_labels()["systems" if key.startswith("system:") else "topics"][key.removeprefix("system:")]
        shown = f"<strong>{label}</strong>: "
        assert shown in box, (label, box)
        if not reason.startswith("registry "):
            assert shown + reason in box
    assert "registry topic of" not in box and "classified_by" not in box


def test_one_event_ics_in_its_zone_with_location_url_and_speakers(hub, demo_db):
    rid = event_id(demo_db, "Pre-summit webinar: Getting Ready for Rapido")
    r = hub.get(f"/resource/{rid}/event.ics")
    assert r.headers["content-type"].startswith("text/calendar")
    cal = Calendar.from_ical(r.content)
    [ev] = cal.walk("VEVENT")
    assert str(ev["DTSTART"].dt.tzinfo) == "America/Chicago" and ev["DTSTART"].params["TZID"] == "America/Chicago"
    assert cal.walk("VTIMEZONE") and ev["DTEND"].dt > ev["DTSTART"].dt
    assert str(ev["LOCATION"]) == "Online" and str(ev["URL"]).startswith("https://demo-lakeside.example.org/summit/")
    assert "What to clean up before moving to Rapido." in str(ev["DESCRIPTION"])
    assert "Speakers" not in str(ev["DESCRIPTION"]) and "Jo Park" not in str(ev["DESCRIPTION"])
    [speaker] = ev.walk("PARTICIPANT")
    assert str(speaker["PARTICIPANT-TYPE"]) == "SPEAKER" and str(speaker["SUMMARY"]) == "Jo Park"


def test_topic_calendar_lists_its_upcoming_events(hub, demo_db):
    upcoming = [r[0] for r in sqlite3.connect(demo_db).execute(
        "select title from resources where content_type = 'event' and "
        "coalesce(ends_at, starts_at) >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now') order by starts_at")]
    assert len(upcoming) >= 3  # the Lakeside summit's later sessions (the Northwind day is past)
    cal = Calendar.from_ical(hub.get("/topic/conferences/events.ics").content)
    events = cal.walk("VEVENT")
    assert [str(ev["SUMMARY"]) for ev in events] == upcoming
    for ev in events:
        assert ev.get("LOCATION") and ev.get("URL") and ev.get("DESCRIPTION") and ev.get("DTSTART")
        # the speakers are PARTICIPANTs, not the start of the description
        assert not str(ev["DESCRIPTION"]).lower().startswith("speaker"), ev["DESCRIPTION"]
        for p in ev.walk("PARTICIPANT"):
            assert str(p["SUMMARY"]) not in str(ev["DESCRIPTION"])
    assert any(p["PARTICIPANT-TYPE"] == "SPEAKER" for ev in events for p in ev.walk("PARTICIPANT"))
    assert len(Calendar.from_ical(hub.get("/events/upcoming.ics").content).walk("VEVENT")) == len(upcoming)


def test_an_event_its_source_no_longer_lists_is_not_upcoming(demo_db, tmp_path):
    """An event whose source dropped it (status 'stale': cancelled, or moved off the calendar)
    leaves every upcoming list, as it leaves the front page's: the events page, a topic's
    calendar and the calendar of everything upcoming (the topic's full list still holds it)."""
    import shutil

    copy = tmp_path / "stale.db"
    shutil.copyfile(demo_db, copy)
    conn = sqlite3.connect(copy)
    title = conn.execute("select title from resources where content_type = 'event' and "
                         "coalesce(ends_at, starts_at) >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
                         "order by starts_at limit 1").fetchone()[0]
    conn.execute("update resources set status = 'stale' where title = ?", [title])
    conn.commit()
    conn.close()
    c = Client(copy)
    try:
        for ics in ("/topic/conferences/events.ics", "/events/upcoming.ics"):
            summaries = [str(ev["SUMMARY"]) for ev in Calendar.from_ical(c.get(ics).content).walk("VEVENT")]
            assert summaries and title not in summaries, ics
        assert title not in visible_text(c.get("/events").text)
    finally:
        c.close()


@pytest.mark.parametrize("path", ["/search/feed.atom", "/topic/copyright/feed.atom", "/system/tipasa/feed.atom",
                                  "/source/demo-northwind-blog/feed.atom", "/search/feed.atom?q=rule+of+5"])
def test_feeds_are_atom_for_readers_and_pages_for_browsers(hub, path):
    r = hub.get(path)
    assert r.headers["content-type"].startswith("application/atom+xml")
    assert r.text.splitlines()[1] == '<?xml-stylesheet type="text/xsl" href="/static/feed.xsl"?>'
    feed = feedparser.parse(r.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10" and feed.entries and feed.feed.title.startswith("illhub: ")
    for e in feed.entries:
        assert e.title and e.link.startswith(("http://", "https://")) and e.id.startswith("urn:illhub:resource:")
    if "rule+of+5" in path:
        assert any("rule of five" in e.title for e in feed.entries)
    assert "<xsl:stylesheet" in hub.get("/static/feed.xsl").text


def test_spreadsheet_csv_has_a_bom_names_and_no_highlights(hub):
    r = hub.get("/search/list.csv?q=copyright")
    assert r.headers["content-type"] == "text/csv; charset=utf-8" and "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")
    text = r.content.decode("utf-8-sig")
    assert "\ue000" not in text and "\ue001" not in text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == ["Title", "URL", "Description", "Type", "Organization", "Published", "Topics", "Systems"]
    contu = next(x for x in rows if x["Title"] == 'Copyright in ILL: the CONTU "rule of five" explained')
    assert contu["Topics"] == "ILL basics; Borrowing; Copyright and fair use; Workflows" and contu["Type"] == "Article"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", contu["Published"])
    assert any("§ 108" in x["Title"] for x in rows)  # the right characters


def test_libguide_snippet_is_a_list_of_links(hub):
    html = hub.get("/topic/copyright/list.html").text
    assert '<ul class="illhub-list">' in html and html.count("<li>") == 8
    assert '<a href="https://www.copyright.gov/circs/circ21.pdf">Circular 21:' in html
    # the page that shows it: the code to copy (escaped in a textarea), how to paste it, a preview
    page = hub.get("/topic/copyright/libguide").text
    code = page.split('<textarea id="libguide-code"')[1].split("</textarea>")[0]
    assert "&lt;ul class=&#34;illhub-list&#34;&gt;" in code and code.count("&lt;li&gt;") == 8
    preview = page.split('class="snippet-preview">')[1].split("</div>")[0]
    assert preview.count("<li>") == 8 and "Rich Text / HTML" in page
    assert 'href="/topic/copyright/libguide"' in hub.get("/topic/copyright").text


def test_date_range_quick_choices_and_sorts(hub):
    all_html = hub.get("/search?sort=title").text
    titles = re.findall(r'<h3 class="card-title">(?:<a [^>]+>)?([^<]+)<', all_html)
    assert titles == sorted(titles, key=str.lower)
    old = re.findall(r'<time datetime="([^"]+)"', hub.get("/search?sort=oldest").text)
    assert old[:5] == sorted(old[:5])
    ranged = hub.get("/search?since=2025-01-01&until=2025-12-31").text
    dates = re.findall(r'Published <time datetime="([^"]+)"', ranged)
    assert dates and all(d.startswith("2025") for d in dates)
    assert "Published since 2025-01-01" in ranged and "Published until 2025-12-31" in ranged
    for label in ("This week", "This month", "This year", "Any time", "Newest first", "Oldest first", "Title (A–Z)"):
        assert label in all_html
    assert hub.get("/search?when=year").text.count('class="card') <= all_html.count('class="card')


def test_search_reads_ill_wording(hub, demo_db):
    def count(q):
        m = re.search(r'class="result-count">([\d,]+) resources?', hub.get(f"/search?q={q}").text)
        return int(m.group(1)) if m else 0

    n_copyright = sqlite3.connect(demo_db).execute(
        "select count(*) from resource_tags where col = 'topics' and value = 'copyright'").fetchone()[0]
    assert count("fair+use") >= n_copyright
    assert count("rule+of+5") == count("rule+of+five") > 0
    assert count("interlibrary+loan") > 0 and count("ILL") >= count("interlibrary+loan")
    assert count("tipasa+videos") >= 1
    nothing = hub.get("/search?q=copywright+tipassa").text
    assert "Did you mean" in nothing and ">copyright tipasa</a>" in nothing
    assert 'href="/topic/copyright"' in nothing and 'href="/system/tipasa"' in nothing


def test_wording_plans():
    p = wording.plan("fair use videos for Tipasa")
    texts = [c.text for c in p.concepts]
    assert texts == ["fair use", "videos", "tipasa"]
    assert "copyright" in p.concepts[0].topics and "video" in p.concepts[1].types and "tipasa" in p.concepts[2].systems
    assert "rule of five" in wording.plan("rule of 5").concepts[0].phrases
    assert "interlibrary loan" in wording.plan("ILL").concepts[0].phrases
    assert wording.plan("the").concepts[0].text == "the"  # a query of stopwords alone is still searched
    assert wording.spelling_fixes("copywright") == ["copyright"]
    # systems by their old names, in any capitals
    assert wording.plan("worldcat resource sharing").concepts[0].systems == ("worldshare-ill",)
    assert wording.plan("ids logic").concepts[0].systems == ("illiad",)
    assert wording.plan("rapido").concepts[0].systems == ("rapido",)


def test_subscribe_suggest_and_opml(hub):
    sub = visible_text(hub.get("/subscribe").text)
    assert "feed reader" in sub and "iCal" in sub and "OPML" in sub
    opml = hub.get("/sources.opml")
    assert "<opml" in opml.text and 'xmlUrl="' in opml.text
    suggest = visible_text(hub.get("/suggest-a-source").text)
    assert "illhub add-source" in suggest and "registry.yaml" in suggest and "nothing you type here is stored" in suggest
    assert "<form" not in hub.get("/suggest-a-source").text.split('<main')[1].split("</main>")[0].replace(
        'class="hub-search-mini"', "")


def test_demo_web_serves_while_the_catalog_does(tmp_path):
    """`illhub demo` keeps its demo web up while the catalog is served: every demo resource
    that lives on it opens (checked where the catalog would be served, in its own process)."""
    script = f"""
import sqlite3, sys, urllib.request
import illhub.serve
from illhub.demo import run_demo

def fake_serve(db_path, **kwargs):
    urls = [r[0] for r in sqlite3.connect(db_path).execute(
        "select url from resources where url like 'http://127.0.0.1:%'")]
    print("URLS", len(urls))
    print("STATUS", sorted({{urllib.request.urlopen(u, timeout=10).status for u in urls}}))
    return 0

illhub.serve.serve_datasette = fake_serve
sys.exit(run_demo({str(tmp_path / "demo.db")!r}, port=0))
"""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(re.search(r"^URLS (\d+)$", result.stdout, re.M).group(1)) >= 5
    assert "STATUS [200]" in result.stdout


def test_suggest_a_source_names_the_registry_contact(hub, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "registry.yaml").write_text("defaults:\n  contact: ill-hub@example.org\nsources: []\n", encoding="utf-8")
    html = hub.get("/suggest-a-source").text
    assert '<a href="mailto:ill-hub@example.org">ill-hub@example.org</a>' in html
    (tmp_path / "registry.yaml").write_text("defaults:\n  contact: 'javascript:alert(1)'\n", encoding="utf-8")
    html = hub.get("/suggest-a-source").text
    assert "javascript:" not in html and "github.com/illhub/illhub/issues" in html


@pytest.mark.parametrize("path", ["/", "/search?q=fair+use", "/topic/copyright", "/source/demo-northwind-blog",
                                  "/events", "/subscribe", "/topic/copyright/feed.atom", "/topic/copyright/list.csv"])
def test_hub_pages_in_the_public_profile(demo_db, path):
    c = Client(demo_db, public=True)
    try:
        r = c.get(path)
        assert "fetch_cache" not in r.text and "harvest_runs" not in visible_text(r.text)
    finally:
        c.close()


def test_public_robots_keep_crawlers_out_of_search_permutations(demo_db):
    c = Client(demo_db, public=True)
    try:
        robots = c.get("/robots.txt").text
    finally:
        c.close()
    for rule in ("Disallow: /search", "Disallow: /*?*sort=", "Disallow: /*?*page=", "Disallow: /*.ics",
                 "Disallow: /*/libguide"):
        assert rule + "\n" in robots
    assert "Disallow: /topic" not in robots  # the subject pages are for search engines too


def test_load_guard_weighs_the_hub_pages():
    from catalog.load import weigh

    def w(path):
        return weigh({"path": path, "query_string": b"q=x"}, {"/demo/resources"})

    assert w("/resource/abc") == "cheap" and w("/suggest-a-source") == "cheap"
    for path in ("/search", "/topic/copyright", "/system/tipasa/feed.atom", "/source/x", "/topics", "/events",
                 "/events/upcoming.ics", "/resource/abc/event.ics", "/sources.opml", "/subscribe"):
        assert w(path) == "heavy", path
    assert w("/topic/copyright/list.csv") == "stream"


@pytest.mark.parametrize("q", ['"', "fair* -use", "NEAR(copyright loan)", "AND OR NOT", "😀 ill", "x" * 300,
                               "copyright\u0000", "rule of 5'; drop table resources;--", "%", "_"])
def test_search_never_errors_on_odd_input(hub, q):
    from urllib.parse import quote

    for path in ("/search", "/search/feed.atom", "/search/list.csv"):
        hub.get(f"{path}?q={quote(q)}")
    hub.get(f"/search?q={quote(q)}&since=not-a-date&until=2026-13-45&sort=bogus&page=-3&when=century")


@pytest.mark.parametrize("path", ["/search?q=lending+workflow", "/search?q=fair+use&type=video", "/topic/copyright",
                                  "/system/tipasa", "/source/demo-northwind-blog"])
def test_a_list_over_the_time_limit_says_so_instead_of_failing(demo_db, path):
    """A list whose query Datasette interrupts (here every query: a limit no query can meet)
    answers 200 with a plain message and the ways to narrow it; its outputs answer 503."""
    c = Client(demo_db)
    c.ds.executor = None  # one connection (Datasette's non-threaded mode), whose full-text table
    try:                  # is opened below, under the usual limit, as a served catalog's long is
        c.get("/search?q=lending")
        c.ds.sql_time_limit_ms = 0.0001  # what Datasette reads its setting into
        r = c.get(path)
        text = visible_text(r.text)
        assert "This search matched too much to finish in time; narrow it by topic, type or date" in text
        links = re.findall(r'<div class="no-results interrupted".*?</div>', r.text, re.DOTALL)[0]
        assert 'href="/topics"' in links
        assert re.search(r'href="[^"]*type=video[^"]*">Videos<', links) or "type=video" in path
        assert re.search(r'href="[^"]*when=year[^"]*">This year<', links.replace("&amp;", "&"))
        assert "0 resources" not in text and "has given 0" not in text
        out = c.get(path.split("?")[0] + "/feed.atom" + (("?" + path.split("?")[1]) if "?" in path else ""), status=503)
        assert "narrow it by topic, type or date" in out.text
    finally:
        c.close()


def test_why_tagged_tells_a_registry_reason_with_or_without_its_source():
    """classify writes "registry topic of source 'x'", or "… of the source" when the id was not
    known; both read as the source giving it to everything (the second was shown raw)."""
    from catalog.cards import why_tagged

    shown = labels.term_labels()
    assert why_tagged('{"copyright": "registry topic of the source", "system:tipasa": "registry system of '
                      "source 'cc'\"}", shown, {"cc": "Curated copyright"}) == [
        {"label": shown["topics"]["copyright"], "why": "every item from its source is given it"},
        {"label": "Tipasa", "why": "every item from Curated copyright is given it"}]
