"""Faults: 50 sources, of which 10 break in different ways after a good first harvest.

One harvest seeds the catalog with every source working; then ten sources break (a
server that never answers, one that drips a byte at a time, a host that went down, a
reset mid-body, a short body, 404, 410, a redirect loop, a redirect chain past the cap,
a never-ending body) while the other forty keep working, one of them only after two
500s. The second harvest must store the forty, attribute each failure with its reason,
exit 1, keep everything the broken sources gave before, and stay bounded in time,
requests and memory.
"""

from __future__ import annotations

import re
import socket

import pytest

from pipeline.version import USER_AGENT
from tests.reliability.helpers import feed_source, harvest, items_for, rss, runs, snapshot, write_registry
from tests.server import (
    MiB,
    Sequence,
    StubServer,
    drip,
    never_answer,
    ok,
    redirect,
    reset_mid_body,
    short_body,
    status,
    stream,
)

TIMEOUT = 2.0  # --timeout for the fault harvest (seconds)
GOOD = [f"good-{i:02d}" for i in range(40)]  # good-00 gets 500, 500, then 200

# source id → (status in harvest_runs, pattern its error must match)
BROKEN = {
    "never-answers": ("failed", r"timed out fetching http://127\.0\.0\.2:\d+/never-answers: no complete response "
                                r"within the 2 s limit"),
    "drips": ("failed", r"timed out fetching http://127\.0\.0\.3:\d+/drips: no complete response within the 2 s"),
    "host-down": ("deferred", r"robots\.txt at http://127\.0\.0\.1:\d+/robots\.txt unreachable \(.*refused.*\); "
                              r"host deferred to a later run"),
    "reset-mid-body": ("failed", r"the response from http://127\.0\.0\.4:\d+/reset-mid-body was cut off before its "
                                 r"announced end"),
    "short-body": ("failed", r"the response from http://127\.0\.0\.4:\d+/short-body was cut off before its announced end"),
    "not-found": ("failed", r"^HTTP 404 from http://127\.0\.0\.1:\d+/not-found \(not found: check the URL\)$"),
    "gone": ("failed", r"^HTTP 410 from http://127\.0\.0\.1:\d+/gone \(gone: the page was removed\)$"),
    "redirect-loop": ("failed", r"too many redirects from http://127\.0\.0\.1:\d+/loop-[ab] \(more than 5; "
                                r"a redirect loop\?\)"),
    "redirect-chain": ("failed", r"too many redirects from http://127\.0\.0\.1:\d+/chain-6 \(more than 5"),
    "endless-body": ("failed", r"response from http://127\.0\.0\.5:\d+/endless-body is larger than the size cap "
                               r"\(5 MiB\); download stopped, not harvested"),
}


def good_feed(source_id: str) -> bytes:
    return rss(items_for(source_id, 3), title=f"Feed of {source_id}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    servers = {n: StubServer(f"127.0.0.{n}").start() for n in range(1, 6)}
    down = StubServer("127.0.0.1").start()  # the host that goes down after the first harvest
    main = servers[1]
    urls: dict[str, str] = {}
    for sid in GOOD:
        main.route(f"/{sid}", ok(good_feed(sid)))
        urls[sid] = main.url(f"/{sid}")
    where = {"never-answers": 2, "drips": 3, "reset-mid-body": 4, "short-body": 4, "endless-body": 5}
    for sid in BROKEN:
        if sid == "host-down":
            down.route("/host-down", ok(good_feed(sid)))
            urls[sid] = down.url("/host-down")
            continue
        server = servers[where.get(sid, 1)]
        path = {"redirect-loop": "/loop-a", "redirect-chain": "/chain-1"}.get(sid, f"/{sid}")
        server.route(path, ok(good_feed(sid)))
        urls[sid] = server.url(path)
    registry = write_registry(tmp / "registry.yaml", [feed_source(sid, url) for sid, url in urls.items()])
    db = tmp / "catalog.db"

    first = harvest(registry, db, "--timeout", "5")
    assert first.returncode == 0, first.stdout + first.stderr
    before = {sid: snapshot(db, sid) for sid in urls}

    # Now break ten of them; good-00 answers 500 twice before it recovers.
    main.route("/good-00", Sequence(status(500), status(500), ok(good_feed("good-00"))))
    servers[2].route("/never-answers", never_answer())
    servers[3].route("/drips", drip(interval=0.2))
    down.stop()
    probe = socket.socket()
    with pytest.raises(OSError):  # the port really refuses now
        probe.connect(socket.getaddrinfo(down.hosts[0], down.port, socket.AF_INET)[0][4])
    probe.close()
    servers[4].route("/reset-mid-body", reset_mid_body(rss(items_for("reset", 200))))
    servers[4].route("/short-body", short_body(rss(items_for("short", 20))))
    main.route("/not-found", status(404, b"no such feed"))
    main.route("/gone", status(410, b"removed"))
    main.route("/loop-a", redirect("/loop-b"))
    main.route("/loop-b", redirect("/loop-a"))
    for k in range(1, 12):
        main.route(f"/chain-{k}", redirect(f"/chain-{k + 1}"))
    main.route("/chain-12", ok(good_feed("redirect-chain")))
    servers[5].route("/endless-body", stream(400 * MiB, content_length=False))
    for s in servers.values():
        s.clear()

    second = harvest(registry, db, "--timeout", str(TIMEOUT))
    yield {"servers": servers, "db": db, "before": before, "first": first, "second": second, "urls": urls}
    for s in servers.values():
        s.stop()


def test_exit_code_and_summary(world):
    second = world["second"]
    assert second.returncode == 1, second.stdout + second.stderr
    assert "40 ok" in second.stdout and "9 failed" in second.stdout and "1 deferred" in second.stdout
    assert "Traceback" not in second.stderr


def test_forty_good_sources_fully_stored(world):
    latest = runs(world["db"])
    for sid in GOOD:
        assert latest[sid]["status"] == "ok", (sid, latest[sid]["error"])
        # unchanged since the first harvest: fetched again, recognised by its body hash, not parsed again
        assert latest[sid]["documents_unchanged"] == 1 and latest[sid]["items_seen"] == 0
        assert latest[sid]["error"] is None
        assert snapshot(world["db"], sid) == world["before"][sid]
        assert len(world["before"][sid]) == 3


def test_500_500_200_is_retried_and_succeeds(world):
    hits = world["servers"][1].hits("/good-00")
    assert [h.status for h in hits] == [500, 500, 200]
    assert runs(world["db"])["good-00"]["http_status"] == 200


@pytest.mark.parametrize("source_id", sorted(BROKEN))
def test_each_failure_attributed_and_old_data_kept(world, source_id):
    expected_status, pattern = BROKEN[source_id]
    run = runs(world["db"])[source_id]
    assert run["status"] == expected_status
    assert run["finished_at"] is not None and run["items_seen"] == 0
    assert re.search(pattern, run["error"]), run["error"]
    # what the source gave in the first harvest is untouched
    assert len(world["before"][source_id]) == 3
    assert snapshot(world["db"], source_id) == world["before"][source_id]


def test_404_and_410_are_not_retried(world):
    main = world["servers"][1]
    assert len(main.hits("/not-found")) == 1
    assert len(main.hits("/gone")) == 1


def test_redirects_stop_at_the_cap(world):
    main = world["servers"][1]
    loop = [h for h in main.hits() if h.path in ("/loop-a", "/loop-b")]
    assert len(loop) == 6  # the request and five redirects, then give up
    chain = [h.path for h in main.hits() if h.path.startswith("/chain-")]
    assert chain == [f"/chain-{k}" for k in range(1, 7)]


def test_timeouts_are_a_deadline_and_bounded(world):
    never = world["servers"][2].hits("/never-answers")
    dripping = world["servers"][3].hits("/drips")
    assert 1 <= len(never) <= 3 and 1 <= len(dripping) <= 3  # one try and at most two retries
    for h in dripping:
        # the drip never pauses long enough for an idle timeout: only a whole-download deadline ends it
        assert h.finished is not None and h.finished - h.started < TIMEOUT + 1.0
    assert world["servers"][3].sent("/drips") < len(dripping) * (TIMEOUT / 0.2 + 2)
    assert world["second"].seconds < 3 * (TIMEOUT + 0.5) + 30  # three tries of the slowest source, plus start-up


def test_endless_body_stopped_at_the_cap_with_bounded_memory(world):
    sent = world["servers"][5].sent("/endless-body")
    assert sent < 32 * MiB, sent  # the server was cut off after the 5 MiB cap (plus socket buffers)
    assert len(world["servers"][5].hits("/endless-body")) == 1  # a size-cap failure is not retried
    assert world["second"].max_rss_mb < 300, world["second"].max_rss_mb


def test_every_request_identifies_itself(world):
    hits = [h for s in world["servers"].values() for h in s.hits()]
    assert len(hits) > 50
    assert all(h.user_agent == USER_AGENT for h in hits)  # illhub and what it does (no contact in this registry)
    assert {h.path for h in hits} >= {"/robots.txt"}


def test_one_request_at_a_time_per_host(world):
    assert world["servers"][1].max_in_flight == 1
