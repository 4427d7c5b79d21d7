"""The write-behind of a harvest with parse workers (harvesters/writebehind.py): batches the
workers prepared are written by a thread of its own, and an adversary's checks hold: every
other use of the connection waits for it, a source's storage error fails that source only, an
unexpected error in the writer stops storing and says so in one line without a hang, and a
harvest interrupted (SIGINT, kill -9) keeps what it committed in a consistent catalog."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest

from harvesters.spider import HarvestContext, SourceState
from harvesters.store_pipeline import StorePipeline
from harvesters.writebehind import WaitingConnection, Writer
from pipeline.packed import pack_prepared
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, prepare_batch, start_run
from pipeline.taxonomy import default_taxonomy
from tests.conftest import ROOT
from tests.test_crash import ITEMS, count_by_source, env, start_harvest, wait_for


def _pipeline(tmp_path, sources=("a", "b", "c")):
    db = open_db(tmp_path / "c.db")
    states = {}
    for sid in sources:
        source = SimpleNamespace(id=sid, topics=[], organization=None, systems=[], uses_network=True,
                                 on_topic_only=False)
        states[sid] = SourceState(source=source, run_id=start_run(db, sid, "g"))
    context = HarvestContext(db=db, states=states, taxonomy=default_taxonomy(), db_path=str(tmp_path / "c.db"))
    pipeline = StorePipeline()
    pipeline.crawler = SimpleNamespace(spider=SimpleNamespace(context=context))
    pipeline._writer = Writer(context.db)  # what open_spider does when the harvest has parse workers
    return pipeline, context


def _prepared(sid: str, n: int, packed: bool = True) -> Batch:
    batch = Batch(sid, [Resource(url=f"https://{sid}.example.org/{i}", title=f"Item {i}") for i in range(n)],
                  url=f"https://{sid}.example.org/feed")
    prepared, result = prepare_batch(batch, taxonomy=default_taxonomy())
    batch.prepared = pack_prepared(prepared) if packed else prepared
    batch.prepared_result = dict(result)
    batch.resources = []
    return batch


def _store(pipeline, *batches, timeout=20.0):
    """Hand the batches to the pipeline as Scrapy does (concurrently) and wait for them all."""
    async def run():
        return await asyncio.wait_for(asyncio.gather(*(pipeline.process_item(b) for b in batches)), timeout)
    return asyncio.run(run())


def _count(path, sid=None) -> int:
    conn = sqlite3.connect(path)
    try:
        if sid is None:
            return conn.execute("select count(*) from resources").fetchone()[0]
        return conn.execute("select count(*) from resource_sources where source_id = ?", [sid]).fetchone()[0]
    finally:
        conn.close()


def test_prepared_batches_are_written_by_the_writer_and_counted(tmp_path):
    pipeline, context = _pipeline(tmp_path)
    threads = []
    real = pipeline._write_in_writer
    pipeline._write_in_writer = lambda *a: (threads.append(threading.current_thread().name), real(*a))[1]
    _store(pipeline, _prepared("a", 3), _prepared("b", 2, packed=False))
    assert threads and all(t.startswith("illhub-store") for t in threads)
    assert (context.states["a"].new, context.states["b"].new) == (3, 2)
    assert isinstance(context.db.conn, WaitingConnection)
    pipeline.close_spider()
    assert isinstance(context.db.conn, sqlite3.Connection)  # its own connection back
    assert _count(tmp_path / "c.db") == 5 and not context.db.conn.in_transaction


def test_every_other_use_of_the_connection_waits_for_the_writer(tmp_path):
    pipeline, context = _pipeline(tmp_path)
    order = []
    release = threading.Event()

    def slow_write():
        release.wait(5)
        time.sleep(0.1)
        context.db.conn.execute("BEGIN IMMEDIATE")
        context.db.conn.execute("INSERT INTO sources (id, name, kind) VALUES ('w', 'w', 'feed')")
        order.append("writer")

    pipeline._writer.submit(slow_write)
    release.set()
    in_tx = context.db.conn.in_transaction  # waits: the writer's transaction is open by then
    order.append("reader")
    assert order == ["writer", "reader"] and in_tx
    pipeline._writer.submit(lambda: context.db.conn.execute("COMMIT"))
    assert context.db.execute("select count(*) from sources where id = 'w'").fetchone()[0] == 1
    pipeline.close_spider()


def test_a_source_whose_batch_cannot_be_stored_fails_alone(tmp_path, monkeypatch):
    import harvesters.store_pipeline as sp

    real = sp.write_prepared

    def failing(db, source_id, *args, **kwargs):
        if source_id == "b":
            raise RuntimeError("boom in b")
        return real(db, source_id, *args, **kwargs)

    monkeypatch.setattr(sp, "write_prepared", failing)
    pipeline, context = _pipeline(tmp_path)
    _store(pipeline, _prepared("a", 3), _prepared("b", 2), _prepared("c", 4))
    pipeline.close_spider()
    b = context.states["b"]
    assert b.store_failures == 1 and b.errors == ["could not save to the catalog (2 entries): RuntimeError: boom in b"]
    assert b.status == "failed"
    assert context.problem is None
    for sid, n in (("a", 3), ("c", 4)):
        assert context.states[sid].new == n and not context.states[sid].errors
        assert _count(tmp_path / "c.db", sid) == n
    assert _count(tmp_path / "c.db", "b") == 0


def test_an_unexpected_error_in_the_writer_stops_storing_in_one_line_and_keeps_what_was_committed(tmp_path, monkeypatch):
    pipeline, context = _pipeline(tmp_path)
    _store(pipeline, _prepared("a", 3))
    pipeline.commit()  # committed: must survive what follows
    calls = []

    def broken(item, ctx):
        calls.append(item.source_id)
        ctx.db.conn.execute("BEGIN IMMEDIATE") if not ctx.db.conn.in_transaction else None
        ctx.db.conn.execute("INSERT INTO sources (id, name, kind) VALUES ('half', 'half', 'feed')")
        raise RuntimeError("a bug\nover two lines")  # not one of the errors the writer handles itself

    monkeypatch.setattr(pipeline, "_write_in_writer", broken)
    started = time.monotonic()
    _store(pipeline, _prepared("b", 2))  # returns: no hang
    assert time.monotonic() - started < 10
    monkeypatch.undo()
    _store(pipeline, _prepared("c", 4))  # after the failure nothing more is stored
    pipeline.close_spider()
    problem = context.problem
    assert problem is not None and problem.kind == "writer" and problem.exit_code == 1
    message = str(problem)
    assert "\n" not in message and "RuntimeError" in message and "a bug over two lines" in message
    b, c = context.states["b"], context.states["c"]
    assert b.store_failures == 1 and b.status == "failed" and "RuntimeError" in b.errors[0]
    assert c.store_failures == 1 and c.status == "failed" and c.new == 0
    assert _count(tmp_path / "c.db", "a") == 3  # committed before: kept
    assert _count(tmp_path / "c.db", "b") == 0 and _count(tmp_path / "c.db", "c") == 0
    conn = sqlite3.connect(tmp_path / "c.db")
    assert conn.execute("select count(*) from sources where id = 'half'").fetchone()[0] == 0  # rolled back
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_a_failed_commit_in_the_writer_is_reported_for_each_source_it_held(tmp_path, monkeypatch):
    pipeline, context = _pipeline(tmp_path)
    _store(pipeline, _prepared("a", 2), _prepared("b", 1))
    real = pipeline._commit

    def failing_commit(due_only):
        conn = context.db.conn
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # as a commit that fails leaves it (disk I/O error)
            sources, pipeline._pending_sources = pipeline._pending_sources, set()
            for sid in sorted(sources):
                pipeline._not_stored(context, sid, sqlite3.OperationalError("disk I/O error"))
        return real(due_only)

    monkeypatch.setattr(pipeline, "_commit", failing_commit)
    pipeline.close_spider()
    for sid in ("a", "b"):
        state = context.states[sid]
        assert state.store_failures == 1 and "disk I/O error" in state.errors[0], state.errors
    assert _count(tmp_path / "c.db") == 0


# -- whole harvests with two parse workers, interrupted ------------------------------------

def _harvest(server, tmp_path, names):
    return start_harvest(server, tmp_path, names, "--workers", "2", stdout=subprocess.PIPE)


def _check_consistent(db, names):
    conn = sqlite3.connect(db)
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert conn.execute("pragma foreign_key_check").fetchall() == []
    counts = count_by_source(db)
    assert all(n == ITEMS for n in counts.values()), counts  # no half-written batch
    assert conn.execute("select count(*) from resources_fts").fetchone()[0] == sum(counts.values())
    conn.execute("INSERT INTO resources_fts(resources_fts, rank) VALUES ('integrity-check', 1)")
    conn.rollback()  # (that statement opened a transaction: the catalog's lock is left free)
    return conn, counts


def test_kill_9_with_parse_workers_keeps_what_was_committed(server, tmp_path):
    names = [f"big{i}" for i in range(5)]
    proc, db, hold, registry = _harvest(server, tmp_path, names)
    try:
        wait_for(lambda: count_by_source(db))
        assert proc.poll() is None
        seen = count_by_source(db)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        hold.set()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    conn, counts = _check_consistent(db, names)
    assert set(seen) <= set(counts)  # what a reader saw committed is still there
    assert {r[0] for r in conn.execute("select status from harvest_runs")} == {"running"}
    again = subprocess.run(proc.args, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    assert count_by_source(db) == {n: ITEMS for n in [*names, "slow"]}
    assert dict(conn.execute("select status, count(*) from harvest_runs group by status")) == {"interrupted": 6, "ok": 6}


@pytest.mark.parametrize("sig, when", [(signal.SIGINT, "all stored"), (signal.SIGTERM, "all stored"),
                                       (signal.SIGINT, "first stored")])
def test_a_stop_with_parse_workers_keeps_what_was_stored_and_records_the_runs(server, tmp_path, sig, when):
    names = [f"big{i}" for i in range(5)]
    proc, db, hold, _registry = _harvest(server, tmp_path, names)
    try:
        wait_for(lambda: len(count_by_source(db)) >= (len(names) if when == "all stored" else 1), timeout=60)
        proc.send_signal(sig)
        time.sleep(0.5)
        if proc.poll() is None:
            proc.send_signal(sig)  # asked twice: Scrapy stops without waiting for the held download
        out, err = proc.communicate(timeout=60)
    finally:
        hold.set()
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err, err
    assert proc.returncode == 0, (out, err)  # sources interrupted by a stop are not failures
    conn, counts = _check_consistent(db, names)
    runs = dict(conn.execute("select source_id, status from harvest_runs"))
    if when == "all stored":
        assert counts == {n: ITEMS for n in names}
        assert runs == {**{n: "ok" for n in names}, "slow": "interrupted"}, (runs, out, err)
    else:  # stopped while the writer had batches in hand: what is stored is whole, and said
        assert runs["slow"] == "interrupted" and set(runs.values()) <= {"ok", "interrupted"}, runs
        assert {n for n, status in runs.items() if status == "ok"} <= set(counts), (runs, counts)
        items = dict(conn.execute("select source_id, items_new from harvest_runs"))
        assert all(items[n] == ITEMS for n, status in runs.items() if status == "ok"), items
    assert conn.execute("select count(*) from harvest_runs where finished_at is null").fetchone()[0] == 0


class _Timer:
    def __init__(self, clock, delay, fn, args):
        self.clock, self.delay, self.fn, self.args, self.live = clock, delay, fn, args, True

    def active(self):
        return self.live

    def reset(self, delay):
        self.delay = delay
        self.clock.resets += 1

    def cancel(self):
        self.live = False


class _Clock:
    """Stands in for the reactor: remembers what was scheduled, runs it on demand."""

    def __init__(self):
        self.timers, self.resets, self.from_thread = [], 0, []

    def callLater(self, delay, fn, *args):  # noqa: N802 - the reactor's name
        timer = _Timer(self, delay, fn, args)
        self.timers.append(timer)
        return timer

    def callFromThread(self, fn, *args):  # noqa: N802 - the reactor's name
        self.from_thread.append((fn, args))

    def fire(self):
        timers, self.timers = [t for t in self.timers if t.live], []
        for t in timers:
            t.live = False
            t.fn(*t.args)


def test_a_pause_commits_what_the_writer_wrote_without_waiting_for_it_first(tmp_path):
    pipeline, context = _pipeline(tmp_path)
    clock = pipeline._reactor = _Clock()
    _store(pipeline, _prepared("a", 2), _prepared("b", 1))
    assert [t.delay for t in clock.timers] == [StorePipeline.COMMIT_IDLE_BEHIND]  # one timer, put off
    assert clock.resets == 1
    pipeline._writer.drain()
    assert _count(tmp_path / "c.db") == 0  # not committed yet
    clock.fire()  # the pause: the writer commits
    pipeline._writer.drain()
    assert _count(tmp_path / "c.db") == 3
    pipeline.close_spider()
