"""Politeness-bound run: H hosts x P documents with one request at a time per host and a delay
d. Parallel across hosts, polite within each: the crawl's wall time (first to last request, at
the server) against the floor set by the busiest host ((its requests - 1) x d), and the
smallest spacing between two requests to one host against d — both measured at the server."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import Figure, run_illhub
from benchmarks.content import registry_yaml, rss_feed
from benchmarks.server import BenchServer, loopback_addresses
from illhub.loopback import Request


def run(quick: bool = False) -> list[Figure]:
    hosts, per_host, delay = (10, 10, 0.2) if quick else (40, 25, 0.2)
    body = rss_feed(0, entries=1)
    addresses = loopback_addresses(hosts, first=100)

    def handler(request: Request):
        if request.path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"
        return 200, {"Content-Type": "application/rss+xml"}, body

    with BenchServer(handler, addresses) as server, tempfile.TemporaryDirectory() as tmp:
        urls = [server.url(f"/feeds/{j}.rss", a) for j in range(per_host) for a in addresses]
        reg = Path(tmp) / "registry.yaml"
        reg.write_text(registry_yaml(urls))
        result = run_illhub("harvest", "--registry", str(reg), "--db", str(Path(tmp) / "p.db"),
                            "--delay", str(delay), "--quiet")
        if result.returncode != 0:
            raise RuntimeError(f"harvest failed: {result.stdout[-800:]} {result.stderr[-800:]}")
        by_host = server.by_host()
        max_in_flight = max(server.max_in_flight_by_host.values())
    hits = [h for hs in by_host.values() for h in hs]
    span = max(h.started for h in hits) - min(h.started for h in hits)
    busiest = max(len(hs) for hs in by_host.values())
    floor = (busiest - 1) * delay
    gaps = [b.started - a.started for hs in by_host.values() for a, b in zip(hs, hs[1:], strict=False)]
    min_gap = min(gaps)
    return [
        Figure(f"politeness: {hosts} hosts x {per_host} docs, d={delay}s: crawl wall time vs floor",
               span, floor, "s", span / floor, "<= 1.1",
               note=f"whole command {result.seconds:.1f}s incl. start-up; {len(hits)} requests"),
        Figure(f"politeness: smallest spacing between two requests to one host vs d={delay}s",
               min_gap, delay, "s", min_gap / delay, ">= 0.95",
               note=f"max concurrent requests seen at any one host: {max_in_flight}"),
    ]
