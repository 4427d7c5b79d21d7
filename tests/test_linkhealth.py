"""The pure side of link health: verdicts, bot challenges, the status rules, Wayback
pointers and the choice of links due for a check (no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.linkhealth import (
    BROKEN_AFTER,
    CheckRecord,
    bot_challenge,
    derive_status,
    judge_response,
    record_check,
    retry_after_seconds,
    select_due,
    start_link_run,
    wayback_url,
)
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, store_batch, sync_sources

U = "https://ill.example.org/guide/"


@pytest.mark.parametrize(
    ("status", "final", "outcome", "retry"),
    [
        (200, U, "ok", False),
        (204, U, "ok", False),
        (200, "https://ill.example.org/new-guide/", "redirected", False),
        (200, U + "?utm_source=feed", "ok", False),  # a redirect that only adds tracking is no move
        (401, U, "blocked", False),
        (403, U, "blocked", False),
        (429, U, "blocked", True),
        (999, U, "blocked", False),
        (404, U, "failed", False),
        (410, U, "failed", False),
        (400, U, "failed", False),
        (500, U, "failed", True),
        (503, U, "failed", True),
        (301, U, "failed", False),
    ],
)
def test_judge_response(status, final, outcome, retry):
    verdict = judge_response(status, U, final)
    assert (verdict.outcome, verdict.retry) == (outcome, retry)


def test_bot_challenges_are_blocked_not_dead():
    cf_page = b"<html><head><title>Just a moment...</title></head><body>/cdn-cgi/challenge-platform/</body></html>"
    assert bot_challenge(403, {"server": "cloudflare"}, cf_page) == "Cloudflare"
    assert bot_challenge(503, {"server": "cloudflare"}, cf_page) == "Cloudflare"
    assert bot_challenge(403, {"cf-mitigated": "challenge"}) == "Cloudflare"
    assert bot_challenge(202, {"x-amzn-waf-action": "challenge"}) == "AWS WAF"
    assert bot_challenge(403, {}, b"<script src='https://ct.captcha-delivery.com/c.js'></script>") == "DataDome"
    assert bot_challenge(403, {}, b"<title>Forbidden</title>") is None
    assert bot_challenge(404, {"server": "cloudflare"}, b"<title>Not found</title>") is None
    # a 503 challenge is blocked and not retried; a plain 503 is a (retried) failure
    assert judge_response(503, U, U, {"server": "cloudflare"}, cf_page).outcome == "blocked"
    assert judge_response(503, U, U, {}, b"maintenance").retry
    # an ordinary page titled "Access denied" (say, about access policies) is not a challenge
    assert bot_challenge(200, {}, b"<title>Access denied: what to do</title>") is None


def test_derive_status_needs_three_failures_in_separate_runs():
    assert derive_status([]) == ("unchecked", 0)
    assert derive_status([("failed", 1)]) == ("unchecked", 1)
    assert derive_status([("failed", 2), ("failed", 1)]) == ("unchecked", 2)
    assert derive_status([("failed", 3), ("failed", 2), ("failed", 1)]) == ("broken", 3)
    # two failures within one run count once
    assert derive_status([("failed", 2), ("failed", 2), ("failed", 1)]) == ("unchecked", 2)
    # a link that worked keeps its status until the third failure
    assert derive_status([("failed", 3), ("failed", 2), ("ok", 1)]) == ("ok", 2)
    assert derive_status([("failed", 3), ("redirected", 2)]) == ("redirected", 1)
    assert derive_status([("failed", 3), ("blocked", 2)]) == ("blocked", 1)
    # skipped checks (robots.txt, guard, paused host) neither count nor break a streak
    assert derive_status([("failed", 4), ("skipped", 3), ("failed", 2), ("failed", 1)]) == ("broken", 3)
    assert derive_status([("skipped", 2), ("ok", 1)]) == ("ok", 0)
    # recovery
    assert derive_status([("ok", 4), ("failed", 3), ("failed", 2), ("failed", 1)]) == ("ok", 0)
    assert BROKEN_AFTER == 3


def test_wayback_url_is_built_without_network():
    assert wayback_url("https://ill.example.org/a?b=1#top", "2026-03-04T05:06:07Z") == (
        "https://web.archive.org/web/20260304050607/https://ill.example.org/a?b=1"
    )
    assert wayback_url("https://ill.example.org/a") == "https://web.archive.org/web/2/https://ill.example.org/a"


def test_retry_after_seconds():
    now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Sat, 28 Nov 2026 12:01:30 GMT", now=now) == 90.0
    assert retry_after_seconds("Sat, 28 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


@pytest.fixture
def db():
    db = open_db(":memory:")
    sync_sources(db, [{"id": "s1", "name": "S1", "kind": "manual"}, {"id": "s2", "name": "S2", "kind": "manual"}])
    store_batch(db, Batch("s1", [Resource(url=f"https://ill.example.org/{i}", title=str(i)) for i in range(4)]),
                now="2026-11-01T00:00:00Z")
    store_batch(db, Batch("s2", [Resource(url="https://other.example.net/x", title="x")]), now="2026-11-02T00:00:00Z")
    return db


def test_select_due_orders_filters_and_limits(db):
    run = start_link_run(db)
    ids = {url: rid for rid, url in db.execute("select id, url from resources").fetchall()}
    record_check(db, run, CheckRecord(ids["https://ill.example.org/0"], "https://ill.example.org/0", "ok",
                                      http_status=200), now="2026-11-27T12:00:00Z")
    record_check(db, run, CheckRecord(ids["https://ill.example.org/1"], "https://ill.example.org/1", "ok",
                                      http_status=200), now="2026-11-20T12:00:00Z")
    now = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
    due = [u for _, u in select_due(db, now=now)]
    # never checked first (oldest first seen first), then the longest unchecked
    assert set(due[:2]) == {"https://ill.example.org/2", "https://ill.example.org/3"}
    assert due[2:] == ["https://other.example.net/x", "https://ill.example.org/1", "https://ill.example.org/0"]
    # --older-than 1: the link checked 12 hours ago is not due
    assert "https://ill.example.org/0" not in [u for _, u in select_due(db, older_than_days=1, now=now)]
    assert len(select_due(db, older_than_days=1, now=now)) == 4
    assert len(select_due(db, older_than_days=10, now=now)) == 3
    assert [u for _, u in select_due(db, source_id="s2")] == ["https://other.example.net/x"]
    assert len(select_due(db, limit=2)) == 2


def test_record_check_keeps_history_and_archive_pointer(db):
    rid, url = db.execute("select id, url from resources where url like '%/3'").fetchone()
    runs = [start_link_run(db) for _ in range(4)]
    t = record_check(db, runs[0], CheckRecord(rid, url, "ok", http_status=200), now="2026-11-10T10:00:00Z")
    assert (t.before, t.after) == ("unchecked", "ok")
    for i, run in enumerate(runs[1:], start=1):
        t = record_check(db, run, CheckRecord(rid, url, "failed", http_status=404, error="HTTP 404: not found"),
                         now=f"2026-11-1{i}T10:00:00Z")
    assert t.newly_broken and t.failures == 3
    row = db.execute("select link_status, link_failures, archived_url, link_http_status, link_error from resources "
                     "where id = ?", [rid]).fetchone()
    # the archived copy is the one nearest the last time the link worked
    assert row == ("broken", 3, f"https://web.archive.org/web/20261110100000/{url}", 404, "HTTP 404: not found")
    statuses = [r[0] for r in db.execute("select link_status from link_checks where resource_id = ? order by id", [rid])]
    assert statuses == ["ok", "ok", "ok", "broken"]
    t = record_check(db, start_link_run(db), CheckRecord(rid, url, "ok", http_status=200), now="2026-11-20T10:00:00Z")
    assert t.recovered
    row = db.execute("select link_status, archived_url, link_recovered_at from resources where id = ?", [rid]).fetchone()
    assert row == ("ok", None, "2026-11-20T10:00:00Z")
    with pytest.raises(ValueError):
        record_check(db, runs[0], CheckRecord(rid, url, "fine"))


def test_exports_carry_link_status_and_archived_copy(db):
    import csv
    import io

    from pipeline.export import export_resources

    rid, url = db.execute("select id, url from resources where url like '%/2'").fetchone()
    for _ in range(BROKEN_AFTER):
        record_check(db, start_link_run(db), CheckRecord(rid, url, "failed", http_status=410))
    buf = io.StringIO()
    export_resources(db, buf, "csv")
    rows = {r["url"]: r for r in csv.DictReader(io.StringIO(buf.getvalue()))}
    assert rows[url]["link_status"] == "broken"
    assert rows[url]["archived_url"] == f"https://web.archive.org/web/20261101000000/{url}"
    assert rows["https://ill.example.org/0"]["link_status"] == "unchecked" and not rows["https://ill.example.org/0"]["archived_url"]
