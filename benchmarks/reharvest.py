"""Re-harvest of unchanged sources: the second nightly run against the first.

With a server that honours validators (ETag, Last-Modified → 304): bytes transferred and wall
time of the second run against the first (<= 0.1 and <= 0.3), and zero parses and zero
content writes. With a server that ignores validators (always 200 with the same body): the
content hash skips parsing (parses <= 0.05 of the first run's).
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from email.utils import formatdate
from pathlib import Path

from benchmarks.common import Figure, run_illhub
from benchmarks.content import registry_yaml, rss_feed
from benchmarks.server import BenchServer, loopback_addresses
from illhub.loopback import Request

LAST_MODIFIED = formatdate(1_764_000_000, usegmt=True)


def _handler(feeds: dict[int, bytes], honour: bool):
    etags = {i: '"' + hashlib.sha1(b).hexdigest()[:16] + '"' for i, b in feeds.items()}

    def handler(request: Request):
        path, headers = request.path, request.headers
        if path == "/robots.txt":
            return 404, {}, b""
        i = int(path.rsplit("/", 1)[1].split(".")[0])
        h = {"Content-Type": "application/rss+xml", "ETag": etags[i], "Last-Modified": LAST_MODIFIED}
        if honour and (headers.get("if-none-match") == etags[i] or headers.get("if-modified-since") == LAST_MODIFIED):
            return 304, h, b""
        return 200, h, feeds[i]

    return handler


def _contents(db: Path) -> dict[str, tuple]:
    """Every resource's content as stored: its hash and when it last changed."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(db)
    try:
        return {rid: (h, changed) for rid, h, changed in conn.execute(
            "SELECT id, content_hash, last_changed FROM resources")}
    finally:
        conn.close()


def _run_twice(n: int, honour: bool, tmp: Path) -> dict:
    feeds = {i: rss_feed(i) for i in range(n)}
    addresses = loopback_addresses(50, first=300)
    out = {}
    with BenchServer(_handler(feeds, honour), addresses) as server:
        urls = [server.url(f"/feeds/{i}.rss", addresses[i % 50]) for i in range(n)]
        tmp.mkdir(parents=True, exist_ok=True)
        reg = tmp / f"registry-{honour}.yaml"
        reg.write_text(f"# re-harvest benchmark, {tmp.name}\n" + registry_yaml(urls))  # never parsed before
        db = tmp / f"r-{honour}.db"
        for run in (1, 2):
            before = len(server.hits())
            stored = _contents(db)
            result = run_illhub("harvest", "--registry", str(reg), "--db", str(db), "--delay", "0.001", "--quiet")
            if result.returncode != 0:
                raise RuntimeError(f"harvest {run} failed: {result.stdout[-800:]} {result.stderr[-800:]}")
            hits = server.hits()[before:]
            conn = sqlite3.connect(db)
            group = conn.execute("SELECT run_group FROM harvest_runs ORDER BY id DESC LIMIT 1").fetchone()[0]
            documents, unchanged, updated, new = conn.execute(
                "SELECT sum(documents), sum(documents_unchanged), sum(items_updated), sum(items_new) "
                "FROM harvest_runs WHERE run_group = ?", [group]).fetchone()
            conn.close()
            after = _contents(db)
            # resources this run added or whose content it changed, row by row (a timestamp
            # comparison cannot tell this run's writes from the previous run's in the same second)
            changed = sum(1 for rid, content in after.items() if stored.get(rid) != content)
            out[run] = {"seconds": result.seconds, "bytes": sum(h.body_bytes for h in hits), "requests": len(hits),
                        "parses": documents - unchanged, "writes": (updated or 0) + (new or 0), "changed": changed}
    return out


def run(quick: bool = False) -> list[Figure]:
    n = 100 if quick else 500
    with tempfile.TemporaryDirectory() as tmp:
        # the timed pair twice, each into a new catalog, the best time of each run counting
        # (as feed_ingest.py does): on a shared machine one slow moment would otherwise decide
        # a ratio of two short runs either way
        pairs = [_run_twice(n, True, Path(tmp) / f"pair-{k}") for k in range(2)]
        ignored = _run_twice(n, False, Path(tmp) / "ignored")
    honoured = pairs[-1]
    a, b = honoured[1], honoured[2]
    first = min(p[1]["seconds"] for p in pairs)
    second = min(p[2]["seconds"] for p in pairs)
    note = (f"second run: {b['requests']} requests, {b['parses']} parses, {b['writes']} content writes, "
            f"{b['changed']} resources changed (first run: {a['parses']} parses, {a['writes']} writes)")
    broken = ""
    if b["parses"] or b["writes"] or b["changed"]:
        broken = (f"the second run parsed {b['parses']}, wrote {b['writes']} and changed {b['changed']} resources; "
                  "expected none")
    c, d = ignored[1], ignored[2]
    broken_ignored = ""
    if d["writes"] or d["changed"]:
        broken_ignored = f"the second run wrote {d['writes']} and changed {d['changed']} resources; expected none"
    return [
        Figure(f"re-harvest of {n} unchanged feeds (validators honoured): bytes vs first run", b["bytes"], a["bytes"],
               "B", b["bytes"] / a["bytes"], "<= 0.1", note=note, broken=broken),
        Figure(f"re-harvest of {n} unchanged feeds (validators honoured): wall time vs first run", second,
               first, "s", second / first, "<= 0.3",
               note="best of two first runs and of two second runs, each pair into a new catalog: "
                    + ", ".join(f"{p[1]['seconds']:.2f} then {p[2]['seconds']:.2f}" for p in pairs)),
        Figure(f"re-harvest of {n} unchanged feeds (validators ignored): parses vs first run", d["parses"],
               c["parses"], "", d["parses"] / max(c["parses"], 1), "<= 0.05",
               note=f"second run {d['writes']} content writes, {d['changed']} resources changed",
               broken=broken_ignored),
    ]
