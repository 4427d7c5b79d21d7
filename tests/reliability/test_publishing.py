"""Publishing what hostile sources sent: harvested markup, script links and spreadsheet
formulas stay inert in Datasette's pages and in every export; the public profile bounds
expensive SQL, refuses writes and rejects cross-site POSTs.

Unlike tests/test_catalog_web.py (hostile rows written straight into a catalog), the
content here goes the whole way: fault server → harvest → catalog → pages and exports.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import time

import pytest

from tests.conftest import run_cli
from tests.reliability.helpers import DatasetteClient, feed_source, harvest, runs, write_registry
from tests.server import StubServer, ok

HOSTILE_ITEMS = """
<item><title>&lt;script&gt;alert("t1")&lt;/script&gt;Fair use and ILL</title><link>{base}/fair-use</link>
  <description>&lt;img src=x onerror=alert("d1")&gt;&lt;a href="javascript:alert('a1')"&gt;click&lt;/a&gt; Copyright notes</description>
  <author>&lt;svg onload=alert("au")&gt;Mallory</author><category>&lt;script&gt;alert("cat")&lt;/script&gt;</category></item>
<item><title>=HYPERLINK("http://evil.example/","click me")</title><link>{base}/formula</link>
  <description>@SUM(1+1)*cmd|' /C calc'!A0</description></item>
<item><title>+1 lending and -2 borrowing</title><link>{base}/plus-minus</link><description>-cmd</description></item>
<item><title>Script link</title><link>javascript:alert("link")</link></item>
<item><title>Frame</title><link>{base}/frame</link>
  <content:encoded><![CDATA[<iframe src="javascript:alert('f')"></iframe><p onclick="alert(1)">Borrowing</p>
  <script>alert("cdata")</script><style>body{{display:none}}</style>]]></content:encoded></item>
<item><title>&amp;lt;script&amp;gt;alert("double")&amp;lt;/script&amp;gt; Lending</title><link>{base}/double</link></item>
<item><title>Reversed \u202egnp.exe title</title><link>{base}/bidi</link></item>
"""


def hostile_feed(base: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
            f'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Hostile</title>'
            f"<link>{base}/</link>{HOSTILE_ITEMS.format(base=base)}</channel></rss>").encode()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("publishing")
    with StubServer("127.0.0.41") as server:
        server.route("/feed.xml", ok(hostile_feed(server.base)))
        registry = write_registry(tmp / "registry.yaml", [feed_source("hostile", server.url("/feed.xml"))])
        db = tmp / "catalog.db"
        result = harvest(registry, db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert runs(db)["hostile"]["status"] == "warning"  # the javascript: link was refused and counted
    return db


Client = DatasetteClient


@pytest.fixture(scope="module")
def client(catalog):
    c = Client(catalog)
    yield c
    c.close()


def assert_inert(html: str) -> None:
    """No harvested markup became markup, no harvested link became a script link."""
    lowered = html.lower()
    assert "<script>alert" not in lowered
    assert not re.search(r"<(img|svg|iframe|p|a)\b[^>]*\s(onerror|onload|onclick)\s*=", lowered)
    assert not re.search(r"""(href|src)\s*=\s*["']?\s*javascript:""", lowered)
    assert "<iframe" not in lowered
    assert "\u202e" not in html


def test_stored_values_are_plain_text(catalog):
    conn = sqlite3.connect(catalog)
    rows = conn.execute("select url, title, description, author from resources order by url").fetchall()
    assert len(rows) == 6  # the javascript: link was never stored
    for url, title, description, author in rows:
        assert url.startswith("http://127.0.0.41:")
        for value in (title, description, author or ""):
            assert "javascript:" not in value.lower() and "onerror" not in value.lower(), value
            assert not re.search(r"<\s*/?\s*[a-z]", value, re.I), value
            assert "\u202e" not in value
    titles = {url.rsplit("/", 1)[1]: title for url, title, _, _ in rows}
    assert titles["fair-use"] == "Fair use and ILL"
    assert titles["formula"] == '=HYPERLINK("http://evil.example/","click me")'  # kept as text; exports defuse it
    assert titles["bidi"] == "Reversed gnp.exe title"


def test_datasette_pages_render_harvested_content_inert(client, catalog):
    ids = [r[0] for r in sqlite3.connect(catalog).execute("select id from resources")]
    name = client.name
    pages = ["/", f"/{name}", f"/{name}/resources", f"/{name}/resources?_search=alert",
             f"/{name}/resources?_search=script", f"/{name}/harvest_runs", f"/{name}/raw_entries",
             f"/{name}/resource_sources", f"/{name}/search?q=alert", f"/{name}/new_this_week"]
    pages += [f"/{name}/resources/{i}" for i in ids]
    for path in pages:
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert_inert(r.text)
    # the harvested text is there, escaped, not dropped
    assert "Fair use and ILL" in client.get(f"/{name}/resources").text


def _formula_cells(rows: list[list[str]]) -> list[str]:
    return [cell for row in rows for cell in row
            if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not re.fullmatch(r"[+-]?\d+(\.\d+)?", cell)]


def test_csv_exports_are_inert(client, catalog, tmp_path):
    name = client.name
    for path in (f"/{name}/resources.csv?_size=max", f"/{name}/resources.csv?_stream=on",
                 f"/{name}/new_this_week.csv", f"/{name}/raw_entries.csv"):
        text = client.get(path).text
        rows = list(csv.reader(io.StringIO(text)))
        assert len(rows) > 1, path
        assert _formula_cells(rows) == [], path
    assert "'=HYPERLINK" in client.get(f"/{name}/resources.csv?_size=max").text
    out = tmp_path / "export.csv"
    r = run_cli("export", "--db", str(catalog), "--format", "csv", "--out", str(out))
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 7 and _formula_cells(rows) == []
    assert any(cell == "'+1 lending and -2 borrowing" for row in rows for cell in row)


def test_json_exports_are_served_as_json(client):
    r = client.get(f"/{client.name}/resources.json?_shape=array")
    assert r.headers["content-type"].startswith("application/json")
    assert len(r.json()) == 6


# -- the public profile ---------------------------------------------------------------------

EXPENSIVE = "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c"


@pytest.fixture(scope="module")
def public(catalog):
    c = Client(catalog, public=True)
    yield c
    c.close()


def test_public_profile_refuses_arbitrary_sql(public):
    for sql in (EXPENSIVE, "select 1"):
        assert public.get(f"/{public.name}.json", params={"sql": sql}).status_code == 403
    # a statement that is not a SELECT is turned away even before the permission check
    assert public.get(f"/{public.name}.json", params={"sql": "delete from resources"}).status_code == 400


def test_expensive_sql_hits_the_time_limit(catalog):
    c = Client(catalog, public=True, allow_sql=True)  # the public profile with SQL switched back on
    try:
        limit_ms = c.ds.setting("sql_time_limit_ms")
        start = time.monotonic()
        r = c.get(f"/{c.name}.json", params={"sql": EXPENSIVE})
        elapsed = time.monotonic() - start
        assert r.status_code == 400 and "SQL query took too long" in r.text
        assert elapsed < limit_ms / 1000 + 10, elapsed  # interrupted, not run to the end (it never ends)
        # the server is still answering afterwards
        assert c.get(f"/{c.name}/resources.json").status_code == 200
    finally:
        c.close()


def test_public_profile_refuses_writes(catalog, public):
    before = sqlite3.connect(catalog).execute("select count(*) from resources").fetchone()[0]
    c = Client(catalog, public=True, allow_sql=True)
    try:
        for sql in ("delete from resources", "insert into sources (id, name, kind) values ('x', 'x', 'feed')",
                    "update resources set title = 'owned'", "drop table resources", "attach database 'x.db' as x",
                    "pragma writable_schema = 1"):
            r = c.get(f"/{c.name}.json", params={"sql": sql})
            assert r.status_code in (400, 403), (sql, r.status_code)
    finally:
        c.close()
    for path in (f"/{public.name}/resources", f"/{public.name}", f"/{public.name}/-/query"):
        r = public.post(path, data={"sql": "delete from resources"})
        assert r.status_code >= 400, (path, r.status_code)
    assert sqlite3.connect(catalog).execute("select count(*) from resources").fetchone()[0] == before


def test_cross_site_posts_are_rejected(public):
    # A browser on another site posting with the visitor's cookies, without Datasette's CSRF token.
    for path in (f"/{public.name}/new_this_week", f"/{public.name}/search", "/-/messages"):
        r = public.post(path, data={"message": "owned", "message_type": "1"},
                        cookies={"ds_actor": "x", "ds_messages": "x"},
                        headers={"Origin": "http://evil.example", "Referer": "http://evil.example/page"})
        assert r.status_code in (403, 405), (path, r.status_code)
        if r.status_code == 403:
            assert "did not match cookie" in r.text or "csrf" in r.text.lower() or "forbidden" in r.text.lower()
