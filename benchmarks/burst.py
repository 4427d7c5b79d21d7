"""Heavy requests against the catalog (issue 21, item 8), measured by benchmarks/catalog.py on
the catalog it built:

- a row page's p95 while 50 expensive requests arrive at once, against a 1 s budget, with
  the same page's p95 on the idle server measured first (public profile: facets on text
  columns refused, sorting, searches, filters, canned queries and CSV pages held to their
  limit; and the local profile facing the issue's own burst, 50 facets by title,
  description, url and id);
- a page deep in the default sort against page 2 (keyset pages read a range of the index),
  and a full CSV stream of the table.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

from benchmarks.common import ROOT, Figure

BURST = 50
BUDGET_MS = 1000.0


def serve(db: Path, port: int, *args: str) -> subprocess.Popen:
    from benchmarks.catalog import wait_until_served

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "illhub", "serve", "--db", str(db), "--port", str(port), *args],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until_served(f"http://127.0.0.1:{port}", server)
    return server


def _token(*values: str) -> str:
    from datasette.utils import tilde_encode

    return urllib.parse.quote(",".join(tilde_encode(v) for v in values))


def public_burst(db: Path, words: list[str]) -> list[str]:
    """Fifty expensive requests of the kinds a public catalog answers (or refuses)."""
    conn = sqlite3.connect(db)
    n = conn.execute("select count(*) from resources").fetchone()[0]
    title, rid = conn.execute("select title, id from resources order by title, id limit 1 offset ?",
                              [n * 3 // 4]).fetchone()
    urls = [f"/illhub/resources.json?_facet={c}" for c in ("title", "description", "url", "id")] * 3
    urls += [f"/illhub/resources.json?organization=Organization+{i}&_facet=language&_facet=content_type"
             for i in range(8)]
    urls += [f"/illhub/resources.json?_sort=title&_next={_token(title, rid)}&_size={40 + i}" for i in range(10)]
    urls += [f"/illhub/resources.json?_search={w}&_facet=language" for w in words[:10]]
    urls += ["/illhub/link_health_by_source.json", "/illhub/new_this_week.json", "/illhub/harvest_summary.json",
             "/illhub/videos.json", "/illhub/upcoming_events.json"]
    urls += [f"/illhub/resources.csv?_size=max&content_type={t}" for t in ("video", "article", "page", "event", "document")]
    return urls[:BURST]


def local_burst() -> list[str]:
    """The issue's burst: fifty facets by title, description, url and id."""
    columns = ("title", "description", "url", "id")
    return [f"/illhub/resources.json?_facet={columns[i % 4]}&_size={10 + i}" for i in range(BURST)]


def row_page_under_burst(base: str, row_urls: list[str], burst: list[str]) -> dict:
    """The row page's latencies on the idle server, then while ``burst`` is sent all at once."""
    from benchmarks.catalog import fetch, p95

    for url in row_urls[:5]:
        fetch(base + url)
    idle = [fetch(base + row_urls[i % len(row_urls)])[0] for i in range(40)]
    statuses: Counter = Counter()
    during: list[float] = []
    lock = threading.Lock()
    done = threading.Event()
    start = time.perf_counter()

    def heavy(url: str) -> None:
        _t, status, _body = fetch(base + url)
        with lock:
            statuses[status] += 1

    threads = [threading.Thread(target=heavy, args=(u,)) for u in burst]
    for th in threads:
        th.start()

    def probe() -> None:
        i = 0
        while not done.is_set() or len(during) < 20:
            during.append(fetch(base + row_urls[i % len(row_urls)])[0])
            i += 1

    prober = threading.Thread(target=probe)
    prober.start()
    for th in threads:
        th.join()
    burst_seconds = time.perf_counter() - start
    done.set()
    prober.join()
    return {"idle_p95": p95(idle), "p95": p95(during), "max": max(during), "samples": len(during),
            "statuses": dict(sorted(statuses.items())), "seconds": burst_seconds}


def deep_page(base: str, db: Path) -> dict:
    """A JSON page at 90% of the default sort against page 2 (medians of 7), and a full CSV stream."""
    from benchmarks.catalog import fetch

    conn = sqlite3.connect(db)
    n = conn.execute("select count(*) from resources").fetchone()[0]

    def token_at(offset: int) -> str:
        published, rid = conn.execute("select published, id from resources order by published desc, id "
                                      "limit 1 offset ?", [offset]).fetchone()
        return _token(published, rid)

    def median_ms(offset: int) -> float:
        url = f"{base}/illhub/resources.json?_size=50&_nocount=1&_next={token_at(offset)}"
        fetch(url)
        return statistics.median(fetch(url)[0] for _ in range(7)) * 1000

    page2, deep = median_ms(50), median_ms(n * 9 // 10)
    t, status, body = fetch(f"{base}/illhub/resources.csv?_stream=on&_size=max&_nocount=1")
    return {"page2": page2, "deep": deep, "stream_seconds": t, "stream_rows": body.count(b"\n") - 1,
            "stream_status": status}


def figures(db: Path, n: int, words: list[str]) -> list[Figure]:
    from benchmarks.catalog import free_port

    rows = [f"/illhub/resources/{r[0]}" for r in sqlite3.connect(db).execute(
        "select id from resources order by random() limit 50")]
    port = free_port()
    server = serve(db, port, "--public")
    try:
        base = f"http://127.0.0.1:{port}"
        public = row_page_under_burst(base, rows, public_burst(db, words))
        keyset = deep_page(base, db)
    finally:
        server.terminate()
        server.wait(30)
    port = free_port()
    server = serve(db, port)
    try:
        local = row_page_under_burst(f"http://127.0.0.1:{port}", rows, local_burst())
    finally:
        server.terminate()
        server.wait(30)

    def note(r: dict, what: str) -> str:
        return (f"{n} resources; {what}; the row page's p95 on the idle server {r['idle_p95'] * 1000:.0f} ms "
                f"(under the burst {r['p95'] / r['idle_p95']:.1f}x that), slowest {r['max'] * 1000:.0f} ms, "
                f"{r['samples']} row pages during the burst, which took {r['seconds']:.1f}s; the burst's answers "
                f"by status: {r['statuses']}")

    return [
        Figure(f"catalog --public: a row page's p95 during a burst of {BURST} heavy requests, vs 1 s",
               public["p95"] * 1000, BUDGET_MS, "ms", public["p95"] * 1000 / BUDGET_MS, "<= 1.0",
               note=note(public, "burst: facets by title/description/url/id (refused), filtered facets, "
                                 "a sort by title deep in the table, searches with a facet, canned queries, CSV pages")),
        Figure(f"catalog (local profile): a row page's p95 during {BURST} facets by title/description/url/id, vs 1 s",
               local["p95"] * 1000, BUDGET_MS, "ms", local["p95"] * 1000 / BUDGET_MS, "<= 1.0",
               note=note(local, "the issue's burst, not refused here: held to their limit")),
        Figure("catalog: a page at 90% of the default sort vs page 2 (keyset pages through the index)",
               keyset["deep"], keyset["page2"], "ms", keyset["deep"] / keyset["page2"], "<= 2.0",
               note=f"{n} resources; a full CSV stream of the table (?_stream=on): {keyset['stream_rows']} rows "
                    f"in {keyset['stream_seconds']:.1f}s ({keyset['stream_rows'] / keyset['stream_seconds']:.0f} "
                    f"rows/s), status {keyset['stream_status']}"),
    ]
