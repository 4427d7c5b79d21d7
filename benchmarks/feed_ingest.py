"""Feed ingest: N feeds end to end (fetch, parse, normalize, classify, store) with the real
``illhub harvest``, against feedparser parse-only on the same bytes. Ratio = baseline time /
harvest time (higher is better; 1.0 would mean the whole stack costs no more than parsing)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import feedparser

from benchmarks.common import Figure, run_illhub
from benchmarks.content import registry_yaml, rss_feed
from benchmarks.server import BenchServer, loopback_addresses
from illhub.loopback import Request


def _harvest(server, addresses, n_feeds: int, n_hosts: int, tmp: str, workers: str, tag: object = ""):
    urls = [server.url(f"/feeds/{i}.rss", addresses[i % n_hosts]) for i in range(n_feeds)]
    reg = Path(tmp) / "registry.yaml"
    reg.write_text(f"# feed ingest {workers} {tag}\n" + registry_yaml(urls))
    before = len(server.hits())
    result = run_illhub("harvest", "--registry", str(reg), "--db", str(Path(tmp) / f"b-{workers}.db"),
                        "--delay", "0.001", "--quiet", "--workers", workers)
    if result.returncode != 0:
        raise RuntimeError(f"harvest failed: {result.stdout[-1000:]} {result.stderr[-1000:]}")
    fetched = len([h for h in server.hits()[before:] if h.path.startswith("/feeds/")])
    assert fetched == n_feeds, f"expected {n_feeds} feed fetches, server saw {fetched}"
    return result


def run(quick: bool = False) -> list[Figure]:
    n_feeds = 100 if quick else 500
    n_hosts = 50
    feeds = {i: rss_feed(i) for i in range(n_feeds)}
    addresses = loopback_addresses(n_hosts)

    def handler(request: Request):
        path = request.path
        if path == "/robots.txt":
            return 404, {"Content-Type": "text/plain"}, b""
        i = int(path.rsplit("/", 1)[1].split(".")[0])
        return 200, {"Content-Type": "application/rss+xml"}, feeds[i]

    def parse_only() -> float:
        t = time.perf_counter()
        for body in feeds.values():
            feedparser.parse(body)
        return time.perf_counter() - t

    # Both sides are timed more than once, in turn, and the best time of each counts (as
    # timeit does): on a shared machine whose speed drifts, one slow moment would otherwise
    # decide the ratio either way. Baseline: feedparser alone on the same bytes.
    baselines = [parse_only()]
    with BenchServer(handler, addresses) as server:
        # as a user runs it (parse workers: --workers auto), each run into a new catalog from
        # a registry it has not seen (nothing parsed before); and all in one process
        runs = []
        for k in range(2):
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(_harvest(server, addresses, n_feeds, n_hosts, tmp, "auto", tag=k))
            baselines.append(parse_only())
        result = min(runs, key=lambda r: r.seconds)
        baseline = min(baselines)
        with tempfile.TemporaryDirectory() as tmp:
            inline = _harvest(server, addresses, n_feeds, n_hosts, tmp, "0")
    from harvesters.offload import auto_workers

    workers = auto_workers(n_feeds)
    return [Figure(f"feed ingest: {n_feeds} feeds x 20 entries, end to end vs feedparser parse-only",
                   result.seconds, baseline, "s", baseline / result.seconds, ">= 0.75",
                   note=f"harvest {result.seconds:.2f}s, best of {' and '.join(f'{r.seconds:.2f}' for r in runs)} (incl. "
                   f"process start; {workers} parse worker(s) on {os.cpu_count()} cores), parse-only "
                   f"{baseline:.2f}s (best of {len(baselines)}, taken between the runs); all in one process (--workers 0): "
                   f"{inline.seconds:.2f}s, ratio {baseline / inline.seconds:.3f}")]
