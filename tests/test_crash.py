"""A harvest killed in the middle (kill -9, or the scheduler stopped by SIGTERM) leaves a
consistent catalog, and the next harvest completes normally."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

from tests.conftest import ROOT, run_cli
from tests.server import RSS, registry_yaml, rss

ITEMS = 400


def big_feed(name: str) -> bytes:
    return rss([(f"{name}-{i}", f"{name} post {i}", f"Mon, {1 + i % 27:02d} Nov 2026 10:{i % 60:02d}:00 GMT")
                for i in range(ITEMS)])


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "ILLHUB_NETWORK": "loopback"}


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def count_by_source(db) -> dict[str, int]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return dict(conn.execute("select source_id, count(*) from resource_sources group by source_id"))
    except sqlite3.OperationalError:  # not created yet
        return {}


def start_harvest(server, tmp_path, names: list[str], *extra: str, stdout=subprocess.DEVNULL):
    """``illhub harvest`` started on feeds ``names`` and one more, ``slow``, held until the
    returned event is set: (process, catalog, event, registry)."""
    for n in names:
        server.add(f"/{n}.rss", big_feed(n), RSS, etag=f'"{n}"')
    hold = threading.Event()
    server.add("/slow.rss", big_feed("slow"), RSS, hold=hold)
    registry = tmp_path / "registry.yaml"
    registry.write_text(registry_yaml(server.base, [(n, f"/{n}.rss") for n in [*names, "slow"]]))
    db = tmp_path / "catalog.db"
    args = [sys.executable, "-m", "illhub", "harvest", "--registry", str(registry), "--db", str(db),
            "--delay", "0.001", "--quiet", *extra]
    proc = subprocess.Popen(args, cwd=ROOT, env=env(), stdout=stdout, stderr=subprocess.PIPE, text=True)
    return proc, db, hold, registry


def test_kill_9_mid_harvest_leaves_a_consistent_catalog_and_the_next_run_completes(server, tmp_path):
    names = [f"big{i}" for i in range(5)]
    proc, db, hold, registry = start_harvest(server, tmp_path, names)
    try:
        # kill as soon as the first batch is in, while the others are still being written
        wait_for(lambda: count_by_source(db))
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    conn = sqlite3.connect(db)
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert conn.execute("pragma foreign_key_check").fetchall() == []
    counts = count_by_source(db)
    assert counts and all(n == ITEMS for n in counts.values()), counts  # no half-written batch
    assert "slow" not in counts
    assert {r[0] for r in conn.execute("select status from harvest_runs")} == {"running"}
    # every stored resource is searchable: the FTS index was written in the same transactions
    assert conn.execute("select count(*) from resources_fts").fetchone()[0] == sum(counts.values())

    hold.set()
    again = run_cli("harvest", "--registry", str(registry), "--db", str(db), "--delay", "0.001", "--quiet")
    assert again.returncode == 0, again.stdout + again.stderr
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert count_by_source(db) == {n: ITEMS for n in [*names, "slow"]}
    statuses = conn.execute("select status, count(*) from harvest_runs group by status").fetchall()
    assert dict(statuses) == {"interrupted": 6, "ok": 6}
    assert conn.execute("select count(*) from resources where status != 'active'").fetchone()[0] == 0


def test_sigterm_stops_the_scheduler_and_the_unfinished_harvest_is_recorded_interrupted(server, tmp_path):
    hold = threading.Event()
    server.add("/quick.rss", big_feed("quick")[:4000] + b"</channel></rss>", RSS)
    server.add("/slow.rss", big_feed("slow"), RSS, hold=hold)
    registry = tmp_path / "registry.yaml"
    registry.write_text(registry_yaml(server.base, [("quick", "/quick.rss"), ("slow", "/slow.rss")]))
    db = tmp_path / "catalog.db"
    # A new catalog: the nightly job is owed a run, so it starts at once.
    proc = subprocess.Popen(
        [sys.executable, "-m", "illhub", "schedule", "--registry", str(registry), "--db", str(db),
         "--delay", "0.001", "--stop-timeout", "1"],
        cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(lambda: server.hits("/slow.rss"))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        hold.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "SIGTERM" in err and "harvest nightly (quick, slow)" in err
    # asked twice, Scrapy stopped and the harvest wrote its own run log (no SIGKILL needed)
    assert "finished with exit code 0" in err and "SIGKILL" not in err
    conn = sqlite3.connect(db)
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    runs = dict(conn.execute("select source_id, status from harvest_runs"))
    assert runs["slow"] == "interrupted"
    assert conn.execute("select count(*) from resource_sources where source_id = 'slow'").fetchone()[0] == 0
