"""Link health: `illhub check-links` against a loopback server that answers every case,
run several times, with assertions on the link_checks history and the derived status."""

from __future__ import annotations

import socket
import sqlite3
import time

import pytest
from ruamel.yaml import YAML

from illhub.loopback import Handler, Page, Reply, Request
from pipeline.linkhealth import BROKEN_AFTER
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, store_batch, sync_sources
from pipeline.urls import canonical_url, resource_id
from tests.conftest import ROOT, run_cli
from tests.server import HTML, Sequence, StubServer, slow, stream

BIG_BODY = 32 * 1024 * 1024
CHALLENGE_PAGE = (b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
                  b"<script src=\"/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1\"></script></body></html>")


PAGE = b"<html><head><title>A page</title></head><body>ILL</body></html>"


def fixed(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Page:
    return Page(body, HTML, status, headers or {})


def by_method(head: Handler, get: Handler) -> Handler:
    return lambda request: (head if request.method == "HEAD" else get)(request)


def abandoned(behaviour: Handler) -> Handler:
    """The checker gives up on these (a timeout, a body read no further than its first
    bytes) while the server carries on: not counted as in flight once they have arrived."""

    def answer(request: Request) -> Reply | None:
        request.release_in_flight()
        return behaviour(request)

    return answer


def set_phase(lab: StubServer, phase: int) -> None:
    """The run number switches /toggle and /was-ok between runs."""
    lab.add("/toggle", PAGE, status=404 if phase < 4 else 200)
    lab.add("/was-ok", PAGE, status=200 if phase == 1 else 404)


@pytest.fixture
def lab():
    """A loopback web where every path is one link-check case."""
    server = StubServer(fallback=fixed(404, b"no such case"))
    server.add("/robots.txt", b"User-agent: *\nDisallow: /private/\n", "text/plain")
    for path in ("/ok", "/ok-b", "/final", "/after-pause"):
        server.add(path, PAGE)
    redirects = {"/chain/1": (301, "/chain/2"), "/chain/2": (302, f"{server.base}/chain/3"),
                 "/chain/3": (301, "/final"), "/loop": (301, "/loop")}
    for path, (code, location) in redirects.items():
        server.route(path, fixed(code, headers={"Location": location}))
    server.route("/forbidden", fixed(403, b"<title>Forbidden</title>"))
    # Cloudflare answers HEAD with a bare 403
    server.route("/challenge", by_method(fixed(403, headers={"Server": "cloudflare"}),
                                         fixed(403, CHALLENGE_PAGE, {"Server": "cloudflare"})))
    server.route("/head-forbidden", by_method(fixed(403), fixed(200, PAGE)))
    server.route("/head-404", by_method(fixed(404), fixed(200, PAGE)))  # a server that mishandles HEAD
    server.route("/missing", fixed(404, b"not found"))
    server.route("/gone", fixed(410, b"gone"))
    server.route("/rate-limited", fixed(429, b"slow down", {"Retry-After": "3600"}))
    server.route("/rate-once", Sequence(fixed(429, b"slow down", {"Retry-After": "1"}), fixed(200, PAGE)))
    server.route("/flaky", Sequence(fixed(503, PAGE), fixed(200, PAGE)))
    no_head = fixed(405, headers={"Allow": "GET"})
    server.route("/no-head", by_method(no_head, fixed(200, PAGE)))
    # no Content-Length: the body runs until the connection closes
    server.route("/no-head-big", by_method(no_head, abandoned(
        stream(BIG_BODY, content_length=False, content_type="application/pdf", start=b"%PDF"))))
    # a large file with a Content-Length
    server.route("/big-declared", stream(BIG_BODY, content_type="video/mp4", start=b""))
    server.route("/no-head-big-declared", by_method(no_head, stream(BIG_BODY, content_type="video/mp4", start=b"")))
    server.route("/slow", abandoned(slow(fixed(200, b"too late"), 10)))  # far longer than the checker's timeout
    set_phase(server, 1)
    with server:
        yield server


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


CASES_A = ["/ok", "/chain/1", "/loop", "/no-head-big-declared", "/forbidden", "/challenge", "/missing", "/gone", "/slow", "/no-head", "/no-head-big",
           "/rate-once", "/flaky", "/toggle", "/was-ok", "/private/page"]
# On the host "localhost", in this order (first_seen): a HEAD-only 403 and a HEAD-only 404,
# then a host that asks for an hour's pause, then a link that must not be asked in that run.
CASES_B = ["/head-forbidden", "/head-404", "/big-declared", "/rate-limited", "/after-pause"]


def make_catalog(db_path, lab: StubServer, refused_port: int) -> dict[str, str]:
    """Store the test links through the normal pipeline; returns case → url."""
    a = f"http://127.0.0.1:{lab.port}"
    b = f"http://localhost:{lab.port}"
    urls = {p: a + p for p in CASES_A}
    urls["refused"] = f"http://127.0.0.1:{refused_port}/nobody-home"
    urls.update({"B" + p: b + p for p in CASES_B})
    urls["/ok-b"] = a + "/ok-b"
    db = open_db(db_path)
    sync_sources(db, [{"id": "loop-a", "name": "Loop A", "kind": "manual"},
                      {"id": "loop-b", "name": "Loop B", "kind": "manual"}])
    main = [Resource(url=u, title=k) for k, u in urls.items() if not k.startswith("B") and k != "/ok-b"]
    store_batch(db, Batch("loop-a", main), now="2026-11-01T08:00:00Z")
    for i, p in enumerate(CASES_B):
        store_batch(db, Batch("loop-a", [Resource(url=urls["B" + p], title=p)]), now=f"2026-11-01T08:00:0{i + 1}Z")
    store_batch(db, Batch("loop-b", [Resource(url=urls["/ok-b"], title="only in b")]), now="2026-11-01T08:00:00Z")
    db.close()
    return {k: canonical_url(u) for k, u in urls.items()}


def check_links(db_path, *extra: str):
    result = run_cli("check-links", "--db", str(db_path), "--older-than", "0", "--delay", "0.01", "--timeout", "0.4",
                     "--retries", "1", "--backoff", "0.05", "--quiet", *extra, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "Error" not in result.stderr, result.stderr
    return result


def status_of(conn, url: str) -> dict:
    conn.row_factory = sqlite3.Row
    row = conn.execute("select * from resources where url = ?", [url]).fetchone()
    return dict(row)


def history(conn, url: str) -> list[dict]:
    conn.row_factory = sqlite3.Row
    rows = conn.execute("select c.* from link_checks c join resources r on r.id = c.resource_id "
                        "where r.url = ? order by c.id", [url]).fetchall()
    return [dict(r) for r in rows]


def canned(conn, name: str) -> list[dict]:
    meta = YAML(typ="safe").load((ROOT / "datasette_config" / "metadata.yml").read_text(encoding="utf-8"))
    sql = meta["databases"]["illhub"]["queries"][name]["sql"]
    conn.row_factory = sqlite3.Row
    return [dict(r) for r in conn.execute(sql).fetchall()]


def test_check_links_history_and_status_over_runs(lab, tmp_path):
    db_path = tmp_path / "catalog.db"
    urls = make_catalog(db_path, lab, closed_port())
    conn = sqlite3.connect(db_path)
    a_host = f"127.0.0.1:{lab.port}"

    # -- run 1: only source loop-a -----------------------------------------------------
    out = check_links(db_path, "--source", "loop-a").stdout
    assert "checked 22 of 22 links" in out, out
    s = {k: status_of(conn, u) for k, u in urls.items()}
    assert s["/ok"]["link_status"] == "ok" and s["/ok"]["link_http_status"] == 200 and s["/ok"]["archived_url"] is None
    # the 301 → 302 → 301 chain is followed and the final URL recorded
    assert s["/chain/1"]["link_status"] == "redirected"
    assert s["/chain/1"]["link_final_url"] == f"http://{a_host}/final"
    [chain] = history(conn, urls["/chain/1"])
    assert chain["final_url"] == f"http://{a_host}/final" and chain["http_status"] == 200
    # a redirect loop is a failure (never followed forever)
    [loop] = history(conn, urls["/loop"])
    assert loop["outcome"] == "failed" and "too many redirects" in loop["error"]
    # 403 and a bot challenge: blocked (not dead), with an archived copy
    assert s["/forbidden"]["link_status"] == "blocked" and s["/forbidden"]["link_http_status"] == 403
    assert s["/forbidden"]["archived_url"] == f"https://web.archive.org/web/20261101080000/{urls['/forbidden']}"
    assert s["/challenge"]["link_status"] == "blocked" and "Cloudflare" in s["/challenge"]["link_error"]
    # HEAD refused (405) → GET; HEAD 403 only → GET succeeds
    assert s["/no-head"]["link_status"] == "ok" and history(conn, urls["/no-head"])[0]["method"] == "GET"
    assert s["B/head-forbidden"]["link_status"] == "ok"
    b_calls = [(h.method, h.path) for h in lab.hits() if h.host == "localhost" and h.path == "/head-forbidden"]
    assert b_calls == [("HEAD", "/head-forbidden"), ("GET", "/head-forbidden")]
    # a 404 to HEAD is confirmed with GET before it counts: here GET finds the page
    assert s["B/head-404"]["link_status"] == "ok" and history(conn, urls["B/head-404"])[0]["method"] == "GET"
    # after the first 405 to HEAD, the host is asked with GET only
    a_calls = [(h.method, h.path) for h in lab.hits() if h.host == "127.0.0.1" and h.path != "/slow"]
    first_405 = next(i for i, (m, p) in enumerate(a_calls) if m == "HEAD" and p.startswith("/no-head"))
    assert a_calls[first_405 + 1][0] == "GET" and all(m == "GET" for m, _ in a_calls[first_405 + 1:])
    assert ("GET", "/no-head") in a_calls and ("GET", "/no-head-big") in a_calls
    # a GET of a huge body stops early (the 5 MB size cap would otherwise fail it)
    assert s["/no-head-big"]["link_status"] == "ok"
    # ... also when its Content-Length says so up front (and a HEAD of a large file is fine)
    assert s["/no-head-big-declared"]["link_status"] == "ok"
    assert history(conn, urls["/no-head-big-declared"])[0]["method"] == "GET"
    assert s["B/big-declared"]["link_status"] == "ok" and history(conn, urls["B/big-declared"])[0]["method"] == "HEAD"
    assert lab.sent("/no-head-big") < BIG_BODY
    # 429 with Retry-After: 1 is waited for, then retried (and the whole host paused)
    rate = history(conn, urls["/rate-once"])[0]
    assert rate["outcome"] == "ok" and rate["attempts"] == 2
    times = [h.started for h in lab.hits() if h.path == "/rate-once"]
    assert len(times) == 2 and times[1] - times[0] >= 0.95
    # a 503 is retried after a backoff
    flaky = history(conn, urls["/flaky"])[0]
    assert flaky["outcome"] == "ok" and flaky["attempts"] == 2
    # a Retry-After of an hour is not waited for: blocked, and the host's next link is skipped
    assert s["B/rate-limited"]["link_status"] == "blocked" and "Retry-After 3600" in s["B/rate-limited"]["link_error"]
    assert s["B/after-pause"]["link_status"] == "unchecked"
    assert history(conn, urls["B/after-pause"])[0]["outcome"] == "skipped"
    assert not [h.path for h in lab.hits() if h.path == "/after-pause"]
    # robots.txt disallows /private/: skipped, never requested
    assert history(conn, urls["/private/page"])[0]["outcome"] == "skipped"
    assert s["/private/page"]["link_status"] == "unchecked"
    assert not [h.path for h in lab.hits() if h.path.startswith("/private/")]
    # one failure never marks a link broken
    for case in ("/missing", "/gone", "/slow", "refused", "/toggle"):
        assert s[case]["link_status"] == "unchecked" and s[case]["link_failures"] == 1, (case, s[case])
        assert s[case]["archived_url"] is None
    assert s["/missing"]["link_http_status"] == 404 and s["/gone"]["link_http_status"] == 410
    slow = history(conn, urls["/slow"])[0]
    assert slow["outcome"] == "failed" and "timed out" in slow["error"] and slow["attempts"] == 2
    assert slow["elapsed_ms"] >= 300
    assert "refused" in history(conn, urls["refused"])[0]["error"]
    # --source: the link only loop-b lists was not checked
    assert s["/ok-b"]["link_status"] == "unchecked" and not history(conn, urls["/ok-b"])
    # politeness: one request at a time, every one with the illhub User-Agent
    assert lab.max_in_flight_by_host == {"127.0.0.1": 1, "localhost": 1}
    assert all(h.user_agent.startswith("illhub/") for h in lab.hits() if h.user_agent or h.path != "/slow")

    # -- run 2 ---------------------------------------------------------------------------
    set_phase(lab, 2)
    check_links(db_path)
    s = {k: status_of(conn, u) for k, u in urls.items()}
    assert s["/ok-b"]["link_status"] == "ok"
    assert s["/missing"]["link_status"] == "unchecked" and s["/missing"]["link_failures"] == 2
    # a link that worked keeps its status through fewer than 3 failures
    assert s["/was-ok"]["link_status"] == "ok" and s["/was-ok"]["link_failures"] == 1
    assert s["/was-ok"]["link_http_status"] == 404

    # -- run 3: the third failure in a row makes a link broken ----------------------------
    set_phase(lab, 3)
    out = check_links(db_path).stdout
    assert "now broken" in out
    s = {k: status_of(conn, u) for k, u in urls.items()}
    for case in ("/missing", "/gone", "/slow", "refused", "/toggle", "/loop"):
        assert s[case]["link_status"] == "broken" and s[case]["link_failures"] == BROKEN_AFTER, (case, s[case])
        assert s[case]["archived_url"] == f"https://web.archive.org/web/20261101080000/{urls[case]}"
    assert [h["link_status"] for h in history(conn, urls["/missing"])] == ["unchecked", "unchecked", "broken"]
    assert [h["outcome"] for h in history(conn, urls["/missing"])] == ["failed"] * 3
    assert s["/was-ok"]["link_status"] == "ok" and s["/was-ok"]["link_failures"] == 2
    assert s["/ok"]["link_status"] == "ok" and s["/forbidden"]["link_status"] == "blocked"
    broken = canned(conn, "broken_links")
    assert {r["url"] for r in broken} == {urls[c] for c in ("/missing", "/gone", "/slow", "refused", "/toggle", "/loop")}
    assert all(r["source_id"] == "loop-a" and r["archived_url"].startswith("https://web.archive.org/web/")
               for r in broken)

    # -- run 4: /toggle answers again; /was-ok fails a third time ------------------------
    set_phase(lab, 4)
    out = check_links(db_path).stdout
    assert "recovered" in out
    s = {k: status_of(conn, u) for k, u in urls.items()}
    assert s["/toggle"]["link_status"] == "ok" and s["/toggle"]["link_failures"] == 0
    assert s["/toggle"]["archived_url"] is None and s["/toggle"]["link_recovered_at"]
    assert [r["url"] for r in canned(conn, "recovered_links")] == [urls["/toggle"]]
    # the archived copy of a link that once worked points at the time it last worked
    was_ok = s["/was-ok"]
    assert was_ok["link_status"] == "broken"
    first_ok = history(conn, urls["/was-ok"])[0]["checked_at"]
    stamp = first_ok.replace("-", "").replace(":", "").replace("T", "").rstrip("Z")
    assert was_ok["archived_url"] == f"https://web.archive.org/web/{stamp}/{urls['/was-ok']}"
    # the runs are logged
    runs = conn.execute("select id, status, selected, checked, newly_broken, recovered from link_check_runs "
                        "order by id").fetchall()
    assert [r[1] for r in runs] == ["ok"] * 4
    assert runs[0][2:4] == (22, 22) and runs[1][2:4] == (23, 23)
    assert runs[2][4] == 6 and runs[3][4] == 1 and runs[3][5] == 1
    assert conn.execute("select count(*) from link_checks").fetchone()[0] == 22 + 23 * 3


def test_nothing_due_and_unknown_source(lab, tmp_path):
    db_path = tmp_path / "catalog.db"
    db = open_db(db_path)
    sync_sources(db, [{"id": "loop-a", "name": "Loop A", "kind": "manual"}])
    store_batch(db, Batch("loop-a", [Resource(url=f"http://127.0.0.1:{lab.port}/ok", title="ok")]))
    rid = resource_id(canonical_url(f"http://127.0.0.1:{lab.port}/ok"))
    db.execute("update resources set link_checked_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') where id = ?", [rid])
    db.conn.commit()
    db.close()
    # checked a moment ago: not due with the default --older-than 1
    result = run_cli("check-links", "--db", str(db_path), "--quiet")
    assert result.returncode == 0 and "no links due" in result.stdout, result.stdout + result.stderr
    assert not lab.hits()
    result = run_cli("check-links", "--db", str(db_path), "--source", "nope", "--quiet")
    assert result.returncode == 2
    assert "--source nope: no resources from source 'nope'" in result.stderr and "loop-a" in result.stderr


def test_schedule_hook_follows_the_registry(tmp_path):
    from illhub.linkcheck import link_check_argv, link_check_schedule
    from illhub.registry import RegistryError, parse_registry

    source = {"id": "s", "name": "S", "kind": "manual", "entries": [{"url": "https://ill.example.org/", "title": "t"}]}
    assert link_check_schedule(parse_registry({"sources": [source]})) == "weekly"
    registry = parse_registry({"defaults": {"link_check_schedule": "30 4 * * 0"}, "sources": [source]})
    assert link_check_schedule(registry) == "30 4 * * 0"
    with pytest.raises(RegistryError, match="defaults.link_check_schedule"):
        parse_registry({"defaults": {"link_check_schedule": "fortnightly"}, "sources": [source]})
    argv = link_check_argv(tmp_path / "registry.yaml", tmp_path / "c.db")
    assert argv[1:4] == ["-m", "illhub", "check-links"] and str(tmp_path / "c.db") in argv


def test_a_stopped_link_check_records_an_incomplete_run(lab, tmp_path):
    """SIGTERM (the scheduler stopping) while a link is in flight: what was checked is kept,
    the run is recorded as incomplete and the exit code says so."""
    import os
    import signal
    import subprocess
    import sys

    db_path = tmp_path / "catalog.db"
    db = open_db(db_path)
    sync_sources(db, [{"id": "loop-a", "name": "Loop A", "kind": "manual"}])
    base = f"http://127.0.0.1:{lab.port}"
    store_batch(db, Batch("loop-a", [Resource(url=base + "/ok", title="ok")]), now="2026-11-01T08:00:00Z")
    store_batch(db, Batch("loop-a", [Resource(url=base + "/slow", title="slow")]), now="2026-11-01T08:00:01Z")
    store_batch(db, Batch("loop-a", [Resource(url=base + "/gone", title="gone")]), now="2026-11-01T08:00:02Z")
    db.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ILLHUB_NETWORK": "loopback"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "illhub", "check-links", "--db", str(db_path), "--older-than", "0", "--delay", "0.01",
         "--timeout", "3", "--retries", "0", "--quiet"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(h.path == "/slow" for h in lab.hits()):
            assert time.monotonic() < deadline and proc.poll() is None, "the check never reached /slow"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out + err
    conn = sqlite3.connect(db_path)
    status, selected, checked, error = conn.execute(
        "select status, selected, checked, error from link_check_runs").fetchone()
    assert (status, selected) == ("incomplete", 3) and checked < 3 and "not checked" in error
    assert conn.execute("select outcome from link_checks c join resources r on r.id = c.resource_id "
                        "where r.url like '%/ok'").fetchone() == ("ok",)
    assert not [h.path for h in lab.hits() if h.path == "/gone"]


def test_scheduled_link_check_runs_with_the_registry_user_agent(lab, tmp_path):
    """The in-process entry point for schedulers (run in its own process, as Scrapy needs)."""
    import os
    import subprocess
    import sys

    db_path = tmp_path / "catalog.db"
    db = open_db(db_path)
    sync_sources(db, [{"id": "loop-a", "name": "Loop A", "kind": "manual"}])
    store_batch(db, Batch("loop-a", [Resource(url=f"http://127.0.0.1:{lab.port}/ok", title="ok")]))
    db.close()
    registry = tmp_path / "registry.yaml"
    registry.write_text("defaults:\n  contact: https://ill.example.org/about-the-hub\n"
                        "sources:\n  - id: loop-a\n    name: Loop A\n    kind: manual\n    entries:\n"
                        "      - url: https://ill.example.org/guide\n        title: A guide\n")
    code = ("import sys; from illhub.registry import load_registry; from illhub.linkcheck import scheduled_link_check; "
            "r = scheduled_link_check(load_registry(sys.argv[1]), sys.argv[2]); print(r.counts['ok'], r.selected)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ILLHUB_NETWORK": "loopback"}
    result = subprocess.run([sys.executable, "-c", code, str(registry), str(db_path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.split() == ["1", "1"], result.stdout + result.stderr
    assert sqlite3.connect(db_path).execute("select link_status from resources").fetchone() == ("ok",)
    agents = {h.user_agent for h in lab.hits() if h.path == "/ok"}
    assert agents and all("+https://ill.example.org/about-the-hub" in ua for ua in agents)
