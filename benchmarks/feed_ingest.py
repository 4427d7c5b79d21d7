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


def _harvest(server, addresses, n_feeds: int, n_hosts: int, tmp: str, workers: str):
    urls = [server.url(addresses[i % n_hosts], f"/feeds/{i}.rss") for i in range(n_feeds)]
    reg = Path(tmp) / "registry.yaml"
    reg.write_text(registry_yaml(urls))
    before = len(server.stats.hits)
    result = run_illhub("harvest", "--registry", str(reg), "--db", str(Path(tmp) / f"b-{workers}.db"),
                        "--delay", "0.001", "--quiet", "--workers", workers)
    if result.returncode != 0:
        raise RuntimeError(f"harvest failed: {result.stdout[-1000:]} {result.stderr[-1000:]}")
    fetched = len([h for h in server.stats.hits[before:] if h.path.startswith("/feeds/")])
    assert fetched == n_feeds, f"expected {n_feeds} feed fetches, server saw {fetched}"
    return result


def run(quick: bool = False) -> list[Figure]:
    n_feeds = 100 if quick else 500
    n_hosts = 50
    feeds = {i: rss_feed(i) for i in range(n_feeds)}
    addresses = loopback_addresses(n_hosts)

    def handler(host: str, path: str, headers: dict[str, str]):
        if path == "/robots.txt":
            return 404, {"Content-Type": "text/plain"}, b""
        i = int(path.rsplit("/", 1)[1].split(".")[0])
        return 200, {"Content-Type": "application/rss+xml"}, feeds[i]

    # Baseline: feedparser alone on the same bytes.
    t = time.perf_counter()
    for body in feeds.values():
        feedparser.parse(body)
    baseline = time.perf_counter() - t

    with BenchServer(handler, addresses) as server, tempfile.TemporaryDirectory() as tmp:
        # as a user runs it (parse workers: --workers auto), and all in one process
        result = _harvest(server, addresses, n_feeds, n_hosts, tmp, "auto")
        inline = _harvest(server, addresses, n_feeds, n_hosts, tmp, "0")
    from harvesters.offload import auto_workers

    workers = auto_workers(n_feeds)
    return [Figure(f"feed ingest: {n_feeds} feeds x 20 entries, end to end vs feedparser parse-only",
                   result.seconds, baseline, "s", baseline / result.seconds, ">= 0.5",
                   note=f"harvest {result.seconds:.2f}s (incl. process start; {workers} parse worker(s) on "
                   f"{os.cpu_count()} cores), parse-only {baseline:.2f}s; all in one process (--workers 0): "
                   f"{inline.seconds:.2f}s, ratio {baseline / inline.seconds:.3f}")]
