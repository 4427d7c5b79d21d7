"""Crawl: the full harvest stack over an N-page local site (network guard, robots.txt,
page-metadata extraction, normalization, classification, SQLite writes), against a plain
Scrapy spider that only follows same-site links over the same site. Politeness is relaxed
identically for both (no delay, 8 requests at a time to the one benchmark host), so the
ratio measures the cost of what illhub does per page. Ratio = baseline time / ours (>= 0.8).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, Figure
from benchmarks.content import description, title
from benchmarks.server import BenchServer
from illhub.loopback import Request

RELAXED = {"DOWNLOAD_DELAY": 0, "CONCURRENT_REQUESTS": 16, "CONCURRENT_REQUESTS_PER_DOMAIN": 8}


def page(i: int, n: int) -> bytes:
    rng = random.Random(i)
    t, d = title(rng), description(rng)
    children = [c for c in range(5 * i + 1, 5 * i + 6) if c < n]
    cross = [rng.randrange(n) for _ in range(3)]
    links = "".join(f'<li><a href="/site/p/{c}.html">{title(rng)}</a></li>' for c in children + cross)
    body = "".join(f"<p>{description(rng)}</p>" for _ in range(4))
    ld = json.dumps({"@context": "https://schema.org", "@type": "Article", "headline": t,
                     "datePublished": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}", "author": {"name": "ILL Team"}})
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{t} | Bench Library</title>'
        f'<meta name="description" content="{d}"><meta property="og:title" content="{t}">'
        f'<link rel="canonical" href="/site/p/{i}.html"><script type="application/ld+json">{ld}</script></head>'
        f'<body><nav><a href="/site/">Home</a> <a href="/site/p/0.html">Start</a></nav><main><h1>{t}</h1>{body}'
        f"<ul>{links}</ul></main><footer>Last updated 2026-11-0{1 + i % 9}</footer></body></html>"
    ).encode()


BASELINE = r"""
import sys, scrapy
from urllib.parse import urlsplit
from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor

class Follow(scrapy.Spider):
    name = "follow"
    start_urls = [sys.argv[1]]
    links = LinkExtractor()
    def parse(self, response):
        site = urlsplit(response.url).netloc
        for link in self.links.extract_links(response):
            if urlsplit(link.url).netloc == site:
                yield response.follow(link.url, self.parse)

settings = {"LOG_LEVEL": "ERROR", "TELNETCONSOLE_ENABLED": False, "ROBOTSTXT_OBEY": False}
settings.update(eval(sys.argv[2]))
p = CrawlerProcess(settings)
p.crawl(Follow)
p.start()
"""

OURS = r"""
import sys
from pathlib import Path
from harvesters.guard import Policy
from illhub.harvest import run_harvest
from illhub.registry import load_registry
if __name__ == "__main__":  # parse workers (harvesters/offload.py) import the main module
    result = run_harvest(load_registry(sys.argv[1]), Path(sys.argv[2]), policy=Policy.LOOPBACK, delay=0,
                         settings=eval(sys.argv[3]))
    sys.exit(result.exit_code)
"""


def _timed(script: str, args: list[str], tmp: Path) -> float:
    """Run a script (from a file: Scrapy inspects callbacks' source) and time it."""
    path = tmp / f"script-{abs(hash(script))}.py"
    path.write_text(script)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ILLHUB_NETWORK": "loopback"}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, str(path), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"crawl failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return time.perf_counter() - t


def run(quick: bool = False) -> list[Figure]:
    n = 300 if quick else 2000
    pages = {i: page(i, n) for i in range(n)}

    def handler(request: Request):
        path = request.path
        if path == "/robots.txt":
            return 404, {}, b""
        if path == "/site/":
            return 200, {"Content-Type": "text/html; charset=utf-8"}, pages[0]
        try:
            i = int(path.rsplit("/", 1)[1].split(".")[0])
        except (ValueError, IndexError):
            return 404, {}, b""
        return 200, {"Content-Type": "text/html; charset=utf-8"}, pages[i] if i in pages else b""

    baseline = ours = float("inf")
    with BenchServer(handler, ["127.0.0.1"]) as server, tempfile.TemporaryDirectory() as tmp:
        start = server.url("/site/")
        reg = Path(tmp) / "registry.yaml"
        reg.write_text(
            "sources:\n  - id: bench-site\n    name: Benchmark site\n    kind: crawl\n"
            f'    url: "{start}"\n    max_depth: 10\n    max_pages: {n + 1}\n    max_items: {n + 1}\n'
        )
        for attempt in range(1 if quick else 2):  # interleaved, best of each: less noise
            before = len(server.hits())
            baseline = min(baseline, _timed(BASELINE, [start, repr(RELAXED)], Path(tmp)))
            base_pages = len({h.path for h in server.hits()[before:]})
            before = len(server.hits())
            db = Path(tmp) / f"c{attempt}.db"
            ours = min(ours, _timed(OURS, [str(reg), str(db), repr(RELAXED)], Path(tmp)))
            our_pages = len({h.path for h in server.hits()[before:] if h.path != "/robots.txt"})
        import sqlite3

        stored = sqlite3.connect(db).execute("SELECT count(*) FROM resources").fetchone()[0]
    return [Figure(f"crawl: {n}-page local site, full harvest stack vs plain Scrapy link-following",
                   ours, baseline, "s", baseline / ours, ">= 0.8",
                   note=f"ours {our_pages / ours:.0f} pages/s ({our_pages} fetched, {stored} stored); "
                   f"plain Scrapy {base_pages / baseline:.0f} pages/s ({base_pages} fetched)")]
