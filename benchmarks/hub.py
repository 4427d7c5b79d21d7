"""The practitioner's hub pages on a large catalog (catalog/hub.py, catalog/listing.py,
catalog/listplan.py): ``/search`` for one- and two-word searches drawn at random from the
catalog's vocabulary plus ILL phrases, and the topic, system and source pages, each on its
default sort (relevance for a search, newest first for a list), served by ``illhub serve``.

Figures: the p95 of each against its budget (100 ms up to 100,000 resources, 250 ms above),
and the hub's search page against Datasette's own table search page for the same words in
the same run (the page people met before the hub; it counts from the full-text index and
samples its facets, catalog/search.py). Any answer but 200 fails the figures. The note says
which plan answered the searches (exact, or counted and ranked among the newest resources).

``ILLHUB_BENCH_CATALOG`` (a catalog :func:`benchmarks.catalog.build_catalog` built, with the
same number of resources) is copied instead of building one; ``--rows N`` sets that number.
``ILLHUB_BENCH_SERVE_WORKERS=N`` serves it with ``illhub serve --workers N`` (default 1), as
benchmarks/catalog.py does.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

from benchmarks.catalog import (
    SYSTEMS,
    TOPICS,
    fetch,
    free_port,
    p95,
    prepare_catalog,
    random_searches,
    serve_command,
    serve_workers,
    wait_for_warming,
    wait_until_served,
)
from benchmarks.common import ROOT, Figure

#: The practitioner's phrases (the synonyms, topics and systems catalog/wording.py reads).
ILL_PHRASES = ["fair use", "rule of 5", "lending workflow", "ILL", "interlibrary loan", "copyright", "tipasa",
               "borrowing", "webinar"]
#: The hub's page may cost this many times Datasette's table search page for the same words.
VS_TABLE = 1.5


def budget_ms(n: int) -> float:
    return 100.0 if n <= 100_000 else 250.0


def link_sources(db: Path) -> None:
    """Give each resource its row in ``resource_sources`` (the source pages list a source's
    resources from it, as the pipeline's store writes it; build_catalog leaves it empty)."""
    with sqlite3.connect(db) as conn:
        if conn.execute("select count(*) from resource_sources").fetchone()[0] == 0:
            conn.execute("insert into resource_sources (resource_id, source_id, first_seen, last_seen) "
                         "select id, source_id, first_seen, last_seen from resources")


def prepare(tmp: str, n: int) -> Path:
    db = Path(tmp) / "illhub.db"
    prepare_catalog(db, n)
    link_sources(db)
    return db


def plan_of(body: bytes) -> str:
    return "window" if b"most recently added resources" in body else "exact"


def run(quick: bool = False, rows: int | None = None) -> list[Figure]:
    n = rows or (20_000 if quick else int(os.environ.get("ILLHUB_BENCH_CATALOG_ROWS", "100000")))
    samples = 20 if quick else 60
    budget = budget_ms(n)
    with tempfile.TemporaryDirectory() as tmp:
        db = prepare(tmp, n)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen(serve_command(db, port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        errors: list[str] = []
        plans: dict[str, int] = {"exact": 0, "window": 0}

        def get(url: str) -> tuple[float, bytes]:
            try:
                t, status, body = fetch(base + url)
            except OSError as e:  # no answer within fetch's 30 s: an error, not the end of the run
                t, status, body = 30.0, 0, str(e).encode()
            if status != 200 and len(errors) < 5:
                errors.append(f"{status} for {url}")
            elif status != 200:
                errors.append("")
            return t, body

        try:
            wait_until_served(base, server)
            for _ in range(3):  # warm up: connections, the page cache, the wording lexicon
                get("/search?q=interlibrary")
                get("/illhub/resources?_search=interlibrary")
            # timed once the server's own precomputation after the change (a new catalog) is
            # done, as the catalog benchmark is: it runs for seconds in the background
            wait_for_warming(base, serve_workers())
            phrases = random_searches(random.Random(n), samples, exclude=set()) + ILL_PHRASES
            hub_times, table_times, seen = [], [], []
            for p in phrases:
                q = urllib.parse.quote(p)
                t, body = get(f"/search?q={q}")
                hub_times.append(t)
                seen.append((t, p))
                plans[plan_of(body)] += 1
                table_times.append(get(f"/illhub/resources?_search={q}")[0])
            rng = random.Random(n + 1)
            lists = ([f"/topic/{t}" for t in TOPICS] + [f"/system/{s}" for s in SYSTEMS]
                     + [f"/source/src-{rng.randrange(200)}" for _ in range(10)])
            list_times = [get(u)[0] for u in lists + lists]
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:  # a query still running in its threads
                server.kill()
                server.wait(10)
    broken = f"{len(errors)} answer(s) not 200: {', '.join(e for e in errors if e)}" if errors else ""
    slowest = sorted(seen, reverse=True)[:3]
    note = (f"{n} resources; {len(phrases)} searches ({samples} drawn at random from the vocabulary, one and two "
            f"words, plus {', '.join(ILL_PHRASES)}), each once, on the default sort (relevance); plans: "
            f"{plans['exact']} exact, {plans['window']} counted and ranked among the newest resources; slowest: "
            f"{', '.join(f'{p!r} {t * 1000:.0f} ms' for t, p in slowest)}; lists: {len(lists)} topic, system and "
            f"source pages, twice, newest first; Datasette's table search p95 {p95(table_times) * 1000:.0f} ms")
    if serve_workers() > 1:
        note += f"; served by {serve_workers()} worker processes (illhub serve --workers {serve_workers()})"
    hub = p95(hub_times) * 1000
    return [
        Figure(f"hub ({n} rows): /search, random one- and two-word and ILL phrases, p95 vs {budget:g} ms", hub,
               budget, "ms", hub / budget, "<= 1.0", note=note, broken=broken),
        Figure(f"hub ({n} rows): topic, system and source pages, p95 vs {budget:g} ms", p95(list_times) * 1000,
               budget, "ms", p95(list_times) * 1000 / budget, "<= 1.0", broken=broken),
        Figure(f"hub ({n} rows): /search p95 vs Datasette's table search p95, same words", hub,
               p95(table_times) * 1000, "ms", hub / (p95(table_times) * 1000), f"<= {VS_TABLE:g}", broken=broken),
    ]
