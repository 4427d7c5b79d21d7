"""Parsing on the other cores: a small pool of worker processes for the CPU stage of
feed-like documents (parse the bytes, normalize, classify), while the harvest process keeps
downloading and writing to SQLite.

A kind opts in with an ``offload(response, source)`` method that returns a module-level
function and its (picklable) keyword arguments; the function turns a document's bytes into a
:class:`~pipeline.resource.Batch`. Run in a worker, the batch is also prepared for storage
(:func:`pipeline.store.prepare_batch`) there, so the harvest process only writes it. The same
function runs in the harvest process when there is no pool, so both ways give the same
catalog (tests/test_offload.py).

On Linux the workers are forked from the harvest process before its crawl starts, while it
has a single thread (no reactor, no progress display yet): they start at once, with every
module already imported, and never touch the catalog's connection (they leave with
``os._exit``, which closes nothing). A pool started later (after a worker died) or elsewhere
spawns fresh interpreters instead, which import only the parsers and the pipeline (no Scrapy)
and start with the first document to parse. Workers ignore Ctrl-C: the harvest process
decides when to stop, then shuts the pool down.

Every document's parse is bounded in CPU time (:func:`cpu_limit`), in a worker and in the
harvest process alike: a document that would take minutes (feedparser's strict path is
quadratic in the attributes of one element: 200,000 of them cost four minutes) fails its
source with one line, and the harvest goes on.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from harvesters.source import SourceBase
from pipeline.resource import Batch

logger = logging.getLogger(__name__)

#: Below this many sources that can use it, a pool costs more to start than it saves.
AUTO_MIN_SOURCES = 16
#: Most workers ``auto`` starts, whatever the number of cores.
AUTO_MAX_WORKERS = 4


#: CPU seconds one document's parse may take (``illhub harvest --parse-cpu-limit``). A feed
#: at the size cap (5 MiB, 1,000 entries of markup-rich text) takes about 3 s to parse,
#: normalize and classify; 60,000 attributes on one element would take about 40 s.
DEFAULT_PARSE_CPU_LIMIT = 20.0


class WorkerDied(RuntimeError):
    """A worker process stopped (killed, out of memory) while parsing a document."""


class ParseTooCostly(ValueError):
    """A document took more CPU time to parse than :func:`cpu_limit` allows."""


@contextmanager
def cpu_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`ParseTooCostly` inside the block once this process has spent ``seconds``
    of CPU time in it (a SIGPROF timer, so only in the main thread, which is where Scrapy's
    callbacks and the workers' tasks run; elsewhere, or with ``seconds`` None, no limit).

    Python checks for signals between bytecodes, so the parsers' pure-Python loops (where the
    quadratic costs are) are stopped on time; a single call into C ends first."""
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return
    armed = [True]

    def expired(signum: int, frame: Any) -> None:
        if armed[0]:  # a signal that arrives after the block has ended is dropped
            armed[0] = False
            raise ParseTooCostly(f"parsing stopped after {seconds:g} s of CPU time (--parse-cpu-limit): the "
                                 "document is too costly to read (thousands of attributes on one element?); "
                                 "nothing from it was stored")

    previous = signal.signal(signal.SIGPROF, expired)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def auto_workers(offloadable_sources: int, cpus: int | None = None) -> int:
    """How many workers ``--workers auto`` starts: none for a small harvest or a single
    core; otherwise one per core, at most four. (The harvest process mostly waits on the
    network and SQLite: with one worker on two cores, the worker was the bottleneck and the
    second core half idle; benchmarks/feed_ingest.py.)"""
    cpus = cpus if cpus is not None else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                          else os.cpu_count() or 1)
    if offloadable_sources < AUTO_MIN_SOURCES or cpus < 2:
        return 0
    return max(1, min(cpus, AUTO_MAX_WORKERS))


def store_options(source: SourceBase) -> dict[str, Any]:
    """What storing a batch needs to know of its source (the same inline and in a worker)."""
    return {"source_topics": list(source.topics), "organization": source.organization,
            "source_systems": list(source.systems), "on_topic_only": source.on_topic_only}


def _exit_with_parent() -> None:
    """End this worker when the harvest process ends, however it ends: a worker of a
    harvest killed with SIGKILL would otherwise wait for work forever."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="illhub-parent-watch", daemon=True).start()


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    import harvesters.parsers.feed  # noqa: F401 - imported once, before the first document
    import harvesters.parsers.youtube  # noqa: F401
    from pipeline.taxonomy import default_taxonomy

    default_taxonomy()
    # What the worker holds from the start is never garbage: out of garbage collection's way
    # (a forked worker's is frozen already: see ParsePool._start).
    gc.freeze()


def _warm() -> int:
    """A worker's process id (tests use it to find the workers)."""
    return os.getpid()


def parse_and_prepare(fn: Callable[..., Batch], kwargs: dict[str, Any], options: dict[str, Any],
                      cpu_seconds: float | None = DEFAULT_PARSE_CPU_LIMIT) -> Batch:
    """Runs in a worker: the kind's parse function, then the CPU stage of storing, within
    ``cpu_seconds`` of CPU time. The raw resources are dropped (the prepared ones carry all
    that is stored) and the prepared ones sent as the strings stored
    (:func:`pipeline.packed.pack_prepared`), to keep the reply small and quick to read."""
    from pipeline.packed import pack_prepared
    from pipeline.store import prepare_batch
    from pipeline.taxonomy import default_taxonomy

    with cpu_limit(cpu_seconds):
        batch = fn(**kwargs)
        prepared, result = prepare_batch(batch, taxonomy=default_taxonomy(), **options)
        prepared = pack_prepared(prepared)
    batch.prepared = prepared
    batch.prepared_result = dict(result)
    batch.resources = []
    return batch


class ParsePool:
    """A process pool for :func:`parse_and_prepare`; restarted if a worker dies."""

    def __init__(self, workers: int, cpu_seconds: float | None = DEFAULT_PARSE_CPU_LIMIT):
        if workers < 1:
            raise ValueError("a parse pool needs at least one worker")
        self.workers = workers
        self.cpu_seconds = cpu_seconds
        self.documents = 0
        self.restarts = 0
        self.method = ""
        self.froze = False
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        if sys.platform.startswith("linux") and threading.active_count() == 1:
            # A fork of a single-threaded process is safe, and costs no imports. With the
            # fork method the pool starts every worker at its first submission: now.
            self.method = "fork"
            # What the harvest process holds by now (modules, the registry, the taxonomy) stays
            # for the whole harvest: out of garbage collection's way, here and in the workers,
            # which then share its memory pages instead of copying them as collections touch them
            # (until the pool closes).
            gc.freeze()
            self.froze = True
            executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("fork"),
                                           initializer=_init_worker)
            executor.submit(_warm)
            return executor
        # Otherwise a fresh interpreter per worker (never a fork of a process with threads),
        # started with the first documents to parse (an all-unchanged harvest starts none).
        self.method = "spawn"
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker)

    async def run(self, fn: Callable[..., Batch], kwargs: dict[str, Any], options: dict[str, Any]) -> Batch:
        """Parse one document in a worker. When a worker dies, every document waiting in the
        pool fails with it: each is tried once more in a new pool, so only a document that
        kills its worker twice fails (with :class:`WorkerDied`)."""
        for attempt in (1, 2):
            executor = self._executor
            try:
                future = executor.submit(parse_and_prepare, fn, kwargs, options, self.cpu_seconds)
                batch = await asyncio.wrap_future(future)
            except BrokenProcessPool:
                if executor is self._executor:  # the first to notice starts a new pool
                    logger.warning("a parse worker died; starting a new pool")
                    self.restarts += 1
                    executor.shutdown(wait=False, cancel_futures=True)
                    self._executor = self._start()
                if attempt == 1:
                    continue
                raise WorkerDied("the parser process stopped twice while reading this document "
                                 "(killed or out of memory?); it was not stored") from None
            self.documents += 1
            return batch
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self.froze:
            self.froze = False
            gc.unfreeze()


class ArrivalOrder:
    """Tickets in the order documents arrive; a document's outputs go out at its turn, once
    every document that arrived before it has gone out (or failed). Parsing still runs in
    parallel in the workers: only the hand-over to the store keeps the order."""

    def __init__(self) -> None:
        self.issued = 0
        self.next = 0
        self.released: set[int] = set()
        self.waiting: dict[int, asyncio.Future[None]] = {}

    def take(self) -> int:
        self.issued += 1
        return self.issued - 1

    async def turn(self, ticket: int) -> None:
        if ticket > self.next:
            future = self.waiting[ticket] = asyncio.get_running_loop().create_future()
            await future

    def release(self, ticket: int) -> None:
        self.released.add(ticket)
        while self.next in self.released:
            self.released.discard(self.next)
            self.next += 1
        future = self.waiting.pop(self.next, None)
        if future is not None and not future.done():
            future.set_result(None)
