"""``illhub serve --workers N``: N worker processes under uvicorn's supervisor answer the same
pages, each reports its own pid and facet-count warmer, and SIGTERM stops them all."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks import catalog as bench
from illhub.cli import cli
from illhub.serve import GRACEFUL_SHUTDOWN
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, store_batch, sync_sources
from tests.conftest import ROOT, run_cli

#: Bounds: the server starting, two workers answering, all of it stopping after SIGTERM (s).
START, ANSWER, STOP = 30, 20, 15


@pytest.fixture
def catalog(tmp_path):
    db_path = tmp_path / "catalog.db"
    db = open_db(db_path)
    sync_sources(db, [{"id": "blog", "name": "Blog", "kind": "feed"}])
    store_batch(db, Batch("blog", [
        Resource(url=f"https://blog.example.org/post-{i}", title=f"Lending post {i}", content_type="article",
                 published=f"2026-10-{i + 1:02d}")
        for i in range(5)
    ]), source_topics=["lending"], now="2026-10-20T00:00:00Z")
    db.close()
    return db_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read()


def _children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid`` (from /proc)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, ...
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its parent does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _wait_ready(base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stderr.read().decode(errors='replace')}")
        try:
            _get(base + "/-/versions.json")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _stats_by_pid(base: str, want: int) -> dict[int, dict]:
    """``/-/facet-cache.json`` of each worker, asked until ``want`` distinct pids answered and
    each has warmed once (rounds >= 1, not warming), within ANSWER seconds."""
    seen: dict[int, dict] = {}
    deadline = time.monotonic() + ANSWER
    while time.monotonic() < deadline:
        stats = json.loads(_get(base + "/-/facet-cache.json"))
        seen[stats["pid"]] = stats
        if len(seen) >= want and all(s["rounds"] >= 1 and not s["warming"] for s in seen.values()):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"workers seen in {ANSWER}s: {seen}")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_two_workers_answer_alike_and_stop_on_sigterm(catalog):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "illhub", "serve", "--db", str(catalog), "--port", str(port), "--workers", "2"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(base, proc)
        workers = _children(proc.pid)
        assert len(workers) >= 2, workers  # (multiprocessing may add a helper process of its own)
        seen = _stats_by_pid(base, 2)
        assert set(seen) <= workers and proc.pid not in seen
        assert all(s["workers"] == 2 for s in seen.values())
        # the benchmark's view of the same server: every worker warmed, each worker's counters
        warm, _seconds = bench.wait_for_warming(base, 2)
        assert warm["rounds"] >= 1 and set(bench.cache_stats(base, 2)) == set(seen)
        # the same table page, as JSON, from each worker
        pages: dict[int, bytes] = {}
        deadline = time.monotonic() + ANSWER
        while len(pages) < 2 and time.monotonic() < deadline:
            page = _get(base + "/catalog/resources.json?_shape=array&_sort=url")
            pid = json.loads(_get(base + "/-/facet-cache.json"))["pid"]
            pages.setdefault(pid, page)  # (the two requests may meet different workers: the
            # page is checked below against every other, so any pairing is fine)
        assert len(pages) == 2, pages.keys()
        first, second = pages.values()
        assert json.loads(first) == json.loads(second) and len(json.loads(first)) == 5
    finally:
        proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        try:
            code = proc.wait(timeout=STOP)
        except subprocess.TimeoutExpired:
            for pid in _children(proc.pid):
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            raise
    stopped = time.monotonic() - start
    stderr = proc.stderr.read().decode(errors="replace")
    assert code == 0, stderr
    assert stopped < GRACEFUL_SHUTDOWN + 5
    # the workers are gone with it (multiprocessing's resource tracker, a child too, ends when
    # it reads the end of its pipe: a moment after the server)
    deadline = time.monotonic() + 3
    while (left := [pid for pid in workers if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"worker processes left after the server stopped: {left}"
    with socket.socket() as s:  # nothing listens on the port any more
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_an_invalid_number_of_workers_is_one_line(catalog):
    result = run_cli("serve", "--db", str(catalog), "--workers", "0")  # as a person meets it
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --workers '0' is not a number of processes from 1 to 64"
    for value in ("-1", "two", "1.5", "65"):
        result = CliRunner().invoke(cli, ["serve", "--db", str(catalog), "--workers", value])
        assert result.exit_code == 2, (value, result.output)
        assert result.stderr.strip() == f"error: --workers {value!r} is not a number of processes from 1 to 64"


def test_help_says_when_to_use_workers():
    help_text = " ".join(run_cli("serve", "--help").stdout.split())
    assert "--workers N" in help_text and "several cores" in help_text
    assert "its own facet-count cache" in help_text


def test_benchmark_hit_rate_sums_the_workers_counts(monkeypatch):
    before = {1: {"hits": 10, "misses": 10}, 2: {"hits": 0, "misses": 5}}
    after = {1: {"hits": 13, "misses": 11}, 2: {"hits": 4, "misses": 7}, 3: {"hits": 1, "misses": 0}}
    assert bench.hit_rate(before, after) == f"{8 / 11:.0%}"  # 3 + 4 + 1 hits, 1 + 2 + 0 misses
    assert bench.hit_rate(after, after) == "n/a"
    monkeypatch.setenv("ILLHUB_BENCH_SERVE_WORKERS", "3")
    assert bench.serve_command(Path("c.db"), 8001)[-2:] == ["--workers", "3"]
    monkeypatch.setenv("ILLHUB_BENCH_SERVE_WORKERS", "0")
    with pytest.raises(RuntimeError, match="ILLHUB_BENCH_SERVE_WORKERS"):
        bench.serve_workers()


def test_a_worker_that_cannot_start_stops_them_all(catalog):
    """A worker whose Datasette cannot be built says why in one line; uvicorn's supervisor then
    stops the others instead of restarting it, and the command exits 1."""
    code = ("import sys; from pathlib import Path; from illhub.serve import serve_workers; "
            f"sys.exit(serve_workers(Path({str(catalog)!r}), host='127.0.0.1', port={_free_port()}, workers=2, "
            "no_such_option=1))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=START)
    assert result.returncode == 1, result.stderr
    failed = [line for line in result.stderr.splitlines() if "could not start" in line]
    assert failed and all("unexpected keyword argument 'no_such_option'" in line for line in failed)
    assert "Traceback" not in result.stderr


def test_a_failed_startup_is_one_lifespan_message():
    """Datasette's startup failing in a worker: uvicorn is told in one line, no traceback."""
    import asyncio

    from datasette.utils.asgi import AsgiLifespan

    from illhub.serve_worker import with_startup

    class Broken:
        async def invoke_startup(self):
            raise ValueError("no catalog here")

    sent: list[dict] = []
    messages = iter([{"type": "lifespan.startup"}])

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    asyncio.run(with_startup(Broken(), AsgiLifespan(None))({"type": "lifespan"}, receive, send))
    assert sent == [{"type": "lifespan.startup.failed",
                     "message": f"worker {os.getpid()} could not start: ValueError: no catalog here"}]
