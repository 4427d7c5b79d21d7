"""Fetch only what changed: validators sent back verbatim, 304s and unchanged bodies cost no
parsing and no writes, max-age is honoured, a 429 with Retry-After is not hammered."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from tests.conftest import run_cli
from tests.server import RSS, registry_yaml, rss

ETAG = 'W/"feed-v1-\u00e9"'.encode("utf-8").decode("latin-1")  # weak, quoted, a non-ASCII byte: kept verbatim
LAST_MODIFIED = "Tue, 24 Nov 2026 08:00:00 GMT"

ITEMS = [("a", "Alpha", "Mon, 23 Nov 2026 10:00:00 GMT"), ("b", "Bravo", "Sun, 22 Nov 2026 10:00:00 GMT")]


def harvest(registry, db, *extra):
    return run_cli("harvest", "--registry", str(registry), "--db", str(db), "--delay", "0.005", "--quiet", *extra)


def test_second_harvest_fetches_only_what_changed(server, tmp_path):
    feeds = {
        "etag": dict(etag=ETAG),
        "lm": dict(last_modified=LAST_MODIFIED),
        "both": dict(etag='"both-1"', last_modified=LAST_MODIFIED),
        "neither": dict(),
        "fresh": dict(headers={"Cache-Control": "public, max-age=3600"}),
    }
    for name, kw in feeds.items():
        server.add(f"/{name}.rss", rss([(f"{name}-{s}", f"{name} {t}", d) for s, t, d in ITEMS]), RSS, **kw)
    server.add("/limited.rss", b"slow down", RSS, status=429, headers={"Retry-After": "7200"})
    busy_until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    server.add("/busy.rss", b"maintenance", RSS, status=503,
               headers={"Retry-After": format_datetime(busy_until, usegmt=True)})
    registry = tmp_path / "registry.yaml"
    registry.write_text(registry_yaml(server.base, [(f"src-{n}", f"/{n}.rss")
                                                    for n in [*feeds, "limited", "busy"]]))
    db = tmp_path / "catalog.db"

    first = harvest(registry, db)
    assert first.returncode == 1, first.stderr  # src-limited failed
    conn = sqlite3.connect(db)
    assert conn.execute("select count(*) from resources").fetchone()[0] == 10
    for name in feeds:
        hits = server.hits(f"/{name}.rss")
        assert [(h.status, h.if_none_match, h.if_modified_since) for h in hits] == [(200, None, None)]
    # 429 with Retry-After: asked once (no immediate retries), the next attempt honours it
    assert [h.status for h in server.hits("/limited.rss")] == [429]
    status, error, next_attempt = conn.execute(
        "select status, error, next_attempt from harvest_runs where source_id = 'src-limited'").fetchone()
    assert status == "failed" and "HTTP 429" in error and "retry after" in error
    wait = datetime.fromisoformat(next_attempt) - datetime.now(UTC)
    assert timedelta(minutes=110) < wait <= timedelta(hours=2)  # Retry-After (2 h) beats the 1 h backoff
    # 503 is normally retried at once; with Retry-After (an HTTP date) it is not, and the date is kept
    assert [h.status for h in server.hits("/busy.rss")] == [503]
    assert conn.execute("select next_attempt from harvest_runs where source_id = 'src-busy'").fetchone()[0] == (
        busy_until.strftime("%Y-%m-%dT%H:%M:%SZ"))
    before = conn.execute("select id, last_seen, last_changed, status from resources order by id").fetchall()
    raw_before = conn.execute("select resource_id, fetched_at from raw_entries order by 1").fetchall()
    sizes = {n: server.hits(f"/{n}.rss")[0].body_bytes for n in feeds}
    server.clear()

    second = harvest(registry, db)
    assert second.returncode == 0, second.stdout + second.stderr
    # validators went back verbatim; the server answered 304 with no body
    assert [(h.status, h.if_none_match, h.if_modified_since, h.body_bytes) for h in server.hits("/etag.rss")] == [
        (304, ETAG, None, 0)]
    assert [(h.status, h.if_none_match, h.if_modified_since, h.body_bytes) for h in server.hits("/lm.rss")] == [
        (304, None, LAST_MODIFIED, 0)]
    assert [(h.status, h.if_none_match, h.if_modified_since) for h in server.hits("/both.rss")] == [
        (304, '"both-1"', LAST_MODIFIED)]
    # no validators: the whole body comes again, but its hash says it is unchanged
    assert [(h.status, h.body_bytes) for h in server.hits("/neither.rss")] == [(200, sizes["neither"])]
    # still fresh per max-age: not asked at all; the source in backoff: skipped, not asked
    assert server.hits("/fresh.rss") == [] and server.hits("/limited.rss") == [] and server.hits("/busy.rss") == []
    # nothing parsed, nothing written but the check
    assert conn.execute("select id, last_seen, last_changed, status from resources order by id").fetchall() == before
    assert conn.execute("select resource_id, fetched_at from raw_entries order by 1").fetchall() == raw_before
    runs = {r[0]: r[1:] for r in conn.execute(
        "select source_id, status, documents, documents_unchanged, items_seen from harvest_runs "
        "where id > (select max(id) from harvest_runs) - 7")}
    for name in feeds:
        assert runs[f"src-{name}"] == ("ok", 1, 1, 0), name
    skipped = conn.execute("select status, next_attempt, warning from harvest_runs where source_id = 'src-limited' "
                           "order by id desc limit 1").fetchone()
    assert skipped[0] == "skipped" and skipped[1] == next_attempt and "backing off" in skipped[2]
    checked = dict(conn.execute("select url, checked_at from fetch_cache"))
    assert len(checked) == 5
    server.clear()

    # the feeds change: new validators, a new item; the unchanged ones stay 304
    new_items = [("c", "Charlie", "Wed, 25 Nov 2026 10:00:00 GMT"), *ITEMS]
    server.add("/etag.rss", rss([(f"etag-{s}", f"etag {t}", d) for s, t, d in new_items]), RSS, etag='"feed-v2"')
    server.add("/neither.rss", rss([(f"neither-{s}", f"neither {t}", d) for s, t, d in new_items]), RSS)
    third = harvest(registry, db, "--source", "src-etag", "--source", "src-neither", "--source", "src-both")
    assert third.returncode == 0, third.stdout + third.stderr
    assert [h.status for h in server.hits("/etag.rss")] == [200]
    assert [h.status for h in server.hits("/both.rss")] == [304]
    urls = {r[0] for r in conn.execute("select url from resources")}
    assert {"https://ill.example.org/etag-c/", "https://ill.example.org/neither-c/"} <= urls
    etag, follow = conn.execute("select etag, follow from fetch_cache where url like '%/etag.rss'").fetchone()
    assert etag == '"feed-v2"' and json.loads(follow) == []


def test_refetch_ignores_the_cache_and_force_ignores_freshness(server, tmp_path):
    server.add("/feed.rss", rss([(s, t, d) for s, t, d in ITEMS]), RSS, etag='"x"',
               headers={"Cache-Control": "max-age=600"})
    registry = tmp_path / "registry.yaml"
    registry.write_text(registry_yaml(server.base, [("src-feed", "/feed.rss")]))
    db = tmp_path / "catalog.db"
    assert harvest(registry, db).returncode == 0
    assert harvest(registry, db, "--force").returncode == 0  # fresh, but --force asks: 304
    assert harvest(registry, db, "--refetch").returncode == 0  # no validators: 200, parsed again
    assert [(h.status, h.if_none_match) for h in server.hits("/feed.rss")] == [(200, None), (304, '"x"'), (200, None)]
    conn = sqlite3.connect(db)
    assert [r[0] for r in conn.execute("select documents_unchanged from harvest_runs order by id")] == [0, 1, 0]


def test_an_unchanged_page_still_leads_to_its_follow_up_requests(demo_server, demo_registry_file, tmp_path):
    """The demo's @handle page is fetched to find the channel feed: when the page is
    unchanged, its feed is still requested (and is itself recognised as unchanged)."""
    db = tmp_path / "catalog.db"
    for _ in range(2):
        harvest(demo_registry_file, db, "--source", "demo-prairie-youtube", "--source", "demo-northwind-blog")
    paths = [p for p in demo_server.targets() if p != "/robots.txt"]
    assert paths.count("/@prairiestatelibrarydemo") == 2
    assert sum(p.startswith("/feeds/videos.xml?channel_id=") for p in paths) == 2
    conn = sqlite3.connect(db)
    runs = conn.execute("select source_id, status, documents, documents_unchanged, items_seen from harvest_runs "
                        "order by id").fetchall()
    first, second = runs[:2], runs[2:]
    assert sorted(first) == [("demo-northwind-blog", "ok", 1, 0, 6), ("demo-prairie-youtube", "ok", 2, 0, 1)]
    assert sorted(second) == [("demo-northwind-blog", "ok", 1, 1, 0), ("demo-prairie-youtube", "ok", 2, 2, 0)]
    follow = conn.execute("select follow from fetch_cache where url like '%/@prairiestatelibrarydemo'").fetchone()[0]
    assert json.loads(follow) == [{"url": f"{demo_server.base}/feeds/videos.xml?channel_id=UCdemoPrairieStateLib001"}]
