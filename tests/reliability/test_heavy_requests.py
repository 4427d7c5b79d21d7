"""Heavy catalog requests (issue 21, item 8): pages after the first and CSV streams read
through the index, every row exactly once; a request whose client leaves is cancelled;
``illhub serve`` stops promptly on SIGTERM in the middle of a stream; heavy requests wait
their turn (or get a 503) while cheap pages go ahead. The figures (a row page's p95 during a
burst, a deep page against page 2) are in benchmarks/catalog.py, not timed here.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from benchmarks.catalog import build_catalog
from catalog import keyset, load, public
from pipeline.store import open_db
from tests.conftest import ROOT
from tests.reliability.helpers import DatasetteClient

ROWS = 20_000


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    db = tmp_path_factory.mktemp("heavy") / "illhub.db"
    build_catalog(db, ROWS)
    return db


@pytest.fixture(scope="module")
def ties(tmp_path_factory):
    """A small catalog where many resources share a date, and some have none."""
    db = tmp_path_factory.mktemp("ties") / "ties.db"
    conn = open_db(db)
    rng = random.Random(5)
    with conn.atomic():
        conn.execute("insert into sources (id, name, kind) values ('s', 'S', 'feed')")
        for i in range(240):
            published = None if i % 7 == 0 else f"2026-0{rng.randint(1, 3)}-01T00:00:00Z"
            conn.execute("insert into resources (id, url, title, content_type, source_id, published, content_hash, "
                         "first_seen, last_seen, last_changed) values (?, ?, ?, 'article', 's', ?, 'h', 'x', 'x', 'x')",
                         [f"{rng.getrandbits(40):010x}", f"https://e.example/{i}", f"Title {rng.randint(0, 9)}",
                          published])
    conn.close()
    return db


Client = DatasetteClient


def walk(client, query: str) -> list[dict]:
    rows, nxt = [], None
    while True:
        r = client.get(f"/{client.name}/resources.json?_shape=objects&_nocount=1&_size=9{query}"
                       + (f"&_next={nxt}" if nxt else ""))
        assert r.status_code == 200, r.text
        data = r.json()
        rows += data["rows"]
        nxt = data["next"]
        if not nxt:
            return rows


@pytest.mark.parametrize("query,order", [
    ("", "published is null, published desc, id"),
    ("&_sort_desc=published", "published is null, published desc, id"),
    ("&_sort=published", "published is not null, published, id"),
    ("&_sort_desc=title", "title desc, id"),
    ("&_sort=title", "title, id"),
])
def test_every_page_of_every_sort_holds_each_row_once_in_order(ties, query, order):
    client = Client(ties, public=True)
    try:
        got = [row["id"] for row in walk(client, query)]
    finally:
        client.close()
    expected = [r[0] for r in sqlite3.connect(ties).execute(f"select id from resources order by {order}")]
    assert got == expected


def test_the_page_after_the_first_reads_a_range_of_the_index(big):
    conn = sqlite3.connect(big)
    published, rid = conn.execute("select published, id from resources order by published desc, id "
                                  "limit 1 offset 15000").fetchone()
    datasette_sql = ("select id, title from resources where (published < :p0 or published is null or "
                     "(published = :p0 and ((id > :p1)))) order by published desc, id limit 51")
    valued, unvalued, limit = keyset.split_next_page(datasette_sql)
    assert limit == 51
    params = {"p0": published, "p1": rid}
    plan = " ".join(r[3] for r in conn.execute("explain query plan " + valued, params))
    assert "USING INDEX idx_resources_published (published<?)" in plan and "TEMP B-TREE" not in plan, plan
    plan = " ".join(r[3] for r in conn.execute("explain query plan " + datasette_sql, params))
    assert "(published<?)" not in plan  # Datasette's own query has no range: it reads from the top
    assert [r[0] for r in conn.execute(valued, params)] == [r[0] for r in conn.execute(datasette_sql, params)]
    # facets of a later page count the whole table, as on the first page
    client = Client(big)
    try:
        first = client.get(f"/{client.name}/resources.json?_size=20&_nocount=1").json()
        second = client.get(f"/{client.name}/resources.json?_size=20&_nocount=1&_next={first['next']}").json()
    finally:
        client.close()
    def counts(data):
        return {name: [(v["value"], v["count"]) for v in facet["results"]]
                for name, facet in data["facet_results"].items()}

    assert counts(second) == counts(first) and len(counts(first)) == 6
    assert second["rows"] != first["rows"]


def test_a_csv_stream_of_the_whole_table_has_every_row_once(big):
    client = Client(big, public=True)
    try:
        r = client.get(f"/{client.name}/resources.csv?_stream=on&_size=max&_nocount=1")
    finally:
        client.close()
    rows = list(csv.reader(io.StringIO(r.text)))
    ids = [row[0] for row in rows[1:]]
    assert len(ids) == ROWS and len(set(ids)) == ROWS


# -- the load guard, with a stand-in for Datasette ----------------------------------------

class FakeApp:
    """An ASGI app whose responses last until released (or stream forever)."""

    def __init__(self):
        self.running = 0
        self.most = 0
        self.release = asyncio.Event()
        self.cancelled = 0
        self.chunks = 0

    async def __call__(self, scope, receive, send):
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            if scope["path"].endswith(".csv"):
                while True:  # a stream that never ends by itself
                    self.chunks += 1
                    await send({"type": "http.response.body", "body": b"row\r\n", "more_body": True})
                    await asyncio.sleep(0.001)
            if scope["query_string"]:  # a heavy request lasts until released; a cheap one does not
                await self.release.wait()
            await send({"type": "http.response.body", "body": b"ok"})
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1


class FakeDatasette:
    databases: dict = {}


async def until(condition, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def request(path: str, query: bytes = b"") -> dict:
    return {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": []}


async def call(guard, scope, disconnect: asyncio.Event | None = None) -> list[dict]:
    sent: list[dict] = []
    first = True

    async def receive():
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"", "more_body": False}
        await (disconnect or asyncio.Event()).wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await guard(scope, receive, send)
    return sent


def test_heavy_requests_wait_their_turn_and_cheap_ones_do_not():
    async def scenario():
        app = FakeApp()
        guard = load.load_guard(app, FakeDatasette(), heavy=2, streams=1, queue=5, max_wait=30)
        heavy = [asyncio.ensure_future(call(guard, request("/db/resources", b"_facet=organization")))
                 for _ in range(7)]
        await until(lambda: app.running == 2)
        await asyncio.sleep(0.05)
        assert app.running == 2  # two heavy at once; five waiting
        cheap = await asyncio.wait_for(call(guard, request("/db/resources/abc")), 1)
        assert cheap[0]["status"] == 200 and app.running == 2
        overflow = await call(guard, request("/db/resources", b"_search=x"))
        assert overflow[0]["status"] == 503 and (b"retry-after", b"5") in overflow[0]["headers"]
        app.release.set()
        done = await asyncio.gather(*heavy)
        assert [d[0]["status"] for d in done] == [200] * 7 and app.most <= 3

    asyncio.run(scenario())


def test_a_request_whose_client_leaves_is_cancelled(caplog):
    async def scenario():
        app = FakeApp()
        guard = load.load_guard(app, FakeDatasette(), heavy=2)
        gone = asyncio.Event()
        stream = asyncio.ensure_future(call(guard, request("/db/resources.csv", b"_stream=on"), gone))
        await until(lambda: app.chunks > 10)
        gone.set()
        await asyncio.wait_for(stream, 2)
        after = app.chunks
        await asyncio.sleep(0.1)
        assert app.chunks == after and app.cancelled == 1 and app.running == 0
        # one waiting for its turn is let go too
        app.release.clear()
        holders = [asyncio.ensure_future(call(guard, request("/db/t", b"q=1"))) for _ in range(2)]
        await until(lambda: app.running == 2)
        left = asyncio.Event()
        waiting = asyncio.ensure_future(call(guard, request("/db/t", b"q=2"), left))
        await asyncio.sleep(0.05)
        left.set()
        assert await asyncio.wait_for(waiting, 2) == []
        app.release.set()
        await asyncio.gather(*holders)

    with caplog.at_level(logging.WARNING, logger="illhub.serve"):
        asyncio.run(scenario())
    assert any("the client went away" in r.getMessage() for r in caplog.records)


def test_requests_are_weighed():
    tables = {"/db/resources", "/db/sources"}
    weights = {
        ("/", b""): "cheap", ("/db", b""): "cheap", ("/db.json", b""): "cheap", ("/db", b"sql=select+1"): "heavy",
        ("/-/static/app.css", b""): "cheap", ("/db/resources/abc", b""): "cheap", ("/db/resources", b""): "cheap",
        ("/db/resources.json", b""): "cheap", ("/db/resources", b"_facet=organization"): "heavy",
        ("/db/resources", b"_next=x"): "heavy", ("/db/new_this_week", b""): "heavy",
        ("/db/resources.csv", b""): "stream", ("/db/search", b"q=ill&_format=csv"): "stream",
    }
    for (path, query), weight in weights.items():
        assert load.weigh(request(path, query), tables) == weight, (path, query)


def test_the_csv_guard_skips_only_records_without_formulas():
    rng = random.Random(3)
    alphabet = ['a', 'b', ',', '"', '\n', '\r', '=', '+', '-', '@', '\t', ' ', '1', 'é']
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        if public._RISKY.search(text):
            assert public._may_be_risky(text), repr(text)


# -- a real server --------------------------------------------------------------------------

def _serve(db, port, *extra, **popen):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "illhub", "serve", "--db", str(db), "--port", str(port),
                             "--public", *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(proc.communicate()[1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_stream(port, name) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET /{name}/resources.csv?_stream=on&_size=max HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert b"200 OK" in sock.recv(4096)
    return sock


def test_serve_stops_promptly_on_sigterm_in_the_middle_of_a_stream(big):
    port = _free_port()
    server = _serve(big, port)
    sock = _start_stream(port, big.stem)  # then never read: the server waits to send the rest
    try:
        time.sleep(1)
        start = time.monotonic()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise AssertionError("illhub serve was still running 30 s after SIGTERM") from None
        assert time.monotonic() - start < 20
    finally:
        sock.close()
        if server.poll() is None:
            server.kill()


def test_serve_workers_stop_on_ctrl_c_in_the_middle_of_a_stream(big):
    """``--workers 2``, Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while
    a stream runs: every worker stops within the grace time and a few seconds, exit 0."""
    from illhub.serve import GRACEFUL_SHUTDOWN

    port = _free_port()
    server = _serve(big, port, "--workers", "2", start_new_session=True)
    workers = [int(p) for p in subprocess.run(["ps", "-o", "pid=", "--ppid", str(server.pid)], capture_output=True,
                                              text=True).stdout.split()]
    sock = _start_stream(port, big.stem)  # then never read: its worker waits to send the rest
    try:
        time.sleep(1)
        start = time.monotonic()
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise AssertionError("illhub serve --workers 2 was still running 30 s after Ctrl-C") from None
        assert time.monotonic() - start < GRACEFUL_SHUTDOWN + 5
        assert server.returncode == 0, server.stderr.read()
        assert len(workers) >= 2
        deadline = time.monotonic() + 3
        while (left := [p for p in workers if os.path.exists(f"/proc/{p}")]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"processes left after illhub serve stopped: {left}"
    finally:
        sock.close()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)


def test_a_stream_whose_client_leaves_stops_on_the_server(big):
    port = _free_port()
    server = _serve(big, port)
    try:
        sock = _start_stream(port, big.stem)
        sock.close()
        time.sleep(3)
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=30)
    assert "the client went away" in err and "resources.csv" in err
    assert "Traceback" not in err
