"""Memory: peak RSS of a harvest of 10x more feeds against the smaller one (streaming: each
batch is stored as it arrives and nothing accumulates per entry)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import Figure, peak_rss_of
from benchmarks.content import registry_yaml, rss_feed
from benchmarks.server import BenchServer, loopback_addresses
from illhub.loopback import Request


def _harvest_rss(server: BenchServer, addresses: list[str], n: int, tmp: Path) -> float:
    urls = [server.url(f"/feeds/{i}.rss", addresses[i % len(addresses)]) for i in range(n)]
    reg = tmp / f"registry-{n}.yaml"
    reg.write_text(registry_yaml(urls))
    rss, result = peak_rss_of("harvest", "--registry", str(reg), "--db", str(tmp / f"m{n}.db"),
                              "--delay", "0.001", "--quiet")
    if result.returncode != 0:
        raise RuntimeError(f"harvest of {n} feeds failed: {result.stdout[-800:]} {result.stderr[-800:]}")
    return rss


def run(quick: bool = False) -> list[Figure]:
    small, large = (50, 500) if quick else (100, 1000)
    feeds = {i: rss_feed(i) for i in range(large)}
    addresses = loopback_addresses(50, first=200)

    def handler(request: Request):
        path = request.path
        if path == "/robots.txt":
            return 404, {}, b""
        return 200, {"Content-Type": "application/rss+xml"}, feeds[int(path.rsplit("/", 1)[1].split(".")[0])]

    with BenchServer(handler, addresses) as server, tempfile.TemporaryDirectory() as tmp:
        rss_small = _harvest_rss(server, addresses, small, Path(tmp))
        rss_large = _harvest_rss(server, addresses, large, Path(tmp))
    return [Figure(f"memory: peak RSS of a {large}-feed harvest vs a {small}-feed harvest",
                   rss_large, rss_small, "MiB", rss_large / rss_small, "<= 1.5")]
