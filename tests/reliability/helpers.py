"""Helpers for the reliability suite: feeds, registries, harvest subprocesses, the catalog."""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from tests.conftest import ROOT


def rss(items: list[dict[str, str]], *, title: str = "Fault feed", link: str = "http://127.0.0.1/",
        encoding: str = "utf-8", declared: str | None = "utf-8", doctype: str = "", raw_items: str = "") -> bytes:
    """An RSS 2.0 document; ``items`` hold title/link/description/pubDate (escaped)."""
    parts = []
    for item in items:
        fields = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in item.items())
        parts.append(f"<item>{fields}</item>")
    decl = f'<?xml version="1.0" encoding="{declared}"?>\n' if declared else ""
    text = (f'{decl}{doctype}<rss version="2.0"><channel><title>{escape(title)}</title><link>{escape(link)}</link>'
            f"{''.join(parts)}{raw_items}</channel></rss>\n")
    return text.encode(encoding)


def items_for(source_id: str, n: int = 3, base: str = "http://127.0.0.1:9/") -> list[dict[str, str]]:
    """``n`` distinct, valid entries for one source (links never fetched)."""
    return [
        {"title": f"{source_id} interlibrary loan post {i}", "link": f"{base}{source_id}/post-{i}",
         "description": f"Borrowing and lending note {i} from {source_id}.",
         "pubDate": f"Tue, 0{i % 9 + 1} Sep 2026 10:00:00 GMT"}
        for i in range(n)
    ]


def feed_source(source_id: str, url: str, **extra: object) -> dict[str, object]:
    return {"id": source_id, "name": f"Source {source_id}", "kind": "feed", "url": url, **extra}


def write_registry(path: Path, sources: list[dict[str, object]]) -> Path:
    """JSON is YAML: the registry file, written without a YAML emitter."""
    path.write_text(json.dumps({"sources": sources}, indent=1), encoding="utf-8")
    return path


@dataclass
class HarvestRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float


def harvest(registry: Path, db: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> HarvestRun:
    """``illhub harvest`` as a subprocess (as a user runs it), with its own peak memory."""
    return illhub("harvest", "--registry", str(registry), "--db", str(db), "--delay", "0.01", "--quiet", *args,
                  env=env, timeout=timeout)


def illhub(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
           memory_limit_mb: int | None = None) -> HarvestRun:
    """``illhub ARGS`` as a subprocess, with its own peak memory; ``memory_limit_mb`` caps its
    address space, so that a test of a memory exhaustion fails fast instead of taking the machine."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "ILLHUB_NETWORK": "loopback", "COLUMNS": "250"}
    full_env.update(env or {})
    for k, v in list(full_env.items()):
        if v is None:
            del full_env[k]
    rss_file = Path(tempfile.mkstemp(prefix="illhub-rss-")[1])
    full_env["RELIABILITY_RSS_FILE"] = str(rss_file)
    cmd = [sys.executable, "-c", _LAUNCHER, *args]

    def cap() -> None:
        if memory_limit_mb:
            limit = memory_limit_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=cap if memory_limit_mb else None)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise AssertionError(f"illhub {args[0]} did not finish within {timeout} s:\n{stdout}\n{stderr}") from None
    seconds = time.monotonic() - start
    text = rss_file.read_text() if rss_file.exists() else ""
    rss_file.unlink(missing_ok=True)
    return HarvestRun(proc.returncode, stdout, stderr, seconds, int(text or 0) / 1024)


#: Runs the CLI like ``python -m illhub`` and, on exit, writes the process's own peak
#: memory (ru_maxrss, KiB on Linux) to $RELIABILITY_RSS_FILE.
_LAUNCHER = """
import atexit, os, resource, sys
def _report():
    with open(os.environ["RELIABILITY_RSS_FILE"], "w") as fh:
        fh.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
atexit.register(_report)
sys.argv[0] = "illhub"
from illhub.cli import main
main()
"""


def connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    return conn


def runs(db: Path, run_group: str | None = None) -> dict[str, sqlite3.Row]:
    """The latest harvest_runs row of each source."""
    with connect(db) as conn:
        rows = conn.execute("SELECT * FROM harvest_runs ORDER BY id").fetchall()
    latest: dict[str, sqlite3.Row] = {}
    for r in rows:
        latest[r["source_id"]] = r
    return latest


def snapshot(db: Path, source_id: str | None = None) -> list[tuple]:
    """What a source has stored (ignoring last_seen, which every harvest refreshes)."""
    sql = ("SELECT r.id, r.url, r.title, r.description, r.published, r.content_hash, r.first_seen, r.last_changed "
           "FROM resources r JOIN resource_sources rs ON rs.resource_id = r.id")
    params: list[str] = []
    if source_id:
        sql += " WHERE rs.source_id = ?"
        params.append(source_id)
    with connect(db) as conn:
        return [tuple(r) for r in conn.execute(sql + " ORDER BY r.id", params)]


class DatasetteClient:
    """The catalog's Datasette app, built as ``illhub serve`` builds it
    (:func:`catalog.app.make_datasette`), on an event loop of its own."""

    def __init__(self, db: Path, **options: object):
        import asyncio

        from catalog.app import make_datasette

        self.loop = asyncio.new_event_loop()
        self.ds = make_datasette(db, **options)
        self.name = db.stem
        self.loop.run_until_complete(self.ds.invoke_startup())

    def get(self, path: str, **kw: object):
        return self.loop.run_until_complete(self.ds.client.get(path, **kw))

    def post(self, path: str, **kw: object):
        return self.loop.run_until_complete(self.ds.client.post(path, **kw))

    def close(self) -> None:
        self.loop.close()
