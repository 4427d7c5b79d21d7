"""Storage: the catalog's upsert path against raw ``executemany``.

1. Upserting N prepared resources with ``write_prepared`` (batches of 1,000, as harvests
   write them: existence lookup, content hashes, attribution, raw entries, FTS triggers)
   against a raw ``executemany`` of the same final rows into the same three tables of the
   same schema in one transaction. Ratio = raw time / our time (>= 0.3). The CPU stage
   before it (normalize and classify, ``prepare_batch``) is reported in the note.
2. A nightly increment: 5,000 changed resources upserted into a catalog of N with FTS,
   against inserting the same 5,000 into an empty catalog. Ratio = increment / empty (<= 3).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure
from benchmarks.content import description, title
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, prepare_batch, store_batch, sync_sources, write_prepared

BATCH = 1000


def make_resources(n: int, seed: int = 7, start: int = 0, changed: bool = False) -> list[Resource]:
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        out.append(Resource(
            url=f"https://library{i % 500}.example.org/ill/posts/{i}/",
            title=title(rng) + (" (updated)" if changed else ""),
            description=description(rng),
            content_type="article",
            published=f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00Z",
            raw={"id": i},
        ))
    return out


def _store(db, resources: list[Resource]) -> float:
    t = time.perf_counter()
    for i in range(0, len(resources), BATCH):
        store_batch(db, Batch("bench", resources[i : i + BATCH]), source_topics=[], now="2026-11-28T00:00:00Z")
    return time.perf_counter() - t


def _fresh(path: Path):
    db = open_db(path)
    sync_sources(db, [{"id": "bench", "name": "Bench", "kind": "feed"}])
    return db


def run(quick: bool = False) -> list[Figure]:
    n = 20_000 if quick else 100_000
    inc = 1_000 if quick else 5_000
    resources = make_resources(n)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        batches = [prepare_batch(Batch("bench", resources[i : i + BATCH]), source_topics=[])[0]
                   for i in range(0, n, BATCH)]
        prepare = time.perf_counter() - t
        ours_db = _fresh(tmp / "ours.db")
        t = time.perf_counter()
        for prepared in batches:
            write_prepared(ours_db, "bench", prepared, now="2026-11-28T00:00:00Z")
        ours = time.perf_counter() - t
        tables = {}
        for table in ("resources", "resource_sources", "raw_entries"):
            cols = [r[1] for r in ours_db.execute(f"PRAGMA table_info({table})").fetchall()]
            tables[table] = (cols, ours_db.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall())
        raw_db = _fresh(tmp / "raw.db")
        t = time.perf_counter()
        with raw_db.atomic():
            for table, (cols, rows) in tables.items():
                raw_db.conn.executemany(
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)
        raw = time.perf_counter() - t
        # nightly increment: `inc` existing resources changed, into the full catalog ...
        changed = make_resources(inc, seed=99, start=n // 2, changed=True)
        increment = _store(ours_db, changed)
        # ... against the same rows into an empty catalog
        empty_db = _fresh(tmp / "empty.db")
        empty = _store(empty_db, make_resources(inc, seed=99, start=n // 2, changed=True))
        assert ours_db.execute("SELECT count(*) FROM resources").fetchone()[0] == n
    return [
        Figure(f"storage: upsert {n} prepared resources vs raw executemany of the same rows", ours, raw, "s",
               raw / ours, ">= 0.3", note=f"upsert {n / ours:,.0f} rows/s, raw executemany {n / raw:,.0f} rows/s; "
               f"the CPU stage before it (normalize, classify) runs at {n / prepare:,.0f} rows/s"),
        Figure(f"storage: nightly increment of {inc} changed rows into {n} with FTS vs into an empty table",
               increment, empty, "s", increment / empty, "<= 3.0"),
    ]



