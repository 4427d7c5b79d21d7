"""Backups of what cannot be harvested again (first-seen dates, link-check history, run
logs): consistent copies taken while a harvest writes, rotated, refused when the catalog is
damaged, and restored.

Issue 21, item 12.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from pipeline.backup import backups_of
from pipeline.dberrors import EXIT_CATALOG
from pipeline.writelock import EXIT_LOCKED, writer_lock
from tests.conftest import ROOT, run_cli
from tests.reliability.helpers import connect, feed_source, harvest, items_for, rss, write_registry
from tests.server import StubServer, ok, slow


def consistent(path) -> dict:
    """Invariants that hold only for a snapshot of one moment: every resource attributed,
    the trigger-kept tag counts equal to the resources' topics, the full-text index whole."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("pragma integrity_check").fetchall() == [("ok",)]
        conn.execute("insert into resources_fts(resources_fts) values ('integrity-check')")
        resources = conn.execute("select count(*) from resources").fetchone()[0]
        assert conn.execute("select count(*) from resources_fts").fetchone()[0] == resources
        assert conn.execute("select count(*) from resources where id not in "
                            "(select resource_id from resource_sources)").fetchone()[0] == 0
        counted = dict(conn.execute("select value, n from tag_counts where col = 'topics' and n > 0"))
        actual = dict(conn.execute("select j.value, count(*) from resources, json_each(resources.topics) j "
                                   "group by j.value"))
        assert counted == actual
        return {"resources": resources, "runs": conn.execute("select count(*) from harvest_runs").fetchone()[0]}
    finally:
        conn.rollback()
        conn.close()


def test_backups_taken_while_a_harvest_writes_are_consistent(tmp_path):
    with StubServer("127.0.0.89") as server:
        sources = []
        for i in range(12):
            sid = f"busy{i}"
            server.route(f"/{sid}", slow(ok(rss(items_for(sid, 300, base="http://127.0.0.1:9/"))), 0.3))
            sources.append(feed_source(sid, server.url(f"/{sid}"), max_items=300))
        registry = write_registry(tmp_path / "registry.yaml", sources)
        db = tmp_path / "catalog.db"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ILLHUB_NETWORK": "loopback"}
        proc = subprocess.Popen([sys.executable, "-m", "illhub", "harvest", "--registry", str(registry), "--db",
                                 str(db), "--quiet", "--delay", "0.3", "--workers", "0"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = []
        while proc.poll() is None and len(seen) < 6:
            if db.exists():
                r = run_cli("backup", "--db", str(db), "--keep", "10")
                if r.returncode == 0:
                    seen.append(consistent(backups_of(db, tmp_path / "backups")[-1]))
            time.sleep(0.2)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
    assert len(seen) >= 2, seen
    partial = [s["resources"] for s in seen if 0 < s["resources"] < 12 * 300]
    assert partial, seen  # some were taken in the middle of the harvest, and still consistent
    r = run_cli("backup", "--db", str(db), "--keep", "3")
    assert r.returncode == 0
    assert consistent(backups_of(db, tmp_path / "backups")[-1])["resources"] == 12 * 300
    assert len(backups_of(db, tmp_path / "backups")) == 3  # rotated: the newest three


@pytest.fixture
def history(tmp_path):
    """A catalog with what a harvest cannot give back: first-seen dates, link-check history."""
    with StubServer("127.0.0.90") as server:
        server.route("/a", ok(rss(items_for("a", 10, base=server.url("/page/")))))
        for i in range(10):
            server.route(f"/page/a/post-{i}", ok("<html><title>post</title></html>", "text/html"))
        registry = write_registry(tmp_path / "registry.yaml", [feed_source("a", server.url("/a"))])
        db = tmp_path / "catalog.db"
        assert harvest(registry, db).returncode == 0
        r = run_cli("check-links", "--registry", str(registry), "--db", str(db), "--quiet", "--older-than", "0",
                    "--allow-private-network", "--delay", "0.01")
        assert r.returncode == 0, r.stdout + r.stderr
        yield registry, db, server


def _history(db) -> tuple:
    with connect(db) as conn:
        return (conn.execute("select id, first_seen, link_status, link_checked_at from resources order by id").fetchall(),
                conn.execute("select resource_id, outcome, checked_at from link_checks order by id").fetchall(),
                conn.execute("select source_id, status, started_at from harvest_runs order by id").fetchall())


def test_restore_brings_back_the_history_and_keeps_the_replaced_file(history, tmp_path):
    registry, db, server = history
    r = run_cli("backup", "--db", str(db))
    assert r.returncode == 0 and "checked" in r.stdout
    saved = _history(db)
    [backup] = backups_of(db, tmp_path / "backups")
    # the catalog is lost (overwritten), after another harvest added to it
    server.route("/a", ok(rss(items_for("a", 12, base=server.url("/page/")))))
    assert harvest(registry, db).returncode == 0
    db.write_bytes(os.urandom(db.stat().st_size))
    r = run_cli("doctor", "--db", str(db))
    assert r.returncode == 1 and f"'illhub restore {backup} --db {db}'" in r.stdout
    r = run_cli("restore", "--db", str(db), str(backup))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "restored" in r.stdout and ".replaced-" in r.stdout
    assert _history(db) == saved
    assert run_cli("doctor", "--db", str(db)).returncode == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("catalog.db.replaced-")]
    assert aside and not any(p.name.endswith("-wal") and p.stat().st_size for p in tmp_path.glob("catalog.db-wal"))
    # and the next harvest catches up, keeping the restored first-seen dates
    assert harvest(registry, db).returncode == 0
    with connect(db) as conn:
        rows = dict(conn.execute("select id, first_seen from resources").fetchall())
    assert len(rows) == 12
    assert all(rows[rid] == first for rid, first, _s, _c in saved[0])


def test_restore_refuses_a_damaged_backup_and_waits_for_writers(history, tmp_path):
    registry, db, _server = history
    assert run_cli("backup", "--db", str(db)).returncode == 0
    [backup] = backups_of(db, tmp_path / "backups")
    damaged = tmp_path / "damaged.db"
    data = bytearray(backup.read_bytes())
    data[len(data) // 2:] = os.urandom(len(data) - len(data) // 2)
    damaged.write_bytes(bytes(data))
    before = db.read_bytes()
    r = run_cli("restore", "--db", str(db), str(damaged))
    assert r.returncode == EXIT_CATALOG and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: {damaged}")
    assert db.read_bytes() == before
    with writer_lock(db, "harvest"):
        r = run_cli("restore", "--db", str(db), str(backup), "--lock-wait", "1")
    assert r.returncode == EXIT_LOCKED, r.stderr
    assert db.read_bytes() == before
