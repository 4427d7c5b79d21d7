"""Crash safety: kill -9 in the middle of a harvest's writes, Datasette reading while a
harvest writes, twenty harvests of unchanged sources, and secrets in the environment."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from catalog.app import make_datasette
from pipeline.store import open_db
from tests.conftest import ROOT
from tests.reliability.helpers import feed_source, harvest, items_for, rss, runs, write_registry
from tests.server import StubServer, ok, slow, status

SOURCES = 20
ENTRIES = 250  # per source: each source's batch is stored in one transaction


@pytest.fixture(scope="module")
def big_web(tmp_path_factory):
    """Twenty feeds of 250 entries, each answer a little slow so a harvest takes seconds."""
    tmp = tmp_path_factory.mktemp("crash")
    with StubServer("127.0.0.51") as server:
        sources = []
        for i in range(SOURCES):
            sid = f"big-{i:02d}"
            server.route(f"/{sid}", slow(ok(rss(items_for(sid, ENTRIES, base="http://127.0.0.1:9/"))), 0.08))
            sources.append(feed_source(sid, server.url(f"/{sid}"), max_items=ENTRIES))
        yield write_registry(tmp / "registry.yaml", sources), server


def start_harvest(registry, db, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ILLHUB_NETWORK": "loopback"}
    return subprocess.Popen([sys.executable, "-m", "illhub", "harvest", "--registry", str(registry), "--db", str(db),
                             "--delay", "0.01", "--quiet", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def count(db, table: str = "resources") -> int:
    if not os.path.exists(db):
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(f"select count(*) from {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # the schema is not there yet
    finally:
        conn.close()


def catalog_state(db) -> tuple[list[tuple], list[tuple]]:
    """What a harvest leaves, without the timestamps that differ between runs."""
    conn = sqlite3.connect(db)
    resources = conn.execute("select id, url, title, description, content_type, organization, source_id, published, "
                             "topics, systems, content_hash, status from resources order by id").fetchall()
    links = conn.execute("select resource_id, source_id from resource_sources order by 1, 2").fetchall()
    return resources, links


def integrity(db) -> None:
    conn = sqlite3.connect(db)
    assert conn.execute("pragma integrity_check").fetchall() == [("ok",)]
    conn.execute("insert into resources_fts(resources_fts) values ('integrity-check')")  # raises if the index drifted
    assert conn.execute("select count(*) from resources_fts").fetchone()[0] == conn.execute(
        "select count(*) from resources").fetchone()[0]
    conn.close()


def test_kill_9_during_writes_then_rerun_equals_a_clean_run(big_web, live_harvest, tmp_path):
    registry, _ = big_web
    db = tmp_path / "killed.db"
    proc = start_harvest(registry, db)
    deadline = time.monotonic() + 60
    while count(db) < 2 * ENTRIES:  # at least two sources stored: we are in the middle of the writes
        assert proc.poll() is None, "the harvest ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    integrity(db)
    stored = count(db)
    assert 0 < stored < SOURCES * ENTRIES
    assert stored % ENTRIES == 0  # whole batches only: no half-written source
    assert count(db, "resource_sources") == stored
    assert {r["status"] for r in runs(db).values()} >= {"running"}  # the killed runs say so...

    rerun = harvest(registry, db)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    integrity(db)
    conn = sqlite3.connect(db)
    statuses = dict(conn.execute("select status, count(*) from harvest_runs group by status").fetchall())
    assert statuses["interrupted"] >= 1 and statuses["ok"] == SOURCES and "running" not in statuses  # ...and then
    assert conn.execute("select count(*) - count(distinct url) from resources").fetchone()[0] == 0
    conn.close()

    clean = live_harvest["db"]  # the same web harvested in one go
    assert catalog_state(db) == catalog_state(clean)
    assert len(catalog_state(clean)[0]) == SOURCES * ENTRIES


@pytest.fixture(scope="module")
def live_harvest(big_web, tmp_path_factory):
    """A clean harvest of the big web, with Datasette reading the catalog all along."""
    registry, _ = big_web
    db = tmp_path_factory.mktemp("live") / "live.db"
    open_db(db).close()  # the catalog exists (empty) before it is served
    ds = make_datasette(db)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(ds.invoke_startup())
    name = db.stem
    paths = [f"/{name}/resources.json?_size=5", f"/{name}.json?sql=select+count(*)+as+n+from+resources&_shape=array",
             f"/{name}/resources.json?_search=interlibrary&_size=5", f"/{name}/harvest_runs.json"]
    failures, seen, counts = [], 0, []
    proc = start_harvest(registry, db)
    try:
        rounds = 0
        while proc.poll() is None:
            rounds += 1
            time.sleep(0.05)  # a reader, not a load test: leave the (shared) CPU to the harvest
            for path in paths + ([f"/{name}/resources"] if rounds % 5 == 0 else []):
                r = loop.run_until_complete(ds.client.get(path))
                seen += 1
                if r.status_code != 200 or "database is locked" in r.text.lower():
                    failures.append((path, r.status_code, r.text[:200]))
                elif "sql=" in path:
                    counts.append(r.json()[0]["n"])
    finally:
        proc.wait(timeout=120)
        loop.close()
    return {"db": db, "proc": proc, "failures": failures, "seen": seen, "counts": counts}


def test_datasette_reads_while_a_harvest_writes(live_harvest):
    assert live_harvest["proc"].returncode == 0, live_harvest["proc"].stderr.read()
    assert live_harvest["failures"] == []  # never "database is locked", never an error page
    assert live_harvest["seen"] >= 20
    counts = live_harvest["counts"]
    assert counts == sorted(counts) and len(set(counts)) > 1  # it watched the catalog grow
    assert count(live_harvest["db"]) == SOURCES * ENTRIES


@pytest.mark.slow
def test_twenty_harvests_of_unchanged_sources_stay_the_same_size(tmp_path):
    with StubServer("127.0.0.52") as server:
        sources = []
        for i in range(3):
            sid = f"steady-{i}"
            server.route(f"/{sid}", ok(rss(items_for(sid, 40, base="http://127.0.0.1:9/"))))
            sources.append(feed_source(sid, server.url(f"/{sid}")))
        registry = write_registry(tmp_path / "registry.yaml", sources)
        db = tmp_path / "steady.db"
        sizes = []
        for n in range(20):
            result = harvest(registry, db)
            assert result.returncode == 0, (n, result.stdout + result.stderr)
            conn = sqlite3.connect(db)
            conn.execute("pragma wal_checkpoint(truncate)")
            rows = {t: conn.execute(f"select count(*) from {t}").fetchone()[0]
                    for t in ("resources", "resource_sources", "raw_entries", "resources_fts")}
            pages = dict(conn.execute("select name, sum(pgsize) from dbstat group by name").fetchall())
            fts = conn.execute("select sum(length(block)) from resources_fts_data").fetchone()[0]
            runs_now = conn.execute("select count(*) from harvest_runs").fetchone()[0]
            conn.close()
            catalog_bytes = sum(v for k, v in pages.items() if "harvest_runs" not in k and k != "sqlite_sequence")
            sizes.append((rows, catalog_bytes, fts))
            assert runs_now == 3 * (n + 1)
    assert sizes[0][0] == {"resources": 120, "resource_sources": 120, "raw_entries": 120, "resources_fts": 120}
    # after the first harvest nothing but the run log grows: same rows, same pages, same FTS index
    assert all(s == sizes[1] for s in sizes[1:]), sizes
    assert sizes[1][0] == sizes[0][0] and sizes[1][2] == sizes[0][2]


SECRET = "ILLHUB-TEST-SECRET-7d1f0c9a"
API_KEY = "AIzaTESTKEY-0000-do-not-leak-5b2e"


def test_secrets_in_the_environment_never_leak(tmp_path, monkeypatch):
    secret_env = {"ILLHUB_TEST_SECRET": SECRET, "YOUTUBE_API_KEY": API_KEY, "GOOGLE_API_KEY": API_KEY,
                  "ILLHUB_API_KEY": API_KEY}
    with StubServer("127.0.0.53") as server:
        server.route("/good", ok(rss(items_for("good", 3))))
        server.route("/broken", status(500, b"internal error"))
        server.route("/html", ok("<!doctype html><html><body>no feed</body></html>", "text/html"))
        registry = write_registry(tmp_path / "registry.yaml", [
            feed_source("good", server.url("/good")), feed_source("broken", server.url("/broken")),
            feed_source("html", server.url("/html")), feed_source("down", "http://127.0.0.1:9/feed"),
        ])
        db = tmp_path / "catalog.db"
        result = harvest(registry, db, "-vv", "--timeout", "3", env=secret_env)
    assert result.returncode == 1
    assert "Scrapy" in result.stderr and "DEBUG" in result.stderr  # the most verbose log really was on
    outputs = {"stdout": result.stdout, "stderr": result.stderr}
    for f in tmp_path.iterdir():
        if f.name.startswith("catalog.db"):
            outputs[f.name] = f.read_bytes().decode("latin-1")
    for env_name, value in secret_env.items():
        monkeypatch.setenv(env_name, value)
    ds = make_datasette(db)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(ds.invoke_startup())
        for path in ("/", f"/{db.stem}", f"/{db.stem}/harvest_runs", f"/{db.stem}/sources", "/-/settings.json",
                     "/-/metadata.json", "/-/plugins.json", "/-/versions.json", "/-/databases.json",
                     "/-/actor.json", "/-/threads.json", f"/{db.stem}/harvest_runs.csv"):
            r = loop.run_until_complete(ds.client.get(path))
            outputs[path] = r.text
    finally:
        loop.close()
    for where, text in outputs.items():
        assert SECRET not in text and API_KEY not in text, where
    assert runs(db)["broken"]["status"] == "failed" and "HTTP 500" in runs(db)["broken"]["error"]
