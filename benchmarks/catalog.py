"""Catalog: Datasette serving N resources with illhub's metadata, over real HTTP.

Figures: p95 latency of the resources table with its default facets, and of a full-text
search, against the issue's budgets (100 ms and 250 ms: ratio = p95 / budget, <= 1); and p95
under 16 concurrent clients against the single-client p95 (<= 3). Zero errors and zero
"facet timed out" are required; Datasette's default limits are not raised.
"""

from __future__ import annotations

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchmarks.common import ROOT, Figure
from benchmarks.content import SUBJECTS, description, title
from pipeline.store import open_db

#: Mean pause between two pages of one simulated user (seconds).
THINK = 1.0

TOPICS = ["basics", "borrowing", "lending", "copyright", "licensing", "international", "systems",
          "interoperability", "reports", "workflows", "best-practices", "training", "conferences", "news"]
SYSTEMS = ["illiad", "tipasa", "worldshare-ill", "alma", "rapido", "reshare", "relais"]
TYPES = ["article", "video", "documentation", "page", "document", "event"]


def build_catalog(path: Path, n: int, sources: int = 200) -> None:
    rng = random.Random(42)
    db = open_db(path)
    now = "2026-11-28T00:00:00Z"
    with db.atomic():
        db.conn.executemany(
            "INSERT INTO sources (id, name, kind, url) VALUES (?, ?, 'feed', ?)",
            [(f"src-{i}", f"Source {i}", f"https://s{i}.example.org/feed") for i in range(sources)],
        )
        rows = []
        for i in range(n):
            src = rng.randrange(sources)
            day = rng.randrange(3000)
            published = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_764_000_000 - day * 86400))
            rows.append((
                f"{i:016x}", f"https://s{src}.example.org/r/{i}", title(rng), description(rng), rng.choice(TYPES),
                f"Organization {src % 60}", f"src-{src}", published, json.dumps(rng.sample(TOPICS, rng.randint(1, 3))),
                json.dumps(rng.sample(SYSTEMS, rng.randint(0, 2))), "{}", "h", now, now, now,
            ))
        db.conn.executemany(
            "INSERT INTO resources (id, url, title, description, content_type, organization, source_id, published, "
            "topics, systems, extra, content_hash, first_seen, last_seen, last_changed) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.execute("ANALYZE")
    db.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> tuple[float, int, bytes]:
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    return time.perf_counter() - t, status, body


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 20 else max(values)


def run(quick: bool = False) -> list[Figure]:
    n = 20_000 if quick else int(os.environ.get("ILLHUB_BENCH_CATALOG_ROWS", "100000"))
    samples = 30 if quick else 60
    duration = 5 if quick else 30
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "illhub.db"
        build_catalog(db, n)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen([sys.executable, "-m", "illhub", "serve", "--db", str(db), "--port", str(port)],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    fetch(base + "/-/versions.json")
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("datasette did not start: " + server.stderr.read().decode()[-500:]) from None
                    time.sleep(0.1)
            table = base + "/illhub/resources.json?_size=50"
            words = [s.split()[0].lower() for s in SUBJECTS]
            search = base + "/illhub/resources.json?_size=50&_search={}"
            # warm up
            for _ in range(3):
                fetch(table)
                fetch(search.format(words[0]))
            table_times, search_times, errors, timeouts = [], [], 0, 0
            for i in range(samples):
                t, status, body = fetch(table)
                table_times.append(t)
                data = json.loads(body)
                errors += status != 200
                timeouts += len(data.get("facets_timed_out", []))
                t, status, _ = fetch(search.format(words[i % len(words)]))
                search_times.append(t)
                errors += status != 200
            single = p95(table_times + search_times)
            # 16 concurrent users alternating table and search views, each pausing between
            # pages as a person does (exponential think time, mean THINK seconds). With no
            # think time at all, 16 clients saturate any server and latency grows with
            # clients / cores: that saturation throughput is reported separately.
            conc_times: list[float] = []
            lock = threading.Lock()
            stop = time.monotonic() + duration

            def client(k: int, think: float, out: list[float]) -> None:
                nonlocal errors
                rng = random.Random(k)
                i = k
                while time.monotonic() < stop:
                    url = table if i % 2 else search.format(words[i % len(words)])
                    t, status, _ = fetch(url)
                    with lock:
                        out.append(t)
                        errors += status != 200
                    i += 1
                    if think:
                        time.sleep(rng.expovariate(1 / think))

            threads = [threading.Thread(target=client, args=(k, THINK, conc_times)) for k in range(16)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            saturated: list[float] = []
            stop = time.monotonic() + min(duration, 10)
            threads = [threading.Thread(target=client, args=(k, 0.0, saturated)) for k in range(16)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            throughput = len(saturated) / min(duration, 10)
        finally:
            server.terminate()
            server.wait(10)
    note = (f"{n} resources; errors {errors}; facet timeouts {timeouts}; {len(conc_times)} requests from 16 users "
            f"in {duration}s; saturated (no think time): {throughput:.1f} requests/s, p95 {p95(saturated) * 1000:.0f} ms")
    if errors or timeouts:
        note += " — FAILED: errors or facet timeouts"
    return [
        Figure(f"catalog ({n} rows): resources table with default facets, p95 vs 100 ms", p95(table_times) * 1000,
               100, "ms", p95(table_times) * 10, "<= 1.0", note=note),
        Figure(f"catalog ({n} rows): full-text search, p95 vs 250 ms", p95(search_times) * 1000, 250, "ms",
               p95(search_times) * 4, "<= 1.0"),
        Figure(f"catalog: p95 with 16 concurrent users ({THINK:g}s mean think time) vs single client", p95(conc_times) * 1000, single * 1000,
               "ms", p95(conc_times) / single, "<= 3.0"),
    ]
