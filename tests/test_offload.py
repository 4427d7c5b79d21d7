"""Parse workers (harvesters/offload.py): the catalog a harvest builds is the same whether
feeds are parsed in worker processes or in the harvest process; errors come back as they
would inline; a worker that dies fails its document only, and the pool starts again."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from harvesters.offload import AUTO_MAX_WORKERS, ParsePool, WorkerDied, auto_workers, parse_and_prepare
from harvesters.parsers.feed import NotAFeed, feed_batch
from tests.conftest import run_cli

FEED = (Path(__file__).parent / "fixtures" / "feed").resolve()


def _catalog(db: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(db)
    stamp = {"first_seen", "last_seen", "last_changed", "fetched_at", "started_at", "finished_at", "next_attempt",
             "run_group", "id", "last_run_id", "run_id"}

    def rows(table: str, order: str) -> list[tuple]:
        cols = [r[1] for r in conn.execute(f"pragma table_info({table})") if r[1] not in stamp or
                (table == "resources" and r[1] == "id")]
        return conn.execute(f"select {', '.join(cols)} from {table} order by {order}").fetchall()

    out = {
        "resources": rows("resources", "id"),
        "resource_sources": rows("resource_sources", "resource_id, source_id"),
        "raw_entries": rows("raw_entries", "resource_id, source_id"),
        "runs": conn.execute("select source_id, status, items_seen, items_new, items_updated, http_status, "
                             "documents, warning, error from harvest_runs order by source_id").fetchall(),
    }
    conn.close()
    return out


def test_workers_build_the_same_catalog_as_the_harvest_process(demo_server, demo_registry_file, tmp_path):
    catalogs = {}
    for workers in ("0", "2"):
        db = tmp_path / f"w{workers}.db"
        result = run_cli("harvest", "--registry", str(demo_registry_file), "--db", str(db), "--delay", "0.01",
                         "--quiet", "--workers", workers)
        assert result.returncode == 1, result.stderr  # demo-moved-feed answers 404 on purpose
        catalogs[workers] = _catalog(db)
    inline, pooled = catalogs["0"], catalogs["2"]
    assert len(inline["resources"]) > 40
    for table in inline:
        assert pooled[table] == inline[table], table
    statuses = {row[0]: row[1] for row in inline["runs"]}
    assert statuses["demo-moved-feed"] == "failed" and statuses["demo-riverbend-messy"] == "warning"


def test_worker_errors_read_as_inline_ones():
    html = b"<!doctype html><html><head><title>Blog</title></head><body>not a feed</body></html>"
    kwargs = {"body": html, "url": "https://example.org/blog/", "source_id": "s"}
    with pytest.raises(NotAFeed) as inline:
        feed_batch(**kwargs)
    pool = ParsePool(1)
    try:
        with pytest.raises(NotAFeed) as pooled:
            asyncio.run(pool.run(feed_batch, kwargs, {}))
    finally:
        pool.close()
    assert str(pooled.value) == str(inline.value)
    assert "HTML page" in str(pooled.value)


def _die(**kwargs):
    os._exit(3)


def test_a_dying_worker_fails_its_document_and_the_pool_starts_again():
    body = (FEED / "rss2.rss").read_bytes()
    pool = ParsePool(1)
    try:
        with pytest.raises(WorkerDied, match="parser process stopped twice"):
            asyncio.run(pool.run(_die, {}, {}))
        batch = asyncio.run(pool.run(feed_batch, {"body": body, "url": "https://example.org/feed", "source_id": "s"},
                                     {"source_topics": ["borrowing"]}))
    finally:
        pool.close()
    assert pool.restarts == 2 and pool.documents == 1  # tried twice, then the next document is parsed
    assert batch.resources == [] and batch.prepared and batch.prepared_result["seen"] >= len(batch.prepared)
    for resource, _raw, reasons, _encoded in batch.prepared.values():
        assert "borrowing" in resource.topics and reasons["borrowing"] == "registry topic of source 's'"


def test_prepared_in_a_worker_equals_prepared_here():
    body = (FEED / "malformed.xml").read_bytes()  # warnings come back too
    kwargs = {"body": body, "url": "https://example.org/feed", "source_id": "s"}
    here = parse_and_prepare(feed_batch, kwargs, {"organization": "Org"})
    pool = ParsePool(1)
    try:
        there = asyncio.run(pool.run(feed_batch, kwargs, {"organization": "Org"}))
    finally:
        pool.close()
    assert there.prepared == here.prepared and there.prepared_result == here.prepared_result
    assert there.warnings == here.warnings and here.warnings and here.prepared


def test_forked_workers_start_at_once_spawned_ones_with_the_first_document():
    import subprocess
    import sys
    import threading

    # a process with one thread (as the harvest is when it starts its pool): forked workers
    root = Path(__file__).resolve().parent.parent
    code = ("from harvesters.offload import ParsePool\n"
            "if __name__ == '__main__':\n"
            "    p = ParsePool(2); print(p.method, len(p._executor._processes)); p.close()\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert out.stdout.split() == ["fork", "2"], out.stderr
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)  # a second thread: never fork
    other.start()
    try:
        pool = ParsePool(2)
        try:
            assert pool.method == "spawn"
            assert not pool._executor._processes  # nothing to parse yet (a harvest of 304s starts none)
            batch = asyncio.run(pool.run(feed_batch, {"body": (FEED / "rss2.rss").read_bytes(),
                                                      "url": "https://e.org/f", "source_id": "s"}, {}))
            assert batch.prepared and 1 <= len(pool._executor._processes) <= 2
        finally:
            pool.close()
    finally:
        stop.set()
        other.join()


def test_auto_workers():
    assert auto_workers(15, cpus=8) == 0  # a small harvest: not worth starting processes
    assert auto_workers(500, cpus=1) == 0
    assert auto_workers(500, cpus=2) == 2
    assert auto_workers(500, cpus=3) == 3
    assert auto_workers(500, cpus=64) == AUTO_MAX_WORKERS


def test_workers_option_is_checked(tmp_path):
    result = run_cli("harvest", "--registry", str(tmp_path / "none.yaml"), "--workers", "many")
    assert result.returncode == 2 and "--workers 'many'" in result.stderr


def test_workers_end_when_the_harvest_process_is_killed(tmp_path):
    """A harvest killed with SIGKILL leaves no parse worker behind."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        "from harvesters.offload import ParsePool, _warm\n"
        "if __name__ == '__main__':\n"
        "    pool = ParsePool(2)\n"
        "    pids = {pool._executor.submit(_warm).result() for _ in range(6)}\n"
        "    print(' '.join(map(str, sorted(pids))), flush=True)\n"
        "    time.sleep(60)\n"
    )
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root)})
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert pids and all(_alive(p) for p in pids)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if _alive(p)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_auto_counts_only_sources_without_a_cached_document():
    from types import SimpleNamespace

    from harvesters.conditional import FetchState
    from illhub.harvest import start_pool

    sources = [SimpleNamespace(id=f"feed-{i}", kind="feed") for i in range(40)]
    cached = {(s.id, f"https://e.org/{s.id}.rss"): object() for s in sources[:30]}
    fetch = FetchState(db=None, cache=cached, fingerprints={})
    # a nightly re-harvest: 30 of 40 feeds have validators, 10 new ones are parsed here
    assert start_pool(None, sources, fetch) is None
    # --refetch ignores the cache: all 40 will be parsed
    pool = start_pool(None, sources, FetchState(db=None, cache=cached, fingerprints={}, use_cache=False))
    try:
        assert (pool.workers if pool else 0) == auto_workers(40)  # (none on a one-core machine)
    finally:
        if pool is not None:
            pool.close()
    assert start_pool(0, sources, None) is None  # --workers 0


def _die_once(marker: str, **kwargs):
    """Kills its worker the first time (as an innocent document does when another one kills
    the worker it is queued on), then parses."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os._exit(3)
    return feed_batch(**kwargs)


def test_a_document_caught_in_a_dying_worker_is_tried_again(tmp_path):
    pool = ParsePool(1)
    try:
        batch = asyncio.run(pool.run(_die_once, {"marker": str(tmp_path / "m"), "body": (FEED / "rss2.rss").read_bytes(),
                                                 "url": "https://e.org/f", "source_id": "s"}, {}))
    finally:
        pool.close()
    assert pool.restarts == 1 and batch.prepared


def test_documents_go_to_the_store_in_the_order_they_arrived():
    """Parsed out of order, handed over in order; a failed document still releases its turn."""
    from harvesters.offload import ArrivalOrder

    async def scenario() -> list[int]:
        order, out = ArrivalOrder(), []

        async def document(ticket: int, parse_seconds: float, fails: bool = False) -> None:
            try:
                await asyncio.sleep(parse_seconds)
                if fails:
                    raise ValueError("unreadable")
                await order.turn(ticket)
                out.append(ticket)
            except ValueError:
                pass
            finally:
                order.release(ticket)

        tickets = [order.take() for _ in range(5)]
        await asyncio.gather(*(document(t, s, fails=(t == 2)) for t, s in zip(tickets, (0.05, 0.01, 0.0, 0.03, 0.0),
                                                                            strict=True)))
        return out

    assert asyncio.run(scenario()) == [0, 1, 3, 4]
