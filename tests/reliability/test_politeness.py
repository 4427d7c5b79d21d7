"""Politeness, measured at the server: robots.txt (RFC 9309), Crawl-delay, one request at
a time per host, the User-Agent on every request, and 429 with Retry-After.

As in every reliability test, a first harvest stores each source while its host allows
everything; the second harvest runs under the case's rules, and what the first stored
must still be there.
"""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from pipeline.version import USER_AGENT
from tests.conftest import ROOT
from tests.reliability.helpers import feed_source, harvest, items_for, rss, runs, snapshot, write_registry
from tests.server import Sequence, StubServer, ok, reset_mid_body, slow, status

CRAWL_DELAY = 0.3


def feed(source_id: str) -> bytes:
    return rss(items_for(source_id, 2), title=source_id)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("politeness")
    hosts = {name: StubServer(f"127.0.0.{n}").start() for n, name in enumerate(
        ["robots-rules", "robots-404", "robots-503", "robots-broken", "crawl-delay", "busy", "rate-limited"], start=11)}
    sources = []

    def add(host: str, sid: str, path: str) -> None:
        hosts[host].route(path, ok(feed(sid)))
        sources.append(feed_source(sid, hosts[host].url(path)))

    add("robots-rules", "disallowed", "/private/feed.xml")
    add("robots-rules", "allowed", "/public/feed.xml")
    add("robots-404", "no-robots", "/feed.xml")
    add("robots-503", "robots-503", "/feed.xml")
    add("robots-broken", "robots-unreachable", "/feed.xml")
    for i in range(4):
        add("crawl-delay", f"slow-host-{i}", f"/feed-{i}.xml")
    for i in range(8):
        add("busy", f"busy-{i}", f"/feed-{i}.xml")
    add("rate-limited", "rate-limited", "/feed.xml")
    add("rate-limited", "rate-limited-neighbour", "/other.xml")
    add("rate-limited", "unavailable", "/maintenance.xml")
    registry = write_registry(tmp / "registry.yaml", sources)
    db = tmp / "catalog.db"
    first = harvest(registry, db, "--timeout", "5")
    assert first.returncode == 0, first.stdout + first.stderr
    before = {s["id"]: snapshot(db, s["id"]) for s in sources}

    hosts["robots-rules"].route("/robots.txt", ok("User-agent: *\nDisallow: /private/\n", "text/plain"))
    hosts["robots-503"].route("/robots.txt", status(503, b"maintenance"))
    hosts["robots-broken"].route("/robots.txt", reset_mid_body(b"User-agent: *\nDisallow:\n" * 50, "text/plain"))
    hosts["crawl-delay"].route("/robots.txt", ok(f"User-agent: *\nCrawl-delay: {CRAWL_DELAY}\n", "text/plain"))
    for i in range(8):  # each answer takes a while: parallel requests would overlap at the server
        hosts["busy"].route(f"/feed-{i}.xml", slow(ok(feed(f"busy-{i}")), 0.15))
    hosts["rate-limited"].route("/feed.xml", Sequence(status(429, b"slow down", {"Retry-After": "30"}),
                                                       ok(feed("rate-limited"))))
    back = datetime.now(UTC) + timedelta(days=4)
    hosts["rate-limited"].route("/maintenance.xml", Sequence(
        status(503, b"down for maintenance", {"Retry-After": format_datetime(back, usegmt=True)}),
        ok(feed("unavailable"))))
    for h in hosts.values():
        h.clear()
    second = harvest(registry, db, "--timeout", "3")
    yield {"hosts": hosts, "db": db, "before": before, "second": second, "registry": registry}
    for h in hosts.values():
        h.stop()


def kept(world, sid: str) -> bool:
    return len(world["before"][sid]) == 2 and snapshot(world["db"], sid) == world["before"][sid]


def test_robots_disallow_is_honoured(world):
    host = world["hosts"]["robots-rules"]
    assert host.paths().count("/robots.txt") == 1
    assert not [p for p in host.paths() if p.startswith("/private/")]  # zero hits
    assert host.paths().count("/public/feed.xml") == 1
    latest = runs(world["db"])
    assert latest["disallowed"]["status"] == "failed"
    assert "robots.txt disallows http://127.0.0.11:" in latest["disallowed"]["error"]
    assert latest["allowed"]["status"] == "ok"
    assert kept(world, "disallowed") and kept(world, "allowed")


def test_robots_404_means_allowed(world):
    host = world["hosts"]["robots-404"]
    assert host.paths() == ["/robots.txt", "/feed.xml"]
    assert runs(world["db"])["no-robots"]["status"] == "ok"
    assert kept(world, "no-robots")


@pytest.mark.parametrize(("host_name", "sid", "reason"), [
    ("robots-503", "robots-503", r"robots\.txt at http://127\.0\.0\.13:\d+/robots\.txt answered HTTP 503; "
                                 r"host deferred to a later run"),
    ("robots-broken", "robots-unreachable", r"robots\.txt at http://127\.0\.0\.14:\d+/robots\.txt unreachable "
                                            r"\(ResponseDataLossError\); host deferred to a later run"),
])
def test_robots_5xx_or_unreachable_defers_the_host(world, host_name, sid, reason):
    host = world["hosts"][host_name]
    assert set(host.paths()) == {"/robots.txt"}  # the feed itself was never requested
    assert len(host.paths()) <= 3  # robots.txt tried at most three times
    run = runs(world["db"])[sid]
    assert run["status"] == "deferred", run["error"]
    assert re.fullmatch(reason, run["error"]), run["error"]
    assert kept(world, sid)


def test_crawl_delay_is_honoured(world):
    host = world["hosts"]["crawl-delay"]
    hits = sorted(host.hits(), key=lambda h: h.started)
    assert [h.path for h in hits][0] == "/robots.txt" and len(hits) == 5
    gaps = [b.started - a.started for a, b in itertools.pairwise(hits)]
    assert min(gaps) >= CRAWL_DELAY * 0.95, gaps
    assert all(runs(world["db"])[f"slow-host-{i}"]["status"] == "ok" for i in range(4))


def test_never_more_than_one_request_at_a_time_per_host(world):
    host = world["hosts"]["busy"]
    assert len(host.hits()) == 9 and host.max_in_flight == 1
    spans = sorted((h.started, h.finished) for h in host.hits())
    assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans))  # no overlap at all
    assert all(kept(world, f"busy-{i}") for i in range(8))


def test_user_agent_on_every_request_including_robots(world):
    hits = [h for host in world["hosts"].values() for h in host.hits()]
    robots = [h for h in hits if h.path == "/robots.txt"]
    assert len(robots) >= 7
    for h in hits:
        assert h.user_agent == USER_AGENT and h.user_agent.startswith("illhub/0"), h


def test_429_with_retry_after_is_not_retried_sooner(world):
    host = world["hosts"]["rate-limited"]
    assert host.paths().count("/feed.xml") == 1  # asked to wait 30 s: no second try in this run
    run = runs(world["db"])["rate-limited"]
    assert run["status"] == "failed" and run["http_status"] == 429
    assert "HTTP 429" in run["error"] and "rate-limited" in run["error"]
    assert kept(world, "rate-limited")
    assert runs(world["db"])["rate-limited-neighbour"]["status"] == "ok"


def test_retry_after_is_honoured_across_runs(world, tmp_path):
    """A Retry-After longer than the backoff cap (2 days) wins; the next harvest skips the
    source without a request (per-source backoff, issue 5), its neighbours are harvested."""
    latest = runs(world["db"])
    started = datetime.fromisoformat(latest["rate-limited"]["started_at"])
    assert latest["unavailable"]["status"] == "failed" and "HTTP 503" in latest["unavailable"]["error"]
    assert world["hosts"]["rate-limited"].paths().count("/maintenance.xml") == 1  # not retried at once
    next_503 = datetime.fromisoformat(latest["unavailable"]["next_attempt"])
    assert next_503 >= started + timedelta(days=4) - timedelta(minutes=5)
    next_429 = datetime.fromisoformat(latest["rate-limited"]["next_attempt"])
    assert next_429 >= started + timedelta(seconds=30)
    host = world["hosts"]["rate-limited"]
    host.clear()
    copy = tmp_path / "catalog.db"  # the next night, on a copy: the other tests keep their catalog
    with sqlite3.connect(world["db"]) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    third = harvest(world["registry"], copy, "--timeout", "3")
    assert third.returncode == 0, third.stdout + third.stderr
    assert "/feed.xml" not in host.paths() and "/maintenance.xml" not in host.paths()
    assert "/other.xml" in host.paths()
    latest = runs(copy)
    assert latest["rate-limited"]["status"] == "skipped" and latest["unavailable"]["status"] == "skipped"
    for sid in ("rate-limited", "unavailable"):
        assert snapshot(copy, sid) == world["before"][sid]


def test_robots_unreachable_by_cause():
    """Refused, timed out, reset: deferred (RFC 9309). A name that does not resolve is a
    failure: deferring it would hide a typo or a dead domain forever."""
    from scrapy import Request
    from scrapy.exceptions import CannotResolveHostError, DownloadConnectionRefusedError, DownloadTimeoutError
    from twisted.python.failure import Failure

    from harvesters.failures import describe_failure
    from harvesters.middlewares import RobotsDeferred

    def failure(cause):
        f = Failure(RobotsDeferred("robots.txt at http://gone.localhost:8/robots.txt unreachable (x); "
                                   "host deferred to a later run", cause=cause))
        f.request = Request("http://gone.localhost:8/feed.xml")
        return f

    for cause in (DownloadConnectionRefusedError("refused"), DownloadTimeoutError("slow"), None):
        reason, status, deferred = describe_failure(failure(cause))
        assert deferred and reason.endswith("host deferred to a later run")
    reason, status, deferred = describe_failure(failure(CannotResolveHostError("no results for hostname lookup")))
    assert not deferred and status is None
    assert reason == "DNS lookup failed for gone.localhost: the host name does not resolve (offline, or a typo?)"


NO_DNS = """
import socket
def _numeric_only(real):
    def lookup(host, *args, **kwargs):
        if host in ("localhost", "127.0.0.71") or host.replace(".", "").isdigit():
            return real(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (test: no DNS)")
    return lookup
socket.getaddrinfo = _numeric_only(socket.getaddrinfo)
socket.gethostbyname = _numeric_only(socket.gethostbyname)
"""


def test_unresolvable_host_fails_and_keeps_old_data(tmp_path):
    """`gone.localhost` passes the loopback-only guard (a *.localhost name), then does not
    resolve: the test process answers every lookup of a name with "unknown" without asking
    any DNS server (a sitecustomize in the harvest subprocess)."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(NO_DNS, encoding="utf-8")
    with StubServer("127.0.0.71") as server:
        server.route("/feed.xml", ok(feed("gone")))
        port = server.base.rsplit(":", 1)[1]
        registry = write_registry(tmp_path / "registry.yaml", [feed_source("gone", server.url("/feed.xml"))])
        db = tmp_path / "catalog.db"
        assert harvest(registry, db).returncode == 0
        before = snapshot(db, "gone")
        write_registry(registry, [feed_source("gone", f"http://gone.localhost:{port}/feed.xml")])
        server.clear()
        env = {"PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{ROOT}"}
        result = harvest(registry, db, "--timeout", "3", env=env)
        assert server.hits() == []
    assert result.returncode == 1, result.stdout + result.stderr
    run = runs(db)["gone"]
    assert run["status"] == "failed"
    assert run["error"] == "DNS lookup failed for gone.localhost: the host name does not resolve (offline, or a typo?)"
    assert len(before) == 2 and snapshot(db, "gone") == before
