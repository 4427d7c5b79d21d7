"""Keeping a cheap page fast while expensive requests pile up, and stopping work nobody waits
for (an ASGI middleware around Datasette: :func:`load_guard`).

Datasette runs every SQL statement on one small pool of threads, first come first served.
Fifty requests faceting the resources table by title kept both cores busy for 14 s, and a row
page queued behind their statements for 12 s. Here each request is weighed before Datasette
sees it (:func:`weigh`):

* ``cheap``: the front page, a database page, a row page, a table page with no parameters,
  static files. Never held back.
* ``heavy``: any other table or canned query page (filters, searches, facets, sorting, later
  pages). At most :data:`HEAVY` at a time.
* ``stream``: a CSV (a stream of the whole table runs for a while). At most :data:`STREAMS`.

Datasette gets :data:`SQL_THREADS` threads, one more than the heavy and streamed requests
can hold, so a cheap page never waits for theirs. A request that would wait behind
:data:`QUEUE` others, or longer than :data:`MAX_WAIT` seconds, is answered 503 with
``Retry-After``. And when the client goes away (a closed tab, a cancelled download), its
request is cancelled, queued or running: a CSV stream of the whole table used to run to
its end, then keep ``illhub serve`` from stopping.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

from catalog.public import is_csv_request, short_reply

logger = logging.getLogger("illhub.serve")

def _setting(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value >= 1 else default


#: Expensive requests run at once (env ILLHUB_HEAVY_REQUESTS), and CSV streams (besides them).
#: On 2 cores, 2 kept a row page's p95 under a burst at 0.12 s but halved the throughput of
#: 16 clients browsing without pause (each request's Python work and its SQL alternate, so
#: fewer at once leave the cores idle); 4 gives about the old throughput and 0.2 s
#: (benchmarks/burst.py).
HEAVY = _setting("ILLHUB_HEAVY_REQUESTS", 4)
STREAMS = 1
#: Datasette's SQL threads (``num_sql_threads``): one more than those two can hold.
SQL_THREADS = HEAVY + STREAMS + 1
#: Requests waiting for their turn, at most; and the longest wait (seconds).
QUEUE = 64
MAX_WAIT = 30.0
RETRY_AFTER = "5"

_ROW_OR_MORE = re.compile(r"^/[^/]+/[^/]+/.+")
_CHEAP_PATHS = re.compile(r"^/(-/.*|robots\.txt|favicon\.ico|[^/]+?(\.json)?)?$")


#: The hub's pages (catalog/hubroutes.py): a resource's page and the Suggest page read a row or
#: nothing; every other hub page counts, searches or sorts.
_HUB_CHEAP = re.compile(r"^/(resource/[^/]+|suggest-a-source)$")
_HUB = re.compile(r"^/(search|topic|system|source|resource|topics|events|sources|subscribe)(/|\.opml$|$)")


def hub_weight(path: str) -> str | None:
    """``cheap`` or ``heavy`` for the hub's own pages, None for any other path."""
    if _HUB_CHEAP.match(path):
        return "cheap"
    return "heavy" if _HUB.match(path) else None


def weigh(scope: dict[str, Any], tables: set[str] | None = None) -> str:
    """``cheap``, ``heavy`` or ``stream``; ``tables``: the served tables' paths
    (``/db/table``), whose plain pages are cheap."""
    path = scope.get("path", "")
    query = scope.get("query_string", b"")
    if is_csv_request(scope):
        return "stream"
    hub = hub_weight(path)
    if hub:
        return hub
    if _CHEAP_PATHS.match(path):
        return "heavy" if path != "/" and not path.startswith("/-/") and b"sql=" in query else "cheap"
    if _ROW_OR_MORE.match(path):
        return "cheap"
    if not query and tables is not None and path.removesuffix(".json") in tables:
        return "cheap"
    return "heavy"


class _Gate:
    """A limit on requests at once, with a bounded queue; made on the loop that uses it."""

    def __init__(self, limit: int):
        self.limit = limit
        self.waiting = 0
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore, self._loop = asyncio.Semaphore(self.limit), loop
        return self._semaphore


def load_guard(app: Callable[..., Awaitable[None]], datasette: Any, *, heavy: int = HEAVY, streams: int = STREAMS,
               queue: int = QUEUE, max_wait: float = MAX_WAIT) -> Callable[..., Awaitable[None]]:
    """ASGI middleware: weigh each request, hold heavy ones to their limit, and cancel a
    request whose client has gone."""
    gates = {"heavy": _Gate(heavy), "stream": _Gate(streams)}
    tables: set[str] = set()

    async def known_tables() -> set[str]:
        if not tables:
            for name, db in datasette.databases.items():
                tables.update(f"/{name}/{t}" for t in await db.table_names())
        return tables

    async def gated(scope, receive, send) -> None:
        weight = weigh(scope, await known_tables())
        if weight == "cheap":
            await app(scope, receive, send)
            return
        gate = gates[weight]
        semaphore = gate.semaphore()
        if semaphore.locked():  # all taken: wait in the queue, if there is room
            if gate.waiting >= queue:
                await _busy(scope, send, f"{gate.waiting} {weight} requests are waiting")
                return
            gate.waiting += 1
            try:
                await asyncio.wait_for(semaphore.acquire(), max_wait)
            except TimeoutError:
                await _busy(scope, send, f"waited {max_wait:g} s")
                return
            finally:
                gate.waiting -= 1
        else:
            await semaphore.acquire()  # free: taken at once
        try:
            await app(scope, receive, send)
        finally:
            semaphore.release()

    async def wrapped(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        await _until_client_leaves(gated, scope, receive, send)

    return wrapped


async def _busy(scope: dict[str, Any], send: Callable, why: str) -> None:
    from catalog.errors import log_line

    log_line(scope.get("method", "?"), scope.get("path", ""), 503, f"busy: {why}")
    await short_reply(send, scope, 503, "The catalog is busy; try again in a few seconds.",
                      [(b"retry-after", RETRY_AFTER.encode())])


async def _until_client_leaves(handler: Callable[..., Awaitable[None]], scope: dict[str, Any], receive: Callable,
                               send: Callable) -> None:
    """Run ``handler`` for the request, and cancel it if the client disconnects before the
    response is complete (the server tells the app by ``http.disconnect``)."""
    inbox: asyncio.Queue = asyncio.Queue()
    sent = {"bytes": 0, "complete": False}

    async def app_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent["bytes"] += len(message.get("body", b""))
            sent["complete"] = not message.get("more_body", False)
        await send(message)

    async def watch() -> None:
        while True:
            message = await receive()
            await inbox.put(message)
            if message["type"] == "http.disconnect":
                return

    work = asyncio.ensure_future(handler(scope, inbox.get, app_send))
    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done() and not sent["complete"]:
            work.cancel()
            logger.warning("%s %s: the client went away after %d bytes; stopped", scope.get("method", "?"),
                           scope.get("path", ""), sent["bytes"])
        try:
            await work
        except asyncio.CancelledError:
            if not work.cancelled():
                raise
    finally:
        for task in (work, watcher):
            if not task.done():
                task.cancel()
