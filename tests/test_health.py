"""Forgiving with failing sources: backoff, attention, recovery; stale marking that never
deletes and never mistakes a feed window or an unchanged document for a missing entry."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from harvesters.spider import SourceState
from pipeline.health import (
    ATTENTION_AFTER,
    BACKOFF_CAP,
    SourceHealth,
    after_run,
    backoff_delay,
    in_backoff,
    load_health,
    mark_missed,
    save_health,
)
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, start_run, store_batch, sync_sources
from tests.conftest import run_cli
from tests.server import RSS, registry_yaml, rss

T0 = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)


def test_backoff_doubles_from_one_hour_and_is_capped_at_two_days():
    assert [backoff_delay(n) for n in range(0, 9)] == [
        timedelta(0), timedelta(hours=1), timedelta(hours=2), timedelta(hours=4), timedelta(hours=8),
        timedelta(hours=16), timedelta(hours=32), BACKOFF_CAP, BACKOFF_CAP]
    assert backoff_delay(10_000) == BACKOFF_CAP == timedelta(days=2)


def test_failures_count_flag_attention_and_one_success_resets():
    h = SourceHealth("s")
    for i in range(1, ATTENTION_AFTER + 2):
        start = T0 + timedelta(days=i)
        h = after_run(h, "failed", started_at=start, finished_at=start + timedelta(seconds=5), error=f"HTTP 500 #{i}")
        assert h.consecutive_failures == i
        assert h.needs_attention is (i >= ATTENTION_AFTER)
        assert h.next_attempt == (start + backoff_delay(i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert h.last_error == f"HTTP 500 #{i}"
    # deferred (robots.txt unreachable) and interrupted runs change no counter
    assert after_run(h, "deferred", started_at=T0, finished_at=T0).consecutive_failures == ATTENTION_AFTER + 1
    assert after_run(h, "interrupted", started_at=T0, finished_at=T0) == h
    ok = after_run(h, "warning", started_at=T0, finished_at=T0 + timedelta(minutes=1))
    assert (ok.consecutive_failures, ok.needs_attention, ok.next_attempt) == (0, False, None)
    assert ok.last_success == "2026-11-20T07:01:00Z" and ok.last_error == "HTTP 500 #4"  # kept for the record


def test_retry_after_beats_a_shorter_backoff_but_not_a_longer_one():
    h = after_run(SourceHealth("s"), "failed", started_at=T0, finished_at=T0, retry_after=T0 + timedelta(hours=3))
    assert h.next_attempt == "2026-11-20T10:00:00Z"
    h = after_run(SourceHealth("s", consecutive_failures=6), "failed", started_at=T0, finished_at=T0,
                  retry_after=T0 + timedelta(minutes=5))
    assert h.next_attempt == (T0 + BACKOFF_CAP).strftime("%Y-%m-%dT%H:%M:%SZ")
    d = after_run(SourceHealth("s"), "deferred", started_at=T0, finished_at=T0, retry_after=T0 + timedelta(hours=1))
    assert d.next_attempt == "2026-11-20T08:00:00Z" and d.consecutive_failures == 0


def test_in_backoff_allows_a_schedule_that_fires_just_before_the_next_attempt():
    h = SourceHealth("s", consecutive_failures=7, next_attempt="2026-11-22T07:00:05Z")
    assert in_backoff(h, datetime(2026, 11, 21, 7, 0, tzinfo=UTC))
    assert not in_backoff(h, datetime(2026, 11, 22, 7, 0, tzinfo=UTC))  # nightly at 07:00, 5 s early: runs
    assert not in_backoff(None, T0) and not in_backoff(SourceHealth("s"), T0)


def test_health_round_trips_through_the_database():
    db = open_db(":memory:")
    h = SourceHealth("s", consecutive_failures=3, last_error="boom", next_attempt="2026-11-21T00:00:00Z",
                     needs_attention=True)
    save_health(db, h, T0)
    assert load_health(db) == {"s": h}
    assert load_health(db, []) == {}


# -- stale --------------------------------------------------------------------------------

def _db():
    db = open_db(":memory:")
    sync_sources(db, [{"id": s, "name": s, "kind": "feed", "url": f"https://{s}.example.org/feed"}
                      for s in ("blog", "other")])
    return db


def _run(db, source, slugs, *, windowed=False, complete=True):
    """One successful run of ``source`` listing ``slugs`` (slug → day of November)."""
    run_id = start_run(db, source, "g", "2026-11-28T00:00:00Z")
    resources = [Resource(url=f"https://ill.example.org/{slug}/", title=f"Post {slug}",
                          published=f"2026-11-{day:02d}T00:00:00Z", content_type="article")
                 for slug, day in slugs.items()]
    store_batch(db, Batch(source, resources, url=f"https://{source}.example.org/feed"), run_id=run_id)
    if complete:
        mark_missed(db, source, run_id, windowed=windowed)
    return run_id


def _status(db):
    return {url.removeprefix("https://ill.example.org/").strip("/"): status
            for url, status in db.execute("select url, status from resources")}


def test_a_resource_becomes_stale_after_three_complete_runs_without_it_and_active_when_seen():
    db = _db()
    _run(db, "blog", {"a": 1, "b": 2, "c": 3})
    for n in range(1, 4):
        _run(db, "blog", {"a": 1, "b": 2})
        assert _status(db)["c"] == ("stale" if n == 3 else "active"), n
    assert db.execute("select count(*) from resources").fetchone()[0] == 3  # never deleted
    _run(db, "blog", {"a": 1, "b": 2, "c": 3})
    assert _status(db)["c"] == "active"
    assert db.execute("select missed_runs from resource_sources where resource_id = "
                      "(select id from resources where url like '%/c/')").fetchone()[0] == 0


def test_empty_failed_or_unchanged_runs_do_not_count_towards_stale():
    db = _db()
    _run(db, "blog", {"a": 1, "b": 2})
    for _ in range(5):
        _run(db, "blog", {}, complete=True)  # returned nothing: no window, nothing counted
        _run(db, "blog", {"a": 1}, complete=False)  # the runner never calls mark_missed for these
    assert set(_status(db).values()) == {"active"}
    state = SourceState(source=None, run_id=1, documents=1, unchanged=1, seen=0, start_finished=True, done=True)
    assert state.status == "ok" and not state.complete  # a 304 is a success, but not a run "without it"
    state.unchanged = 0
    assert not state.complete  # listed nothing
    state.seen = 2
    assert state.complete
    state.errors.append("https://x/page-2: HTTP 500")
    assert not state.complete  # one page of a multi-page listing failed


def test_an_entry_that_falls_out_of_a_feed_window_is_not_stale_but_one_removed_from_it_is():
    db = _db()
    _run(db, "blog", {"old": 1, "mid": 10, "removed": 20, "new": 25}, windowed=True)
    for _ in range(3):
        # the window moved on: 'old' fell out of it; 'removed' is newer than the oldest entry shown
        _run(db, "blog", {"mid": 10, "new": 25, "newer": 27}, windowed=True)
    assert _status(db) == {"old": "active", "mid": "active", "removed": "stale", "new": "active", "newer": "active"}


def test_a_page_skipped_as_unchanged_counts_as_seen_and_resets_its_missed_runs():
    from pipeline.pages import PageVisit, record_visit, touch_unchanged

    db = _db()
    _run(db, "blog", {"a": 1, "b": 2})
    record_visit(db, PageVisit("blog", "https://ill.example.org/b/", "https://ill.example.org/b/"))
    for _ in range(2):
        _run(db, "blog", {"a": 1})
    # the sitemap says b is unchanged: not fetched, but listed in this run
    run_id = _run(db, "blog", {"a": 1}, complete=False)
    assert touch_unchanged(db, "blog", ["https://ill.example.org/b/"], run_id=run_id) == 1
    mark_missed(db, "blog", run_id, windowed=False)
    _run(db, "blog", {"a": 1})
    assert _status(db)["b"] == "active"  # missed twice, seen, missed once: not three in a row


def test_a_resource_listed_by_another_source_stays_active():
    db = _db()
    _run(db, "blog", {"shared": 5, "solo": 6})
    _run(db, "other", {"shared": 5})
    for _ in range(3):
        _run(db, "blog", {"x": 7})
    assert _status(db)["solo"] == "stale" and _status(db)["shared"] == "active"


# -- end to end: backoff per source, recovery ------------------------------------------------

def test_failing_source_backs_off_gets_flagged_and_recovers_without_stalling_its_host(server, tmp_path):
    good = rss([("g1", "Good one", "Mon, 23 Nov 2026 10:00:00 GMT")])
    server.add("/good.rss", good, RSS)
    server.add("/bad.rss", b"gone", RSS, status=404)
    registry = tmp_path / "registry.yaml"
    registry.write_text(registry_yaml(server.base, [("src-good", "/good.rss"), ("src-bad", "/bad.rss")]))
    db = tmp_path / "catalog.db"
    base = ("harvest", "--registry", str(registry), "--db", str(db), "--delay", "0.005", "--quiet")

    assert run_cli(*base).returncode == 1
    assert run_cli(*base).returncode == 0  # src-bad is backing off: skipped, not failed
    assert run_cli(*base, "--force").returncode == 1
    assert run_cli(*base, "--source", "src-bad").returncode == 1  # named: tried even though backing off
    conn = sqlite3.connect(db)
    statuses = [r[0] for r in conn.execute("select status from harvest_runs where source_id = 'src-bad' order by id")]
    assert statuses == ["failed", "skipped", "failed", "failed"]
    # the good source on the same host was harvested every time
    assert [r[0] for r in conn.execute("select status from harvest_runs where source_id = 'src-good'")] == ["ok"] * 3
    row = conn.execute("select consecutive_failures, needs_attention, last_error, next_attempt, enabled "
                       "from source_health where source_id = 'src-bad'").fetchone()
    assert row[:2] == (3, 1) and "HTTP 404" in row[2] and row[3] is not None and row[4] == 1
    assert len(server.hits("/bad.rss")) == 3

    server.add("/bad.rss", rss([("b1", "Back again", "Tue, 24 Nov 2026 10:00:00 GMT")]), RSS)
    assert run_cli(*base, "--source", "src-bad", "--respect-backoff").returncode == 0  # still backing off
    assert len(server.hits("/bad.rss")) == 3
    assert run_cli(*base, "--source", "src-bad").returncode == 0
    row = conn.execute("select last_status, consecutive_failures, needs_attention, next_attempt, items "
                       "from source_health where source_id = 'src-bad'").fetchone()
    assert row == ("ok", 0, 0, None, 1)


def test_source_health_view_and_canned_query_through_datasette(tmp_path):
    import asyncio
    from urllib.parse import quote

    from datasette.app import Datasette

    from catalog.app import build_metadata

    path = tmp_path / "catalog.db"
    db = open_db(path)
    sync_sources(db, [{"id": s, "name": s.title(), "kind": "feed", "url": f"https://{s}.example.org/feed"}
                      for s in ("healthy", "broken", "fresh")])
    _run(db, "healthy", {"a": 1, "b": 2})
    now = datetime.now(UTC)
    h = SourceHealth("broken")
    for _ in range(ATTENTION_AFTER):
        h = after_run(h, "failed", started_at=now, finished_at=now, error="HTTP 404 from https://broken.example.org/feed")
    save_health(db, h, now)
    save_health(db, after_run(SourceHealth("healthy"), "ok", started_at=now, finished_at=now), now)
    db.close()

    async def fetch():
        ds = Datasette([str(path)], metadata=build_metadata(path))
        query = await ds.client.get("/catalog/source_health.json?_shape=array")  # the canned query
        view = await ds.client.get("/catalog.json?_shape=array&sql="
                                   + quote("select * from source_health where source_id = 'healthy'"))
        return query, view

    query, view = asyncio.run(fetch())
    assert query.status_code == 200, query.text
    rows = query.json()
    assert [r["source_id"] for r in rows] == ["broken", "fresh", "healthy"]
    broken = rows[0]
    assert broken["needs_attention"] == 1 and broken["consecutive_failures"] == ATTENTION_AFTER
    assert "HTTP 404" in broken["last_error"] and broken["next_attempt"] and broken["items"] == 0
    healthy = view.json()[0]
    assert healthy["items"] == 2 and healthy["last_status"] == "running" and healthy["days_since_new"] == 0
    assert healthy["last_success"] and healthy["consecutive_failures"] == 0 and healthy["needs_attention"] == 0


def test_an_entry_dropped_from_a_complete_listing_goes_stale_on_the_third_harvest_without_it(tmp_path):
    def write(slugs):
        entries = "".join(f"      - url: https://ill.example.org/{s}/\n        title: Entry {s}\n" for s in slugs)
        registry.write_text("sources:\n  - id: curated\n    name: Curated\n    kind: manual\n    entries:\n" + entries)

    registry = tmp_path / "registry.yaml"
    db = tmp_path / "catalog.db"
    args = ("harvest", "--registry", str(registry), "--db", str(db), "--quiet")
    write(["a", "b", "c"])
    assert run_cli(*args).returncode == 0
    write(["a", "b"])  # a curator removed c
    conn = sqlite3.connect(db)
    for n in range(1, 4):
        assert run_cli(*args).returncode == 0
        status = conn.execute("select status from resources where url like '%/c/'").fetchone()[0]
        assert status == ("stale" if n == 3 else "active"), n
    assert conn.execute("select count(*) from resources").fetchone()[0] == 3
    assert conn.execute("select items, stale_items from source_health").fetchone() == (3, 1)
