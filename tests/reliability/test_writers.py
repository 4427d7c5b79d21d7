"""One catalog, one writer: overlapping harvests, a first run raced by two harvests, every
writing command waiting for the writer lock (or giving up with exit code 75), and a catalog
kept busy by another program: retried, then the source fails loudly, nothing dropped quietly.

Issue 21, items 9 and 10: two harvests at once used to lose one side's items ("database is
locked", sources ending `warning`, both exiting 0), and two first runs raced their migrations
("table sources already exists").
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from pipeline.store import open_db
from pipeline.writelock import EXIT_LOCKED, lock_path, writer_lock
from tests.conftest import ROOT, run_cli
from tests.reliability.helpers import connect, feed_source, harvest, items_for, rss, runs, write_registry
from tests.server import StubServer, ok, slow

ENTRIES = 300
SOURCES = 10


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "ILLHUB_NETWORK": "loopback", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "illhub", *args], cwd=ROOT, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def harvest_args(registry, db, *extra: str) -> list[str]:
    return ["harvest", "--registry", str(registry), "--db", str(db), "--delay", "0.01", "--quiet", *extra]


def resource_count(db) -> int:
    with connect(db) as conn:
        return conn.execute("select count(*) from resources").fetchone()[0]


@pytest.fixture(scope="module")
def two_registries(tmp_path_factory):
    """Two registries of ten feeds of 300 entries: two harvests write at the same time (before the
    writer lock, the second writer's transactions met "database is locked" within seconds)."""
    tmp = tmp_path_factory.mktemp("writers")
    with StubServer("127.0.0.81") as server:
        registries = []
        for side in ("a", "b"):
            sources = []
            for i in range(SOURCES):
                sid = f"{side}{i}"
                server.route(f"/{sid}", slow(ok(rss(items_for(sid, ENTRIES, base="http://127.0.0.1:9/"))), 0.05))
                sources.append(feed_source(sid, server.url(f"/{sid}"), max_items=ENTRIES))
            registries.append(write_registry(tmp / f"registry-{side}.yaml", sources))
        yield registries


def test_two_harvests_at_once_store_everything(two_registries, tmp_path):
    db = tmp_path / "catalog.db"
    first = start(*harvest_args(two_registries[0], db))
    time.sleep(0.3)
    second = start(*harvest_args(two_registries[1], db, "--lock-wait", "120"))
    out1, err1 = first.communicate(timeout=120)
    out2, err2 = second.communicate(timeout=120)
    assert first.returncode == 0, out1 + err1
    assert second.returncode == 0, out2 + err2
    assert "Traceback" not in err1 + err2
    assert resource_count(db) == 2 * SOURCES * ENTRIES  # nothing lost on either side
    latest = runs(db)
    assert {sid: row["status"] for sid, row in latest.items()} == {f"{s}{i}": "ok" for s in "ab" for i in range(SOURCES)}
    assert all(row["items_new"] == ENTRIES for row in latest.values())


def test_first_run_raced_by_two_harvests(two_registries, tmp_path):
    """Five trials: two harvests start together on a catalog that does not exist yet."""
    for trial in range(5):
        db = tmp_path / f"new-{trial}" / "catalog.db"
        procs = [start(*harvest_args(reg, db, "--lock-wait", "120")) for reg in two_registries]
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, (trial, out, err)
            assert "Traceback" not in err and "already exists" not in err
        assert resource_count(db) == 2 * SOURCES * ENTRIES
        with connect(db) as conn:
            names = [r[0] for r in conn.execute("select name from _sqlite_migrations")]
        assert len(names) == len(set(names))


_MIGRATE = """
import sys
from sqlite_utils import Database
from pipeline import migrations
db = Database(sys.argv[1])
db.execute("PRAGMA busy_timeout = 20000")
migrations.apply(db)
"""


def test_migrations_are_idempotent_without_the_lock(tmp_path):
    """Four processes migrating one new catalog at once, bypassing illhub's writer lock (an
    older illhub, a script): each migration is applied once, none fails."""
    db = tmp_path / "raw.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _MIGRATE, str(db)], cwd=ROOT, env=env,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    from pipeline import migrations

    conn = sqlite3.connect(db)
    rows = [r[0] for r in conn.execute("select name from _sqlite_migrations order by id")]
    assert rows == [m.name for m in migrations.migrations._migrations]


@pytest.fixture
def small_catalog(tmp_path):
    with StubServer("127.0.0.82") as server:
        server.route("/feed", ok(rss(items_for("small", 5, base="http://127.0.0.1:9/"))))
        registry = write_registry(tmp_path / "registry.yaml", [feed_source("small", server.url("/feed"))])
        db = tmp_path / "catalog.db"
        assert harvest(registry, db).returncode == 0
        yield registry, db, server


WRITERS = {
    "harvest": lambda reg, db, shard: ["harvest", "--registry", str(reg), "--db", str(db), "--quiet"],
    "check-links": lambda reg, db, shard: ["check-links", "--registry", str(reg), "--db", str(db), "--quiet",
                                           "--older-than", "0"],
    "reprocess": lambda reg, db, shard: ["reprocess", "--db", str(db)],
    "merge": lambda reg, db, shard: ["merge", "--db", str(db), str(shard)],
}


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_every_writing_command_waits_for_the_writer_lock_then_gives_up(small_catalog, command, tmp_path):
    registry, db, _server = small_catalog
    shard = tmp_path / "shard.db"
    open_db(shard).close()
    before = resource_count(db)
    with writer_lock(db, "harvest"):
        start_time = time.monotonic()
        r = run_cli(*WRITERS[command](registry, db, shard), "--lock-wait", "1", timeout=60)
        waited = time.monotonic() - start_time
    assert r.returncode == EXIT_LOCKED, (r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr
    assert lines[0].startswith(f"waiting for {db}: another 'illhub harvest' (pid {os.getpid()}")
    assert lines[-1].startswith(f"error: {db} is being written by another 'illhub harvest' (pid {os.getpid()}")
    assert "--lock-wait" in lines[-1] and len(lines) == 2
    assert waited >= 1
    assert resource_count(db) == before
    # once the lock is free the same command runs
    r = run_cli(*WRITERS[command](registry, db, shard), "--lock-wait", "5", timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_the_lock_dies_with_its_holder(small_catalog):
    """kill -9 of the holder leaves no stale lock: the next writer goes ahead at once."""
    registry, db, _server = small_catalog
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom pipeline.writelock import writer_lock\n"
        "with writer_lock(sys.argv[1], 'harvest'):\n    print('held', flush=True)\n    time.sleep(60)\n"), str(db)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    r = run_cli("reprocess", "--db", str(db), "--lock-wait", "0.5")
    assert r.returncode == EXIT_LOCKED and f"pid {holder.pid}" in r.stderr
    holder.kill()
    holder.wait()
    assert lock_path(db).exists()
    r = run_cli("reprocess", "--db", str(db), "--lock-wait", "0")
    assert r.returncode == 0, r.stderr


def _hold_write_lock(db, seconds: float, taken: threading.Event) -> threading.Thread:
    """Another program (not illhub) holding the catalog's SQLite write lock for ``seconds``."""

    def hold() -> None:
        conn = sqlite3.connect(db, timeout=30, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    return thread


def _busy_web(tmp_path, server, other, hold_seconds: float):
    """A 'victim' feed whose request makes another program take the write lock before the
    answer is sent (so its batch meets a locked catalog), and on another host a feed that
    answers once the lock is free again (so the crawl, and the runs' closing, end after it)."""
    taken = threading.Event()
    holders: list[threading.Thread] = []
    body = rss(items_for("victim", 20, base="http://127.0.0.1:9/"))

    def victim(request):
        if not holders:
            holders.append(_hold_write_lock(tmp_path / "catalog.db", hold_seconds, taken))
            taken.wait(10)
        return 200, {"Content-Type": "application/rss+xml"}, body

    server.route("/victim", victim)
    other.route("/later", slow(ok(rss(items_for("later", 5, base="http://127.0.0.1:9/"))), hold_seconds + 2))
    registry = write_registry(tmp_path / "registry.yaml", [feed_source("victim", server.url("/victim")),
                                                          feed_source("later", other.url("/later"))])
    db = tmp_path / "catalog.db"
    open_db(db).close()
    return registry, db, holders


def test_a_busy_catalog_fails_the_source_loudly_and_loses_nothing(tmp_path):
    with StubServer("127.0.0.83") as server, StubServer("127.0.0.85") as other:
        registry, db, holders = _busy_web(tmp_path, server, other, hold_seconds=6)
        r = harvest(registry, db, env={"ILLHUB_BUSY_TIMEOUT": "0.5"}, timeout=120)
        holders[0].join(10)
        assert r.returncode == 1, r.stdout + r.stderr  # a failed source: not a quiet 0
        assert "Traceback" not in r.stderr
        latest = runs(db)
        assert latest["victim"]["status"] == "failed"
        assert "busy" in latest["victim"]["error"] and "locked" not in latest["victim"]["status"]
        assert latest["later"]["status"] == "ok"
        with connect(db) as conn:
            assert conn.execute("select count(*) from resources where source_id = 'victim'").fetchone()[0] == 0
        # its document was not marked as fetched: the next harvest stores all of it
        r = harvest(registry, db, "--source", "victim", timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        with connect(db) as conn:
            assert conn.execute("select count(*) from resources where source_id = 'victim'").fetchone()[0] == 20


def test_a_briefly_busy_catalog_is_waited_for(tmp_path):
    """Held for two seconds, with a busy timeout of one: the first attempts time out, a later
    one gets through, and every item is stored."""
    with StubServer("127.0.0.84") as server, StubServer("127.0.0.86") as other:
        registry, db, holders = _busy_web(tmp_path, server, other, hold_seconds=2.0)
        r = harvest(registry, db, env={"ILLHUB_BUSY_TIMEOUT": "1"}, timeout=120)
        holders[0].join(10)
        assert r.returncode == 0, r.stdout + r.stderr
        latest = runs(db)
        assert latest["victim"]["status"] == "ok" and latest["victim"]["items_new"] == 20


def test_a_catalog_busy_from_the_start_is_one_line_and_exit_75(small_catalog):
    registry, db, _server = small_catalog
    taken = threading.Event()
    holder = _hold_write_lock(db, 5, taken)
    taken.wait(10)
    r = harvest(registry, db, env={"ILLHUB_BUSY_TIMEOUT": "0.5"}, timeout=60)
    holder.join(10)
    assert r.returncode == EXIT_LOCKED, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    [line] = [x for x in r.stderr.splitlines() if x.strip()]
    assert line.startswith(f"error: {db} is busy: another program kept it locked")
