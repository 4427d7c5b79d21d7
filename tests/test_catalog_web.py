"""The catalog's pages through Datasette's test client, built exactly as `illhub serve` builds them."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import urlencode

import pytest

from catalog import cells, labels, public
from catalog.app import build_metadata, datasette_kwargs, make_datasette
from pipeline.normalize import iso_utc
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, store_batch, sync_sources

NOW = datetime.now(UTC)
RECENT = iso_utc(NOW - timedelta(days=1))
OLD = iso_utc(NOW - timedelta(days=40))

HOSTILE_TITLE = '<script>alert("title")</script> Fair use <img src=x onerror=alert(1)>'
HOSTILE_ORG = '"><script>alert("org")</script>'


def build_catalog(path, *, future_columns: bool = False):
    """A small catalog: two sources, articles, a video, a document, and hostile values."""
    db = open_db(path)
    sync_sources(db, [
        {"id": "blog", "name": "Northwind ILL blog", "kind": "feed", "url": "http://127.0.0.1:9/feed.rss",
         "organization": "Northwind University Libraries"},
        {"id": "tube", "name": "Lakeside on YouTube", "kind": "youtube", "url": "http://127.0.0.1:9/c",
         "organization": "Lakeside Library Consortium"},
    ])
    old = [
        Resource(url="https://blog.example.edu/contu-rule-of-five/", title="Copyright in ILL: the CONTU rule of five",
                 description="How the CONTU guidelines and Section 108 shape borrowing.", content_type="article",
                 published="2026-01-10T09:00:00Z"),
        Resource(url="https://blog.example.edu/statistics/", title="Reading the ILL statistics dashboard",
                 description="Turnaround time and fill rate, with a note on copyright fees.",
                 content_type="article", published="2025-12-01T00:00:00Z"),
    ]
    new = [
        Resource(url="https://blog.example.edu/tipasa-migration/", title="Tipasa and WorldShare ILL: moving our lending workflow",
                 description="What changed in our lending workflow.", content_type="article",
                 published=RECENT),
        Resource(url="https://blog.example.edu/formula/", title="=HYPERLINK(\"http://evil.example/\",\"click\")",
                 description="-2+3 and @SUM(A1) and +1", content_type="document", published=RECENT),
        Resource(url="https://blog.example.edu/hostile/", title="placeholder hostile", description="placeholder",
                 content_type="article", published=RECENT),
    ]
    video = [Resource(url="https://www.youtube.com/watch?v=dEmOvid0002", title="Borrowing 101 in five minutes",
                      description="A short borrowing walkthrough.", content_type="video", published=RECENT,
                      thumbnail="https://i2.ytimg.com/vi/dEmOvid0002/hqdefault.jpg")]
    store_batch(db, Batch("blog", old), organization="Northwind University Libraries", now=OLD)
    store_batch(db, Batch("blog", new), organization="Northwind University Libraries", now=RECENT)
    store_batch(db, Batch("tube", video), organization="Lakeside Library Consortium", now=RECENT)
    # Values no parser should produce, written straight to the table: the pages must stay safe anyway.
    db.execute("update resources set title = ?, description = ?, organization = ?, url = ?, thumbnail = ? "
               "where url = 'https://blog.example.edu/hostile/'",
               [HOSTILE_TITLE, '<img src=x onerror=alert("desc")>', HOSTILE_ORG, "javascript:alert('url')",
                "javascript:alert('thumb')"])
    db.execute("insert into harvest_runs (run_group, source_id, started_at, finished_at, status, items_seen) "
               "values ('g1', 'blog', ?, ?, 'ok', 5)", [RECENT, RECENT])
    if future_columns:
        # what the source-health issue adds to the schema (the event and link-health
        # columns already come with the migrations)
        have = {c.name for c in db["resources"].columns}
        for col in ("starts_at", "ends_at", "location", "event_name", "link_status", "archived_url"):
            if col not in have:
                db.execute(f"alter table resources add column {col} text")
        db.execute("create view if not exists source_health as select id as source_id, name, 'ok' as status from sources")
        store_batch(db, Batch("blog", [Resource(url="https://conf.example.org/2027/keynote",
                                                 title="Keynote: resource sharing after the wiki",
                                                 content_type="event")]), now=RECENT)
        db.execute("update resources set starts_at = ?, location = 'Ballroom A', event_name = 'ILL Summit 2027', "
                   "presenters = ? where url = 'https://conf.example.org/2027/keynote'",
                   [iso_utc(NOW + timedelta(days=30)),
                    json.dumps([{"name": "Jane Doe", "affiliation": "Univ. of X"},
                                {"name": "<script>alert('p')</script>", "affiliation": None}])])
        db.execute("update resources set link_status = 'broken', archived_url = ? where url = ?",
                   ["https://web.archive.org/web/2026/https://blog.example.edu/statistics/",
                    "https://blog.example.edu/statistics/"])
        db.execute("update resources set link_status = 'ok' where link_status = 'unchecked'")
    db.conn.commit()
    db.close()
    return path


class Client:
    """Datasette's test client, driven from synchronous tests on one event loop."""

    def __init__(self, db_path, **options):
        self.loop = asyncio.new_event_loop()
        self.ds = make_datasette(db_path, **options)
        self.name = db_path.stem
        self.run(self.ds.invoke_startup())

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def get(self, path, status=200):
        r = self.run(self.ds.client.get(path))
        assert r.status_code == status, (path, r.status_code, r.text[:500])
        return r

    def close(self):
        self.loop.close()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return build_catalog(tmp_path_factory.mktemp("web") / "catalog.db")


@pytest.fixture(scope="module")
def client(catalog):
    c = Client(catalog)
    yield c
    c.close()


@pytest.fixture(scope="module")
def future_client(tmp_path_factory):
    c = Client(build_catalog(tmp_path_factory.mktemp("future") / "hub.db", future_columns=True))
    yield c
    c.close()


def rid(path, url):
    return sqlite3.connect(path).execute("select id from resources where url = ?", [url]).fetchone()[0]


def assert_safe(html: str) -> None:
    """No harvested markup became markup: only our own tags carry these names."""
    assert "<script>alert" not in html
    assert not re.search(r"<img[^>]*onerror", html)
    assert 'href="javascript:' not in html and "src=\"javascript:" not in html


# ------------------------------------------------------------------ shared construction


def test_serve_and_tests_share_one_construction(catalog):
    kwargs = datasette_kwargs(catalog)
    assert kwargs["files"] == [str(catalog)]
    assert kwargs["template_dir"].endswith("templates") and kwargs["plugins_dir"].endswith("plugins")
    assert kwargs["static_mounts"][0][0] == "static"
    # Datasette's time limits are kept (issue 10 measured them); suggested facets are off
    assert "sql_time_limit_ms" not in kwargs["settings"] and kwargs["settings"]["suggest_facets"] is False
    # the metadata's `illhub` section is filed under the served file's name
    assert "catalog" in kwargs["metadata"]["databases"] and "illhub" not in kwargs["metadata"]["databases"]


# ------------------------------------------------------------------ front page


def test_front_page_for_a_practitioner(client, catalog):
    html = client.get("/").text
    assert '<html lang="en">' in html
    assert '<label for="hub-q">Search the whole catalog</label>' in html
    assert 'action="/search"' in html and 'name="q"' in html  # the hub's search (catalog/hub.py)
    # topic tiles: taxonomy labels and counts from the catalog
    conn = sqlite3.connect(catalog)
    n_copyright = conn.execute("select count(*) from resources, json_each(resources.topics) j "
                               "where j.value = 'copyright'").fetchone()[0]
    assert n_copyright >= 2
    # (they link the topic's page in the hub, which reads the indexed resource_tags, migration m1002)
    tile = re.search(r'href="/topic/copyright"><span class="tile-label">'
                     r'([^<]+)</span>\s*<span class="tile-count">(\d+) resources?</span>', html)
    assert tile and tile.group(1) == labels.term_labels()["topics"]["copyright"] and int(tile.group(2)) == n_copyright
    assert "__arraycontains" not in html
    # new this week: the recent resources, not the ones first seen forty days ago
    new = html.split('id="new-title"')[1].split("</section>")[0]
    assert "Tipasa and WorldShare ILL: moving our lending workflow" in new
    assert "CONTU rule of five" not in new
    # browse by system
    systems = html.split('id="systems-title"')[1].split("</section>")[0]
    assert 'href="/system/tipasa"' in systems and ">Tipasa <" in systems
    # maintainers: only links that exist
    maint = html.split('id="maint-title"')[1].split("</section>")[0]
    assert 'href="/catalog/harvest_health"' in maint and 'href="/-/add-a-source"' in maint
    # source health (migration m0501) and link health (m0601) ship with the schema
    assert 'href="/catalog/source_health"' in maint
    assert 'href="/catalog/broken_links"' in maint and 'href="/catalog/recovered_links"' in maint
    # every catalog has the event columns; this one has no upcoming event
    events = html.split('id="events-title"')[1].split("</section>")[0]
    assert "No upcoming events in the catalog." in events
    assert_safe(html)


def test_front_page_counts_the_sources_that_brought_resources(tmp_path):
    """"N resources from M sources": M counts the sources with resources in the catalog, not the
    registry's every source (one never harvested here)."""
    db = build_catalog(tmp_path / "c.db")
    conn = sqlite3.connect(db)
    conn.execute("insert into sources (id, name, kind, url) values ('never-harvested', 'Never harvested', 'feed', "
                 "'https://never.example.org/feed.xml')")
    conn.commit()
    listed = conn.execute("select count(*) from sources").fetchone()[0]
    feeding = conn.execute("select count(distinct source_id) from resource_sources").fetchone()[0]
    total = conn.execute("select count(*) from resources").fetchone()[0]
    conn.close()
    assert 0 < feeding < listed
    c = Client(db)
    try:
        html = " ".join(c.get("/").text.split())
    finally:
        c.close()
    assert f"{total:,} resources from {feeding} sources." in html


def test_front_page_folds_in_events_link_and_source_health(future_client):
    html = future_client.get("/").text
    events = html.split('id="events-title"')[1].split("</section>")[0]
    assert "Keynote: resource sharing after the wiki" in events and "ILL Summit 2027" in events
    assert "Ballroom A" in events
    maint = html.split('id="maint-title"')[1].split("</section>")[0]
    assert 'href="/hub/source_health"' in maint and 'href="/hub/broken_links"' in maint
    lists = html.split('id="lists-title"')[1].split("</section>")[0]
    assert 'href="/events"' in lists


def test_conditional_queries_follow_the_schema(catalog, future_client):
    plain = build_metadata(catalog)["databases"]["catalog"]["queries"]
    assert "source_health" in plain  # defined in metadata.yml, over the view from migration m0501
    assert "upcoming_events" in plain  # events are part of every catalog (metadata.yml)
    assert {"broken_links", "recovered_links"} <= set(plain)  # link health: in metadata.yml
    html = future_client.get("/hub/upcoming_events").text
    assert "Keynote: resource sharing after the wiki" in html
    # event details on the card; presenters read as names, escaped
    card = html.split('<ol class="cards">')[1]
    assert "ILL Summit 2027" in card and "Ballroom A" in card
    assert "Jane Doe (Univ. of X), &lt;script&gt;alert(&#39;p&#39;)&lt;/script&gt;" in card
    assert_safe(html)
    # the event queries keep their calendar and feed exports, named for people
    cal = future_client.get("/hub/upcoming_events_calendar").text
    assert re.search(r'<a href="/hub/upcoming_events_calendar\.ics">iCal \(calendar\)</a>', cal)
    front = future_client.get("/").text.split('id="subscribe-title"')[1].split("</section>")[0]
    assert 'href="/events/upcoming.ics"' in front and 'href="/search/feed.atom"' in front
    html = future_client.get("/hub/broken_links").text
    assert "Reading the ILL statistics dashboard" in html
    assert 'href="https://web.archive.org/web/2026/https://blog.example.edu/statistics/"' in html
    assert "Link broken" in html and "Archived copy" in html
    assert "Northwind ILL blog" in future_client.get("/hub/source_health").text


# ------------------------------------------------------------------ lists and rows


def test_resources_list_is_cards_with_chips_and_safe_text(client, catalog):
    html = client.get("/catalog/resources").text
    assert '<ol class="cards">' in html
    # the title is the link to the resource itself
    assert re.search(r'<a class="resource-title" href="https://blog.example.edu/tipasa-migration/" rel="[^"]*">'
                     r"Tipasa and WorldShare ILL: moving our lending workflow</a>", html)
    # facet chips for type, organization, source, topics and systems
    assert 'href="/catalog/resources?content_type=video"' in html
    assert 'href="/catalog/resources?organization=Northwind+University+Libraries"' in html
    assert re.search(r'href="/catalog/resources\?source_id=tube"[^>]*>Lakeside on YouTube</a>', html)
    assert 'href="/catalog/resources?_system=tipasa"' in html and "__arraycontains" not in html
    # readable dates and video thumbnails
    assert re.search(r'<time datetime="2026-01-10T09:00:00Z">10 Jan 2026, 09:00 UTC</time>', html)
    assert '<img class="thumb" src="https://i2.ytimg.com/vi/dEmOvid0002/hqdefault.jpg"' in html
    # raw JSON columns are not shown
    h = sqlite3.connect(catalog).execute("select content_hash from resources limit 1").fetchone()[0]
    assert h not in html and "classified_by" not in html.split('<ol class="cards">')[1]
    # hostile text shows as text; a javascript: URL is no link
    assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt; Fair use &lt;img src=x onerror=alert(1)&gt;" in html
    assert unescape(re.search(r'<span class="resource-title">([^<]*)</span>', html).group(1)) == HOSTILE_TITLE
    assert_safe(html)
    # exports stay
    assert re.search(r'href="/catalog/resources\.json[?"]', html) and re.search(r'href="/catalog/resources\.csv\?', html)


def _json_ids(catalog, column, value):
    return sorted(r[0] for r in sqlite3.connect(catalog).execute(
        f"select r.id from resources r, json_each(r.{column}) j where j.value = ?", [value]))


def test_every_topic_and_system_link_shows_exactly_its_resources(client, catalog):
    """The front page's tiles and chips and the cells' chips lead to the resources that carry
    the topic or system, no more and no fewer (by the resources' own JSON)."""
    front = unescape(client.get("/").text)
    table = unescape(client.get("/catalog/resources?_size=max").text)
    links = set(re.findall(r'href="/catalog/resources\?(_topic|_system)=([^"&]+)"', front + table))
    assert {("_topic", "copyright"), ("_system", "tipasa")} <= links and len(links) > 5
    for param, value in sorted(links):
        column = {"_topic": "topics", "_system": "systems"}[param]
        data = client.get(f"/catalog/resources.json?{param}={value}&_size=max&_shape=objects").json()
        assert sorted(r["id"] for r in data["rows"]) == _json_ids(catalog, column, value), (param, value)
        assert data["filtered_table_rows_count"] == len(data["rows"])
        # the HTML page says what it narrowed to and lists the same number of cards
        html = client.get(f"/catalog/resources?{param}={value}&_size=max").text
        assert f"{column} contains &#34;{value}&#34;" in html
        assert html.count('<li class="card') == len(data["rows"]), (param, value)


def test_table_search_and_facets_narrow_together(client):
    html = client.get("/catalog/resources?_search=copyright").text
    assert "CONTU rule of five" in html and "Reading the ILL statistics dashboard" in html
    assert "Tipasa and WorldShare" not in html
    # the topic facet keeps the search when narrowing (by the indexed topic filter, migration m1002)
    assert re.search(r'href="[^"]*_search=copyright[^"]*_topic=[a-z-]+"', html.replace("&amp;", "&"))
    narrowed = client.get("/catalog/resources?_search=copyright&_topic=copyright").text
    assert "CONTU rule of five" in narrowed and 'topics contains &#34;copyright&#34;' in narrowed
    narrowed = client.get("/catalog/resources?_search=copyright&content_type=article&_labels=on").text
    assert "CONTU rule of five" in narrowed
    data = client.get("/catalog/resources.json?_search=copyright&content_type=document&_shape=array").json()
    assert data == []


def test_row_page_for_a_resource(client, catalog):
    url = "https://www.youtube.com/watch?v=dEmOvid0002"
    html = client.get(f"/catalog/resources/{rid(catalog, url)}").text
    assert '<h1 class="resource-heading">Borrowing 101 in five minutes</h1>' in html
    assert re.search(rf'<a class="button-link" href="{re.escape(url)}"[^>]*>Open the resource</a>', html)
    assert '<img class="thumb" src="https://i2.ytimg.com/vi/dEmOvid0002/hqdefault.jpg"' in html
    assert "<dt>Source</dt><dd>" in html and ">Lakeside on YouTube</a>" in html
    assert 'href="/catalog/resources/' in html and ".json" in html  # its own JSON
    # raw fields are folded away, escaped
    assert '<details class="raw-fields">' in html


def test_row_page_of_a_hostile_resource(client, catalog):
    html = client.get(f"/catalog/resources/{rid(catalog, 'javascript:alert(' + chr(39) + 'url' + chr(39) + ')')}").text
    heading = re.search(r'<h1 class="resource-heading">(.*?)</h1>', html).group(1)
    assert unescape(heading) == HOSTILE_TITLE
    assert "Open the resource" not in html  # no http(s) link to open
    assert_safe(html)
    assert "&lt;img src=x onerror=alert(&#34;desc&#34;)&gt;" in html


def test_row_page_shows_link_health_and_archived_copy(future_client):
    conn = sqlite3.connect(future_client.ds.databases["hub"].path)
    r = conn.execute("select id from resources where link_status = 'broken'").fetchone()[0]
    html = future_client.get(f"/hub/resources/{r}").text
    health = html.split('class="resource-link-health"')[1].split("</p>")[0]
    assert "Link broken" in health
    assert 'href="https://web.archive.org/web/2026/https://blog.example.edu/statistics/"' in health


def test_other_tables_hide_raw_json(client):
    html = client.get("/catalog/raw_entries").text
    assert '<th class="col-raw"' not in html and 'data-column="resource_id"' in html
    assert_safe(html)
    html = client.get("/catalog/raw_entries?_col=raw").text
    assert 'data-column="raw"' in html


@pytest.mark.parametrize("path", ["/catalog", "/catalog/sources", "/catalog/harvest_runs",
                                  "/catalog/resource_sources", "/-/add-a-source"])
def test_every_other_page_renders(client, path):
    html = client.get(path).text
    assert "<main id=\"main\"" in html and 'class="skip-link"' in html
    assert_safe(html)


# ------------------------------------------------------------------ search and canned queries


def test_search_ranks_by_relevance_with_matches_and_narrowing(client):
    html = client.get("/catalog/search?q=copyright").text
    cards = re.findall(r'<h3 class="card-title">(.*?)</h3>', html, re.S)
    titles = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cards]
    # a title match ranks above a match in the description only
    assert titles.index("Copyright in ILL: the CONTU rule of five") < titles.index("Reading the ILL statistics dashboard")
    assert "<mark>copyright</mark>" in html  # the match in the description, highlighted
    assert '<label for="search-q">' in html
    # narrowing facets computed for the same matches
    facets = html.split('aria-label="Narrow the results"')[1]
    assert 'href="/catalog/search?q=copyright&amp;content_type=article"' in facets
    narrowed = client.get("/catalog/search?q=copyright&topic=reports").text
    assert "Reading the ILL statistics dashboard" in narrowed and "CONTU rule of five" not in narrowed
    assert "Narrowed to:" in narrowed and 'href="/catalog/search?q=copyright"' in narrowed
    # exports and the way to the table view
    assert 'href="/catalog/search.json?q=copyright"' in html and 'href="/catalog/search.csv?q=copyright' in html
    assert 'href="/catalog/resources?_search=copyright"' in html
    # narrowed by a topic, the way to the table keeps the topic (the indexed filter) and shows the same rows
    assert 'href="/catalog/resources?_search=copyright&amp;_topic=reports"' in narrowed
    table = client.get("/catalog/resources.json?_search=copyright&_topic=reports&_shape=array").json()
    assert [r["title"] for r in table] == ["Reading the ILL statistics dashboard"]
    data = client.get("/catalog/search.json?q=copyright&_shape=array").json()
    ranks = [row["rank"] for row in data]
    assert ranks == sorted(ranks) and data[0]["title"] == "Copyright in ILL: the CONTU rule of five"


@pytest.mark.parametrize("q", ["", '"', "AND(", "borrowing 101"])
def test_search_never_errors_on_odd_input(client, q):
    html = client.get("/catalog/search?" + "q=" + q.replace('"', "%22").replace(" ", "+")).text
    assert "message-error" not in html


def test_search_snippet_escapes_harvested_text(client):
    html = client.get("/catalog/search?q=onerror").text
    assert "<mark>onerror</mark>" in html
    assert_safe(html)


def test_every_canned_query_renders(client, future_client):
    for c in (client, future_client):
        queries = c.run(c.ds.get_canned_queries(c.name, None))
        assert {"search", "new_this_week", "videos", "copyright_and_fair_use", "by_topic", "harvest_health"} <= set(queries)
        for name, q in queries.items():
            assert q.get("title") and q.get("description"), name
            html = c.get(f"/{c.name}/{name}?q=borrowing&topic=copyright").text
            assert "message-error" not in html, name
            assert f'href="/{c.name}/{name}.json' in html or "Nothing to show" in html, name
            assert_safe(html)
    html = client.get("/catalog/copyright_and_fair_use").text
    assert "CONTU rule of five" in html and "Tipasa" not in html.split('<ol class="cards">')[1]
    html = client.get("/catalog/videos").text
    assert "Borrowing 101 in five minutes" in html and "CONTU" not in html.split('<ol class="cards">')[1]



@pytest.mark.parametrize("written", ["Copyright and fair use", "copyright AND fair use", "fair use"])
def test_resources_by_topic_reads_the_name_the_front_page_shows(client, written):
    """Issue 17: the "Resources by topic" query wanted the internal id (copyright); a visitor
    types the name shown on the front page, or a word for the topic."""
    def titles(topic: str) -> list[str]:
        query = urlencode({"topic": topic, "_shape": "array"})
        return [r["title"] for r in client.get(f"/catalog/by_topic.json?{query}").json()]

    by_id = titles("copyright")
    assert by_id and "Copyright in ILL: the CONTU rule of five" in by_id
    assert titles(written) == by_id
    assert titles("no such topic") == []


# ------------------------------------------------------------------ rendering helpers


def test_http_url_accepts_only_http_and_https():
    assert labels.http_url("https://example.org/a?b=1") == "https://example.org/a?b=1"
    for bad in ("javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x", "//evil.example/",
                "http:///nohost", "https://exa mple.org/", "ftp://example.org/f", None, 42, "mailto:a@b"):
        assert labels.http_url(bad) is None, bad


def test_render_cell_escapes_and_cleans():
    def render(column, value, row=None):
        return cells.render_cell(row=row or {}, value=value, column=column, table="resources", database="d",
                                 table_url=lambda t: f"/d/{t}")

    out = render("title", "<b onmouseover=x>Hi</b>", {"url": "https://example.org/", "title": "x"})
    assert out == ('<a class="resource-title" href="https://example.org/" rel="noopener noreferrer nofollow">'
                   "&lt;b onmouseover=x&gt;Hi&lt;/b&gt;</a>")
    assert "href" not in render("title", "T", {"url": "javascript:alert(1)"})
    assert render("topics", '["copyright", "<i>x</i>"]').count('class="chip chip-topics"') == 2
    assert "&lt;i&gt;x&lt;/i&gt;" in render("topics", '["<i>x</i>"]')
    assert render("published", "2026-11-23T00:00:00Z") == '<time datetime="2026-11-23T00:00:00Z">23 Nov 2026</time>'
    assert render("thumbnail", "javascript:alert(1)") == '<span class="not-a-link">javascript:alert(1)</span>'
    assert render("description", "<script>") is None  # Datasette's own escaping handles plain text


def test_nh3_allowlist_is_the_last_word():
    assert cells.clean_html('<a href="javascript:alert(1)" onclick="x">a</a>') == '<a rel="noopener noreferrer nofollow">a</a>'
    assert cells.clean_html("<script>alert(1)</script><mark>ok</mark>") == "<mark>ok</mark>"
    assert cells.clean_html('<img src="https://i.example/a.jpg" onerror="x">') == '<img src="https://i.example/a.jpg">'
    assert str(cells.snippet_html("a \ue000<b>\ue001 c")) == "a <mark>&lt;b&gt;</mark> c"


def test_readable_dates():
    assert labels.readable_date("2026-11-23T19:00:00Z") == "23 Nov 2026, 19:00 UTC"
    assert labels.readable_date("2026-11-23T00:00:00Z") == "23 Nov 2026"
    assert labels.readable_date("not a date") is None


# ------------------------------------------------------------------ CSV guard


def csv_rows(text):
    return list(csv.reader(io.StringIO(text)))


def test_csv_exports_neutralize_formula_cells(client):
    text = client.get("/catalog/resources.csv?_size=max").text
    rows = csv_rows(text)
    header = rows[0]
    byurl = {r[header.index("url")]: r for r in rows[1:]}
    formula = byurl["https://blog.example.edu/formula/"]
    assert formula[header.index("title")] == "'=HYPERLINK(\"http://evil.example/\",\"click\")"
    assert formula[header.index("description")] == "'-2+3 and @SUM(A1) and +1"
    # every other view's CSV too: canned queries, streamed exports, ?_format=csv
    for path in ("/catalog/new_this_week.csv", "/catalog/resources.csv?_stream=on",
                 "/catalog/resources.csv?_dl=on", "/catalog/new_this_week?_format=csv"):
        for row in csv_rows(client.get(path).text)[1:]:
            assert not any(cell[:1] in ("=", "+", "-", "@") and not re.fullmatch(r"[+-]?\d+(\.\d+)?", cell)
                           for cell in row), (path, row)
    assert any("'=HYPERLINK" in cell for row in csv_rows(client.get("/catalog/resources.csv?_stream=on").text)
               for cell in row)


def test_csv_rewriter_handles_any_chunking():
    source = ('a,b,c\r\n"=1+2","multi\r\nline ""quoted""",-5\r\n@x,é€,"+y"\r\n'
              + "".join(f"r{i},=cmd|' /C calc'!A0,{i}\r\n" for i in range(50))).encode("utf-8")
    expected = public.CsvRewriter().feed(source, final=True)
    assert csv_rows(expected.decode())[1] == ["'=1+2", 'multi\r\nline "quoted"', "-5"]
    assert csv_rows(expected.decode())[2] == ["'@x", "é€", "'+y"]
    for size in (1, 2, 3, 7, 64):
        w = public.CsvRewriter()
        out = b"".join(w.feed(source[i:i + size]) for i in range(0, len(source), size)) + w.feed(b"", final=True)
        assert out == expected, size


# ------------------------------------------------------------------ the public profile


def test_public_profile(catalog):
    c = Client(catalog, public=True)
    try:
        from datasette.app import DEFAULT_SETTINGS

        assert c.ds.setting("sql_time_limit_ms") == DEFAULT_SETTINGS["sql_time_limit_ms"]
        assert c.ds.setting("facet_time_limit_ms") == DEFAULT_SETTINGS["facet_time_limit_ms"]
        # arbitrary SQL is off; canned queries still work
        c.get("/catalog?sql=select+1", status=403)
        c.get("/catalog.json?sql=select+1", status=403)
        assert "CONTU" in c.get("/catalog/search?q=contu").text
        # no download of the database file
        c.get("/catalog.db", status=403)
        assert 'href="/catalog.db"' not in c.get("/catalog").text
        # read-only: the connections Datasette queries with cannot write
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            c.run(c.ds.get_database("catalog").execute("delete from resources"))
        # robots: people's pages may be indexed, exports and SQL may not
        robots = c.get("/robots.txt").text
        assert "Disallow: /*.csv" in robots and "Disallow: /*?sql=" in robots and "Disallow: /\n" not in robots
        assert "View and edit SQL" not in c.get("/catalog/resources").text
    finally:
        c.close()


def test_public_profile_options(catalog):
    c = Client(catalog, public=True, allow_sql=True, allow_download=True, immutable=True, robots="block")
    try:
        assert c.ds.databases["catalog"].is_mutable is False
        assert c.get("/catalog.json?sql=select+count(*)+as+n+from+resources&_shape=array").json()[0]["n"] >= 6
        assert c.get("/catalog.db").content.startswith(b"SQLite format 3")
        assert c.get("/robots.txt").text == "User-agent: *\nDisallow: /\n"
    finally:
        c.close()


def test_local_profile_allows_sql_and_robots(client):
    assert client.get("/catalog.json?sql=select+1+as+one&_shape=array").json() == [{"one": 1}]
    assert client.get("/robots.txt").text == "User-agent: *\nDisallow:\n"


def test_public_profile_drops_writing_canned_queries(catalog, tmp_path, monkeypatch):
    from catalog import app as serve

    meta = tmp_path / "metadata.yml"
    meta.write_text(serve.METADATA.read_text(encoding="utf-8") + (
        "      purge:\n        title: Purge\n        description: d\n        write: true\n"
        "        sql: delete from resources\n"), encoding="utf-8")
    monkeypatch.setattr(serve, "METADATA", meta)
    assert "purge" in build_metadata(catalog)["databases"]["catalog"]["queries"]
    assert "purge" not in build_metadata(catalog, public=True)["databases"]["catalog"]["queries"]


def test_cli_serve_rejects_public_only_options(catalog):
    from tests.conftest import run_cli

    r = run_cli("serve", "--db", str(catalog), "--allow-sql", "--port", "1")
    assert r.returncode == 2 and "only apply with --public" in r.stderr
    r = run_cli("serve", "--db", str(catalog), "--public", "--allow-download", "--port", "1")
    assert r.returncode == 2 and "--allow-download needs --immutable" in r.stderr


def test_event_cards_in_the_table_view(future_client):
    html = future_client.get("/hub/resources?content_type=event").text
    card = html.split('<ol class="cards">')[1]
    event = card.split('<p class="card-event">')[1].split("</p>")[0]
    assert "ILL Summit 2027" in event and "Ballroom A" in event and "Jane Doe (Univ. of X)" in event
    assert "&lt;script&gt;" in event
    assert_safe(html)


def test_serve_brings_an_old_catalog_up_to_date(tmp_path):
    from catalog.app import prepare_catalog

    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    conn.execute("create table unrelated (x)")  # a catalog file from before any migration ran
    conn.close()
    prepare_catalog(old)
    c = Client(old)
    try:
        cols = {r[1] for r in sqlite3.connect(old).execute("pragma table_info(resources)")}
        assert {"link_status", "starts_at", "classified_by"} <= cols
        assert "message-error" not in c.get("/old/search?q=copyright").text
    finally:
        c.close()
