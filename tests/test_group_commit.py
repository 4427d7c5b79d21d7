"""The store pipeline commits documents together, at most StorePipeline.COMMIT_EVERY
seconds apart: nothing is visible to readers (or kept after a crash) before its commit, and
a commit that fails is reported against every source whose items it held."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

from harvesters.spider import HarvestContext, SourceState
from harvesters.store_pipeline import StorePipeline
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, start_run
from pipeline.taxonomy import default_taxonomy


def _pipeline(tmp_path, conn_wrapper=None):
    db = open_db(tmp_path / "c.db")
    if conn_wrapper is not None:
        db.conn = conn_wrapper(db.conn)
    states = {}
    for sid in ("a", "b"):
        source = SimpleNamespace(id=sid, topics=[], organization=None, systems=[], uses_network=True,
                                 on_topic_only=False)
        states[sid] = SourceState(source=source, run_id=start_run(db, sid, "g"))
    context = HarvestContext(db=db, states=states, taxonomy=default_taxonomy())
    pipeline = StorePipeline()
    pipeline.crawler = SimpleNamespace(spider=SimpleNamespace(context=context))
    return pipeline, context


def _batch(sid: str, n: int) -> Batch:
    return Batch(sid, [Resource(url=f"https://{sid}.example.org/{i}", title=f"Item {i}") for i in range(n)],
                 url=f"https://{sid}.example.org/feed")


def _count(path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("select count(*) from resources").fetchone()[0]
    finally:
        conn.close()


def test_documents_are_committed_together(tmp_path):
    pipeline, context = _pipeline(tmp_path)
    pipeline.process_item(_batch("a", 3))
    pipeline.process_item(_batch("b", 2))
    assert context.states["a"].new == 3 and context.states["b"].new == 2
    assert _count(tmp_path / "c.db") == 0  # another connection sees nothing yet
    pipeline.close_spider()
    assert _count(tmp_path / "c.db") == 5 and not context.db.conn.in_transaction


def test_a_commit_due_is_made_with_the_next_item(tmp_path, monkeypatch):
    pipeline, context = _pipeline(tmp_path)
    monkeypatch.setattr(StorePipeline, "COMMIT_EVERY", 0.0)
    pipeline.process_item(_batch("a", 2))
    assert _count(tmp_path / "c.db") == 2


class _FailingCommit:
    def __init__(self, conn):
        self._conn = conn

    def __getattr__(self, name):
        return getattr(self._conn, name)

    @property
    def in_transaction(self):
        return self._conn.in_transaction

    def execute(self, sql, *args):
        if sql.strip().upper() == "COMMIT" and getattr(self, "fail", False):
            raise sqlite3.OperationalError("disk I/O error")
        return self._conn.execute(sql, *args)


def test_a_failed_commit_is_reported_for_each_source_it_held(tmp_path):
    pipeline, context = _pipeline(tmp_path, _FailingCommit)
    pipeline.process_item(_batch("a", 2))
    pipeline.process_item(_batch("b", 1))
    context.db.conn.fail = True
    pipeline.close_spider()
    for sid in ("a", "b"):
        state = context.states[sid]
        assert state.store_failures == 1 and "could not save to the catalog" in state.errors[0]
        assert "disk I/O error" in state.errors[0]
    assert not context.db.conn.in_transaction
    context.db.conn.fail = False
    assert _count(tmp_path / "c.db") == 0  # nothing half-kept
    pipeline.process_item(_batch("a", 1))  # the next items start a new transaction
    pipeline.close_spider()
    assert _count(tmp_path / "c.db") == 1


class _Clock:
    """Stands in for the reactor: remembers what was scheduled, runs it on demand."""

    def __init__(self):
        self.calls = []

    def callLater(self, delay, fn, *args):  # noqa: N802 - the reactor's name
        self.calls.append((delay, fn, args))

    def run_all(self):
        calls, self.calls = self.calls, []
        for _delay, fn, args in calls:
            fn(*args)


def test_a_pause_between_documents_commits_at_once(tmp_path):
    """On a polite crawl documents come one by one: each is committed as soon as no other
    follows within COMMIT_IDLE, so other writers find the catalog free between them."""
    pipeline, context = _pipeline(tmp_path)
    clock = pipeline._reactor = _Clock()
    pipeline.process_item(_batch("a", 2))
    pipeline.process_item(_batch("b", 1))  # came before the first one's idle check ran
    assert _count(tmp_path / "c.db") == 0
    delays = {d for d, _fn, _args in clock.calls}
    assert delays == {StorePipeline.COMMIT_IDLE} and len(clock.calls) == 2
    clock.run_all()  # the first check sees a newer document and waits; the second commits
    assert _count(tmp_path / "c.db") == 3 and not context.db.conn.in_transaction
