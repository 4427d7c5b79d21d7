"""Catalog: Datasette serving N resources with illhub's metadata, over real HTTP (and, in
benchmarks/burst.py, a burst of heavy requests, deep pages and a CSV stream).

Figures: p95 latency of the resources table with its default facets, and of a full-text
search, against the issue's budgets (100 ms and 250 ms: ratio = p95 / budget, <= 1); and p95
under 16 concurrent clients against the single-client p95 (<= 2). Zero errors, and zero
"facet timed out" for a single client (the two budgets and the single-client browsing mix),
are required; Datasette's default limits are not raised. Facet timeouts are counted per
phase and per facet: under 16 users and at saturation a facet that misses Datasette's facet
time limit is left out of the page by design, and the note reports it.

The concurrency figure and its single-client baseline send the same mix of requests, as
people browsing the catalog would (:func:`browsing_urls`): the table, unfiltered or narrowed
by one facet value, and searches of one or two words, some narrowed by a facet value, with
search phrases drawn from a Zipf distribution (a few are popular, most are rare) over a few
hundred phrases. The catalog caches facet counts until the database changes, so the note
gives the cache's hit rate in each phase.

``ILLHUB_BENCH_SERVE_WORKERS=N`` (default 1) serves the catalog with ``illhub serve --workers N``
(the burst figures keep one process: they measure one process's load guard). Each worker has
its own cache and warmer: the timing starts once every worker has warmed, and each phase's hit
rate is summed over the workers (:func:`cache_stats` asks until it has heard from each).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

from benchmarks import burst
from benchmarks.common import ROOT, Figure
from benchmarks.content import SUBJECTS, VERBS, description, title
from catalog.search import DEFAULT_FACETS as DEFAULT_FACET_TYPES
from catalog.search import WARM_MIN_MATCHES, WARM_SEARCHES, frequent_words
from pipeline.store import open_db

#: Longest wait for the server's precomputation of frequent searches (seconds).
WARM_TIMEOUT = 1800

#: Mean pause between two pages of one simulated user (seconds).
THINK = 1.0

TOPICS = ["basics", "borrowing", "lending", "copyright", "licensing", "international", "systems",
          "interoperability", "reports", "workflows", "best-practices", "training", "conferences", "news"]
SYSTEMS = ["illiad", "tipasa", "worldshare-ill", "alma", "rapido", "reshare", "relais"]
TYPES = ["article", "video", "documentation", "page", "document", "event"]


#: The phases of the run, in order: the two budgets and the browsing mix for one client, then
#: 16 users with think time, then 16 clients without (saturation).
PHASES = ("budgets", "single client", "16 users", "saturated")

#: The resources table's facets (datasette_config/metadata.yml).
DEFAULT_FACETS = set(DEFAULT_FACET_TYPES)
STOPWORDS = {"and", "the", "for", "with", "at", "in", "a", "to", "of", "new", "what", "we", "ten"}


def search_phrases(rng: random.Random, count: int = 400) -> list[str]:
    """``count`` distinct search phrases (one or two words of the catalog's vocabulary), in
    order of popularity."""
    words = sorted({w.strip(":,").lower() for text in SUBJECTS + VERBS for w in text.split()} - STOPWORDS)
    words = [w for w in words if len(w) > 2]
    phrases = words + [f"{a} {b}" for a in words for b in words if a < b]
    rng.shuffle(phrases)
    return phrases[:count]


def vocabulary() -> list[str]:
    """Every distinct word of the catalog's titles and descriptions (benchmarks/content.py),
    stop words included: what a search may be made of."""
    from benchmarks.content import SENTENCES

    text = " ".join(SUBJECTS + VERBS + [s.format(s="") for s in SENTENCES])
    return sorted({w for w in re.findall(r"\w+", text.lower())})


def random_searches(rng: random.Random, count: int, exclude: set[str]) -> list[str]:
    """``count`` distinct searches, half of one word and half of two, the words drawn
    uniformly at random from :func:`vocabulary` (rare and frequent alike), none of them in
    ``exclude`` (the searches the server precomputes)."""
    words = [w for w in vocabulary() if w not in exclude]
    out: list[str] = []
    if len(words) < count:
        raise ValueError(f"only {len(words)} words of the vocabulary are not precomputed; {count} searches asked")
    while len(out) < count:
        phrase = " ".join(rng.sample(words, 1 + len(out) % 2))
        if phrase not in out and phrase not in exclude:
            out.append(phrase)
    return out


def browsing_urls(seed: int):
    """An endless stream of catalog URLs as people browsing it send them: 40% table views
    (half of them narrowed by one facet value, as the facets link: _topic=, _system=, column=value), 60% searches (a quarter of them narrowed), the
    search phrase drawn from a Zipf distribution (s = 1) over 400 phrases."""
    rng = random.Random(seed)
    phrases = search_phrases(random.Random(7))
    weights = [1 / (rank + 1) for rank in range(len(phrases))]
    narrowing = ([("content_type", t) for t in TYPES] + [("_topic", t) for t in TOPICS]
                 + [("_system", s) for s in SYSTEMS]
                 + [("organization", f"Organization {i}") for i in range(60)])
    base = "/illhub/resources.json?_size=50"
    while True:
        args = {}
        if rng.random() < 0.6:
            args["_search"] = rng.choices(phrases, weights)[0]
            narrow = rng.random() < 0.25
        else:
            narrow = rng.random() < 0.5
        if narrow:
            key, value = rng.choice(narrowing)
            args[key] = value
        yield base + "".join(f"&{urllib.parse.quote(k)}={urllib.parse.quote(v)}" for k, v in args.items())


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


def serve_workers() -> int:
    """The worker processes the served catalog runs with (env ``ILLHUB_BENCH_SERVE_WORKERS``, default 1)."""
    value = os.environ.get("ILLHUB_BENCH_SERVE_WORKERS", "1")
    if not value.isdigit() or int(value) < 1:
        raise RuntimeError(f"ILLHUB_BENCH_SERVE_WORKERS={value!r} is not a number of processes (1 or more)")
    return int(value)


def serve_command(db: Path, port: int) -> list[str]:
    """``illhub serve`` for the benchmark's catalog, with ``--workers`` from :func:`serve_workers`."""
    return [sys.executable, "-m", "illhub", "serve", "--db", str(db), "--port", str(port),
            "--workers", str(serve_workers())]


#: Most requests to /-/facet-cache.json spent hearing from every worker at a phase's end.
STATS_ATTEMPTS = 400


def cache_stats(base: str, workers: int = 1) -> dict[int, dict]:
    """Each worker's ``/-/facet-cache.json``, by pid: asked again (each time on a new connection,
    which the kernel hands to any worker) until ``workers`` pids answered, or
    :data:`STATS_ATTEMPTS` requests; the workers not heard from are missing."""
    seen: dict[int, dict] = {}
    for _ in range(STATS_ATTEMPTS if workers > 1 else 1):
        _, _, body = fetch(base + "/-/facet-cache.json")
        stats = json.loads(body)
        seen[stats.get("pid", 0)] = stats
        if len(seen) >= workers:
            break
    return seen


def hit_rate(before: dict[int, dict], after: dict[int, dict]) -> str:
    """The hit rate between two :func:`cache_stats`, summed over the workers in ``after`` (one
    not heard from in ``before`` counts from zero: a worker replaced meanwhile starts empty)."""
    zero = {"hits": 0, "misses": 0}
    hits = sum(a["hits"] - before.get(pid, zero)["hits"] for pid, a in after.items())
    misses = sum(a["misses"] - before.get(pid, zero)["misses"] for pid, a in after.items())
    return f"{hits / (hits + misses):.0%}" if hits + misses else "n/a"


class Browser:
    """A served catalog and what its requests met: errors, and facet timeouts per phase."""

    def __init__(self, base: str):
        self.base = base
        self.errors = 0
        #: (phase, status, URL, start of the answer) of the first few errors, for the note
        self.error_samples: list[tuple[str, int, str, str]] = []
        self.phase = "budgets"
        self.timeouts: dict[str, Counter] = {p: Counter() for p in PHASES}
        self.lock = threading.Lock()

    def get(self, url: str) -> float:
        """Fetch one page, count errors and facet timeouts, return its latency."""
        t, status, body = fetch(self.base + url)
        timed_out: set[str] = set()
        if status == 200:
            try:
                # Datasette 0.65's JSON has no facets_timed_out: a facet that timed out is
                # missing from facet_results (the six default facets always answer otherwise)
                timed_out = DEFAULT_FACETS - set(json.loads(body).get("facet_results", {}))
            except ValueError:
                pass
        with self.lock:
            self.errors += status != 200
            if status != 200 and len(self.error_samples) < 3:
                self.error_samples.append((self.phase, status, url, body[:120].decode("utf-8", "replace")))
            self.timeouts[self.phase].update(timed_out)
        return t

    def clients(self, phase: str, seeds: range, think: float, seconds: float) -> list[float]:
        """Latencies of ``len(seeds)`` people browsing at once for ``seconds``, each pausing
        between pages (exponential think time, mean ``think`` seconds; 0: no pause)."""
        self.phase = phase
        out: list[float] = []
        stop = time.monotonic() + seconds

        def client(k: int) -> None:
            rng = random.Random(k)
            urls = browsing_urls(seed=k)
            while time.monotonic() < stop:
                t = self.get(next(urls))
                with self.lock:
                    out.append(t)
                if think:
                    time.sleep(rng.expovariate(1 / think))

        threads = [threading.Thread(target=client, args=(k,)) for k in seeds]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return out


def wait_until_served(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            fetch(base + "/-/versions.json")
            return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("datasette did not start: " + server.stderr.read().decode()[-500:]) from None
            time.sleep(0.1)


def wait_for_warming(base: str, workers: int = 1) -> tuple[dict, float]:
    """After a change (here: a new catalog) the server precomputes the facet counts of its
    most frequent words' searches in the background (catalog/search.py): wait for it (with
    ``workers`` > 1, until that many distinct pids answered, each warmed), and say how long
    it took."""
    warm_start = time.monotonic()
    seen: dict[int, dict] = {}
    while True:
        seen.update(cache_stats(base, workers))
        warmed = [w for w in seen.values() if w.get("rounds", 1) >= 1 and not w.get("warming")]
        if len(seen) >= workers and len(warmed) == len(seen):
            return max(warmed, key=lambda w: w.get("views", 0)), time.monotonic() - warm_start
        if time.monotonic() - warm_start > WARM_TIMEOUT:
            raise RuntimeError(f"the facet precomputation did not finish in {WARM_TIMEOUT}s "
                               f"({len(seen)} of {workers} worker(s) heard from): {seen}")
        time.sleep(0.5)


def prepare_catalog(db: Path, n: int) -> None:
    """Build a catalog of ``n`` resources at ``db``, or copy the one ``ILLHUB_BENCH_CATALOG``
    names: a catalog this module built before, with the same N (building a million resources
    takes minutes); the file itself is never touched. The copy is brought to the current
    schema here, before the server is timed (a million resources' full-text index is rebuilt
    by migration m2201 in about 30 s)."""
    prebuilt = os.environ.get("ILLHUB_BENCH_CATALOG")
    if not prebuilt:
        build_catalog(db, n)
        return
    shutil.copyfile(prebuilt, db)
    with sqlite3.connect(db) as conn:
        if conn.execute("select count(*) from resources").fetchone()[0] != n:
            raise RuntimeError(f"ILLHUB_BENCH_CATALOG={prebuilt} does not hold {n} resources")
    open_db(db).close()


def _report(n, b, phrases, search_seen, warm, warm_seconds, stats, conc_times, single_times, saturated,
            duration, workers=1) -> tuple[str, str]:
    """The catalog figure's note (what was asked, what was slowest, timeouts, cache hit rates)
    and what broke it (errors, or a facet timing out for a single client), empty when nothing did."""
    throughput = len(saturated) / min(duration, 10)
    timeouts = b.timeouts
    total_timeouts = sum(sum(c.values()) for c in timeouts.values())
    per_phase = ", ".join(
        f"{p} {sum(c.values())}" + (f" ({', '.join(f'{f} {k}' for f, k in c.most_common())})" if c else "")
        for p, c in timeouts.items())
    slowest = sorted(search_seen, reverse=True)[:3]
    note = (f"{n} resources; search budget: {len(phrases)} searches drawn at random from the {len(vocabulary())}-word "
            f"vocabulary, none precomputed (slowest: {', '.join(f'{p!r} {t * 1000:.0f} ms' for t, p in slowest)}); "
            f"{'frequent searches and ' if WARM_SEARCHES else ''}facet selections precomputed: {warm.get('views', 0)} views in "
            f"{warm_seconds:.0f}s after start; errors {b.errors}; facet timeouts {total_timeouts} ({per_phase}); {len(conc_times)} requests from 16 users "
            f"in {duration}s (browsing mix: table, facet selections, Zipf-distributed searches); single client "
            f"{len(single_times)} requests of the same mix; saturated (no think time): {throughput:.1f} requests/s, "
            f"p95 {p95(saturated) * 1000:.0f} ms; facet-count cache hit rate: budgets {hit_rate(stats[0], stats[1])}, "
            f"single client {hit_rate(stats[1], stats[2])}, 16 users {hit_rate(stats[2], stats[3])}, "
            f"saturated {hit_rate(stats[3], stats[4])}")
    if workers > 1:
        heard = min(len(s) for s in stats)
        note += (f"; served by {workers} worker processes (illhub serve --workers {workers}), each with its own "
                 f"facet-count cache and warmer: timed once every worker had warmed; hit rates summed over the "
                 f"workers' own counts ({heard} of {workers} heard from at every phase's end)")
    if b.error_samples:
        note += "; errors: " + "; ".join(f"{phase}: {status} for {url} ({text!r})"
                                         for phase, status, url, text in b.error_samples)
    single_client_timeouts = sum(timeouts["budgets"].values()) + sum(timeouts["single client"].values())
    # an error in any phase, or a facet timing out for a single client, fails the figure
    broken = ", ".join(part for part in (f"{b.errors} error(s)" if b.errors else "",
                                         f"{single_client_timeouts} facet timeout(s) for a single client"
                                         if single_client_timeouts else "") if part)
    if not broken and total_timeouts:
        note += " (timeouts only under load: Datasette's facet time limit at work)"
    return note, broken


def run(quick: bool = False, rows: int | None = None) -> list[Figure]:
    n = rows or (20_000 if quick else int(os.environ.get("ILLHUB_BENCH_CATALOG_ROWS", "100000")))
    samples = 30 if quick else 60
    duration = 5 if quick else 30
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "illhub.db"
        prepare_catalog(db, n)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        workers = serve_workers()
        server = subprocess.Popen(serve_command(db, port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        b = Browser(f"http://127.0.0.1:{port}")
        try:
            wait_until_served(b.base, server)
            table = "/illhub/resources.json?_size=50"
            words = [s.split()[0].lower() for s in SUBJECTS]
            search = "/illhub/resources.json?_size=50&_search={}"
            # warm up (connections, page cache), then the two budgets: the table and one-word searches
            for _ in range(3):
                fetch(b.base + table)
                fetch(b.base + search.format("interlibrary"))
            warm, warm_seconds = wait_for_warming(b.base, workers)
            stats = [cache_stats(b.base, workers)]
            # the search budget: one- and two-word searches drawn at random from the vocabulary,
            # each asked once, none of them precomputed (the warmer's frequent words excluded)
            with sqlite3.connect(db) as conn:
                warmed = set(frequent_words(conn, min_matches=WARM_MIN_MATCHES)) if WARM_SEARCHES else set()
            phrases = random_searches(random.Random(n), samples, exclude=warmed)
            table_times, search_times, search_seen = [], [], []
            for i in range(samples):
                table_times.append(b.get(table))
                search_times.append(b.get(search.format(urllib.parse.quote(phrases[i]))))
                search_seen.append((search_times[-1], phrases[i]))
            stats.append(cache_stats(b.base, workers))
            b.phase = "single client"
            # the single-client baseline: one person browsing (the same mix as the 16 users)
            stream = browsing_urls(seed=1000)
            single_times = [b.get(next(stream)) for _ in range(2 * samples)]
            stats.append(cache_stats(b.base, workers))
            # 16 concurrent people browsing, each pausing between pages as a person does. With
            # no think time at all, 16 clients saturate any server and latency grows with
            # clients / cores: that saturation throughput is reported separately.
            conc_times = b.clients("16 users", range(16), THINK, duration)
            stats.append(cache_stats(b.base, workers))
            saturated = b.clients("saturated", range(100, 116), 0.0, min(duration, 10))
            stats.append(cache_stats(b.base, workers))
        finally:
            server.terminate()
            server.wait(10)
        heavy = burst.figures(db, n, words)
    single = p95(single_times)
    note, broken = _report(n, b, phrases, search_seen, warm, warm_seconds, stats, conc_times, single_times,
                           saturated, duration, workers)
    return [
        Figure(f"catalog ({n} rows): resources table with default facets, p95 vs 100 ms", p95(table_times) * 1000,
               100, "ms", p95(table_times) * 10, "<= 1.0", note=note, broken=broken),
        Figure(f"catalog ({n} rows): full-text search, p95 vs 250 ms", p95(search_times) * 1000, 250, "ms",
               p95(search_times) * 4, "<= 1.0"),
        Figure(f"catalog: p95 with 16 concurrent users ({THINK:g}s mean think time) vs single client", p95(conc_times) * 1000, single * 1000,
               "ms", p95(conc_times) / single, "<= 2.0"),
        *heavy,
    ]
