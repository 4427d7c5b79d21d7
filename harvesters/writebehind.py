"""The write-behind of a harvest with parse workers (issue 22): one thread that writes the
batches the workers prepared, in the order they come, while the reactor goes on downloading.
SQLite lets go of Python's lock while it writes (a batch's insert, its triggers, the full-text
index, the commit), so the writing runs beside the downloading instead of between it.

Every other use of the catalog's connection, from any other thread, first waits until the
writer has done all it was given (:class:`WaitingConnection`): the catalog is written in the
same order as without the writer, one statement at a time. What the writer runs never raises
(:class:`harvesters.store_pipeline.StorePipeline` hands it guarded tasks, which report their
own errors), so waiting for it never loses an error either.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Writer:
    """The writer thread of one harvest's catalog connection (``db.conn`` is replaced by a
    :class:`WaitingConnection` until :meth:`stop`)."""

    def __init__(self, db: Any):
        self.db = db
        self.conn = db.conn
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="illhub-store")
        self.pending: deque[Future[Any]] = deque()
        self.ident: int | None = None
        self.stopped = False
        db.conn = WaitingConnection(self.conn, self)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future = self.executor.submit(self._run, fn, *args)
        self.pending.append(future)
        return future

    def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.ident = threading.get_ident()
        return fn(*args)

    def in_writer(self) -> bool:
        return threading.get_ident() == self.ident

    def drain(self) -> None:
        """Wait until everything given to the writer is written (from any other thread)."""
        if self.in_writer():
            return
        while self.pending:
            future = self.pending.popleft()
            try:
                future.result()
            except BaseException:  # noqa: BLE001 - tasks are guarded: their errors are reported by them
                pass

    def stop(self) -> None:
        """Wait for the writer, give the catalog its own connection back, end the thread."""
        if self.stopped:
            return
        self.drain()
        self.stopped = True
        self.db.conn = self.conn
        self.executor.shutdown(wait=True)


class WaitingConnection:
    """The catalog's connection, used from another thread only once the writer (:class:`Writer`)
    is done with what it was given."""

    def __init__(self, conn: sqlite3.Connection, writer: Writer):
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "_writer", writer)

    def __getattr__(self, name: str) -> Any:
        self._writer.drain()
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._writer.drain()
        setattr(self._conn, name, value)

    def __enter__(self) -> Any:
        self._writer.drain()
        return self._conn.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        self._writer.drain()
        return self._conn.__exit__(*exc)
