"""Dispatch overhead: the same 200-source harvest on this machine and through two Scrapyd
servers (``illhub harvest --scrapyd``), both run as a user runs them (the CLI, from process
start to the summary), at the same polite delay, into new catalogs.

The sources are feeds of 20 entries on 20 loopback hosts, 10 per host, harvested at the default
politeness (one request at a time per host, 1 s apart), so the floor (10 requests to a host) is
the same for both, as it would be for a nightly harvest. Both Scrapyd servers run on this
machine: what the ratio measures is what dispatch adds (scheduling, Scrapyd starting a process
per job, polling, sending the feeds back and storing them here), not a speed-up from more
machines. The egg is deployed before the timed runs (a deployment happens once per version).
Scrapyd's ``poll_interval`` is 1 s here (its default is 5 s: each job may wait that long
before it starts).
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from benchmarks.common import Figure, run_illhub
from benchmarks.content import registry_yaml, rss_feed
from benchmarks.server import BenchServer, loopback_addresses
from illhub.loopback import Request

HOSTS = 20


def _handler(feeds: dict[int, bytes]):
    def handler(request: Request):
        if request.path == "/robots.txt":
            return 404, {}, b""
        i = int(request.path.rsplit("/", 1)[1].split(".")[0])
        return 200, {"Content-Type": "application/rss+xml"}, feeds[i]

    return handler


def _harvest(registry: Path, db: Path, *extra: str) -> float:
    result = run_illhub("harvest", "--registry", str(registry), "--db", str(db), "--quiet", *extra)
    if result.returncode != 0:
        raise RuntimeError(f"harvest failed: {result.stdout[-800:]} {result.stderr[-800:]}")
    return result.seconds


def _count(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        return (conn.execute("SELECT count(*) FROM resources").fetchone()[0],
                conn.execute("SELECT count(*) FROM harvest_runs WHERE status = 'ok'").fetchone()[0])
    finally:
        conn.close()


def run(quick: bool = False) -> list[Figure]:
    from illhub.distributed.dispatch import connect
    from illhub.distributed.local import LocalScrapyd

    n = 60 if quick else 200
    feeds = {i: rss_feed(i) for i in range(n)}
    addresses = loopback_addresses(HOSTS, first=600)
    with tempfile.TemporaryDirectory() as tmp, BenchServer(_handler(feeds), addresses) as server:
        tmp_path = Path(tmp)
        urls = [server.url(f"/feeds/{i}.rss", addresses[i % HOSTS]) for i in range(n)]
        registry = tmp_path / "registry.yaml"
        registry.write_text(registry_yaml(urls))
        # the crawl machines' own network policy: loopback only, as for the local harvest
        options = {"poll_interval": 1.0, "env": {"ILLHUB_NETWORK": "loopback"}}
        with LocalScrapyd(tmp_path / "s1", **options) as one, LocalScrapyd(tmp_path / "s2", **options) as two:
            _, problems = connect([one.url, two.url])  # deploys the egg, once
            if problems:
                raise RuntimeError("; ".join(problems))
            local, dispatched = [], []
            for k in range(2):  # interleaved, the best of two each (a shared machine has slow moments)
                local.append(_harvest(registry, tmp_path / f"local-{k}.db"))
                dispatched.append(_harvest(registry, tmp_path / f"dispatch-{k}.db", "--scrapyd",
                                           f"{one.url},{two.url}"))
        counts = {_count(tmp_path / f"{kind}-{k}.db") for kind in ("local", "dispatch") for k in range(2)}
    if counts != {(n * 20, n)}:
        raise RuntimeError(f"the harvests differ: (resources, ok sources) {sorted(counts)}, expected {(n * 20, n)}")
    best_local, best_dispatch = min(local), min(dispatched)
    return [Figure(
        f"dispatch: {n}-source harvest through 2 local Scrapyd servers vs on this machine", best_dispatch, best_local,
        "s", best_dispatch / best_local, "<= 3.0",
        note=f"{n} feeds x 20 entries on {HOSTS} hosts, default delay (1 s), 2 jobs (one per server); wall time of "
             f"the whole command, best of two: on this machine {', '.join(f'{s:.2f}' for s in local)}s, dispatched "
             f"{', '.join(f'{s:.2f}' for s in dispatched)}s (dispatch adds {best_dispatch - best_local:.1f}s); both "
             f"catalogs {n * 20} resources, {n} sources ok",
    )]
