"""Memory of fetched web pages (table ``web_pages``): which page gave which resource, and
the sitemap ``lastmod`` it had, so later runs skip pages that have not changed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlite_utils import Database

from pipeline.normalize import now_iso
from pipeline.urls import canonical_url, resource_id


@dataclass
class PageVisit:
    """A page was fetched and gave ``resource_url`` (yielded after the page's Batch)."""

    source_id: str
    url: str
    resource_url: str
    lastmod: str | None = None
    http_status: int | None = None


@dataclass
class PagesUnchanged:
    """Pages listed again with the ``lastmod`` they had when fetched: not fetched again,
    but still seen in this run."""

    source_id: str
    urls: list[str] = field(default_factory=list)
    #: New ``lastmod`` values of pages fetched again but found unchanged (same body, 304).
    lastmods: dict[str, str] = field(default_factory=dict)


def known_lastmods(db: Database, source_id: str) -> dict[str, str]:
    """url → lastmod of the source's pages whose resource is still in the catalog."""
    if "web_pages" not in db.table_names():
        return {}
    rows = db.execute(
        "SELECT w.url, w.lastmod FROM web_pages w JOIN resources r ON r.id = w.resource_id "
        "WHERE w.source_id = ? AND w.lastmod IS NOT NULL",
        [source_id],
    ).fetchall()
    return {url: lastmod for url, lastmod in rows}


def record_visit(db: Database, visit: PageVisit, *, run_id: int | None = None, now: str | None = None) -> None:
    now = now or now_iso()
    canonical = canonical_url(visit.resource_url)
    rid = resource_id(canonical) if canonical else None
    with db.atomic():
        db.execute(
            "INSERT INTO web_pages (source_id, url, resource_id, lastmod, http_status, first_fetched, last_fetched, "
            "last_seen, last_run_id) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(source_id, url) DO UPDATE SET "
            "resource_id = excluded.resource_id, lastmod = excluded.lastmod, http_status = excluded.http_status, "
            "last_fetched = excluded.last_fetched, last_seen = excluded.last_seen, last_run_id = excluded.last_run_id",
            [visit.source_id, visit.url, rid, visit.lastmod, visit.http_status, now, now, now, run_id],
        )


def touch_unchanged(db: Database, source_id: str, urls: Iterable[str], *, run_id: int | None = None,
                    now: str | None = None, lastmods: dict[str, str] | None = None) -> int:
    """Mark unchanged pages and their resources as seen now (and remember a page's new
    ``lastmod`` when given); returns how many resources."""
    now = now or now_iso()
    lastmods = lastmods or {}
    touched = 0
    with db.atomic():
        for url in urls:
            row = db.execute("SELECT resource_id FROM web_pages WHERE source_id = ? AND url = ?",
                             [source_id, url]).fetchone()
            if not row or not row[0]:
                continue
            db.execute("UPDATE web_pages SET last_seen = ?, last_run_id = ?, lastmod = coalesce(?, lastmod) "
                       "WHERE source_id = ? AND url = ?", [now, run_id, lastmods.get(url), source_id, url])
            cur = db.execute("UPDATE resources SET last_seen = ?, status = 'active' WHERE id = ?", [now, row[0]])
            db.execute("UPDATE resource_sources SET last_seen = ?, last_run_id = ?, missed_runs = 0 "
                       "WHERE resource_id = ? AND source_id = ?",
                       [now, run_id, row[0], source_id])
            touched += cur.rowcount
    return touched
