"""Memory of fetched web pages (table ``web_pages``): which page gave which resource, the
sitemap ``lastmod`` it had, so later runs skip pages that have not changed, and when each
was last fetched, so a ``max_pages`` budget rotates through a site (oldest-fetched first).
And the pages a crawl found but left for later (table ``web_frontier``)."""

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
    #: The pages were requested in this run (found unchanged): their ``last_fetched`` moves on.
    fetched: bool = False


@dataclass
class Frontier:
    """What a crawl leaves for its next run: pages found but not requested (url → depth), and
    the pages requested in this run (no longer waiting)."""

    source_id: str
    pending: dict[str, int] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)


@dataclass
class PageState:
    """What is remembered of one page of a source."""

    lastmod: str | None
    last_fetched: str | None
    resource_id: str | None


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


def page_history(db: Database, source_id: str) -> dict[str, PageState]:
    """url → :class:`PageState` of every page of the source fetched before."""
    if "web_pages" not in db.table_names():
        return {}
    rows = db.execute("SELECT url, lastmod, last_fetched, resource_id FROM web_pages WHERE source_id = ?",
                      [source_id]).fetchall()
    return {url: PageState(lastmod, fetched, rid) for url, lastmod, fetched, rid in rows}


def load_frontier(db: Database, source_id: str) -> dict[str, int]:
    """url → depth of the pages a crawl left for later, oldest found first."""
    if "web_frontier" not in db.table_names():
        return {}
    rows = db.execute("SELECT url, depth FROM web_frontier WHERE source_id = ? ORDER BY first_found, rowid",
                      [source_id]).fetchall()
    return {url: depth for url, depth in rows}


def save_frontier(db: Database, frontier: Frontier, *, now: str | None = None) -> None:
    now = now or now_iso()
    with db.atomic():
        for url in frontier.done:
            db.execute("DELETE FROM web_frontier WHERE source_id = ? AND url = ?", [frontier.source_id, url])
        for url, depth in frontier.pending.items():
            db.execute(
                "INSERT INTO web_frontier (source_id, url, depth, first_found, last_found) VALUES (?,?,?,?,?) "
                "ON CONFLICT(source_id, url) DO UPDATE SET depth = min(depth, excluded.depth), "
                "last_found = excluded.last_found",
                [frontier.source_id, url, depth, now, now],
            )


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
                    now: str | None = None, lastmods: dict[str, str] | None = None, fetched: bool = False) -> int:
    """Mark unchanged pages and their resources as seen now (and remember a page's new
    ``lastmod`` when given, and that it was fetched now when ``fetched``); returns how many
    resources."""
    now = now or now_iso()
    lastmods = lastmods or {}
    touched = 0
    with db.atomic():
        for url in urls:
            row = db.execute("SELECT resource_id FROM web_pages WHERE source_id = ? AND url = ?",
                             [source_id, url]).fetchone()
            if not row:
                continue
            db.execute("UPDATE web_pages SET last_seen = ?, last_run_id = ?, lastmod = coalesce(?, lastmod), "
                       "last_fetched = CASE WHEN ? THEN ? ELSE last_fetched END WHERE source_id = ? AND url = ?",
                       [now, run_id, lastmods.get(url), fetched, now, source_id, url])
            if not row[0]:
                continue  # fetched before, but not a page that gave a resource (not HTML)
            cur = db.execute("UPDATE resources SET last_seen = ?, status = 'active' WHERE id = ?", [now, row[0]])
            db.execute("UPDATE resource_sources SET last_seen = ?, last_run_id = ?, missed_runs = 0 "
                       "WHERE resource_id = ? AND source_id = ?",
                       [now, run_id, row[0], source_id])
            touched += cur.rowcount
    return touched
