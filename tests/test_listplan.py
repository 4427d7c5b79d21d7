"""The hub's bounded list plans (catalog/listplan.py) find what the exact query finds: on a
generated catalog of 3,000 resources, each plan is forced by its thresholds and compared with
the exact query (every match, the same count), and a window smaller than the catalog gives a
scaled count the page calls an estimate."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from benchmarks.catalog import build_catalog
from benchmarks.hub import link_sources
from catalog import listing, listplan, wording
from tests.test_catalog_web import Client

SEARCHES = ["webinar", "lending workflow", "numbers iso", "copyright", "fair use", "zzzzqqq webinar", "ILL",
            "rule of 5", "borrowing tipasa"]
LISTS = [{"topic": "copyright"}, {"topic": "copyright", "type": "video"}, {"system": "tipasa", "q": "lending"},
         {"type": "video"}]


class _Rows(list):
    def first(self):
        return self[0] if self else None


class DB:
    """What listing.fetch needs of a Datasette database: ``execute`` returning rows."""

    def __init__(self, path):
        self.conn = sqlite3.connect(path)
        self.conn.row_factory = sqlite3.Row

    async def execute(self, sql, params=None, **_kwargs):
        return _Rows(self.conn.execute(sql, params or {}).fetchall())


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("listplan") / "catalog.db"
    build_catalog(path, 3000, sources=20)
    link_sources(path)
    return path


def run(coro):
    return asyncio.run(coro)


def every_match(db, a: listing.ListArgs) -> tuple[int, set[str]]:
    """The exact query's count and matches (thresholds that keep every part listed)."""
    async def go():
        plan = wording.plan(a.q) if a.q else None
        tags = {c: v for c, v in (("topics", a.topic), ("systems", a.system)) if v}
        sizes = await listplan.sizes(db, plan, tags)
        return await listing._exact(db, a, plan if plan and plan.concepts else None, sizes, 5000, 0, listing.COLUMNS)

    r = run(go())
    return r.total, {row["id"] for row in r.rows}


def fetched(db, a: listing.ListArgs) -> listing.Result:
    return run(listing.fetch(db, a, limit=5000, offset=0))


@pytest.mark.parametrize("q", SEARCHES)
def test_window_over_the_whole_catalog_finds_what_the_exact_query_finds(catalog, monkeypatch, q):
    db = DB(catalog)
    monkeypatch.setattr(listplan, "SET_MAX", 10**9)
    total, ids = every_match(db, listing.ListArgs(q=q))
    monkeypatch.setattr(listplan, "SET_MAX", 0)  # every part "large": the window plan
    monkeypatch.setattr(listplan, "WINDOW", 10**6)
    r = fetched(db, listing.ListArgs(q=q))
    assert r.window == 0 and r.total == total and {row["id"] for row in r.rows} == ids
    if total:
        assert r.rows and r.rows[0]["id"] in ids


@pytest.mark.parametrize("q", [s for s in SEARCHES if len(wording.plan(s).concepts) > 1])
def test_a_search_driven_by_its_rare_word_finds_what_the_exact_query_finds(catalog, monkeypatch, q):
    db = DB(catalog)
    monkeypatch.setattr(listplan, "SET_MAX", 10**9)  # no part large: the smallest concept drives
    total, ids = every_match(db, listing.ListArgs(q=q))
    r = fetched(db, listing.ListArgs(q=q))
    assert r.total == total and {row["id"] for row in r.rows} == ids


@pytest.mark.parametrize("args", LISTS)
def test_lists_with_large_parts_asked_of_each_row_are_exact_newest_first(catalog, monkeypatch, args):
    db = DB(catalog)
    a = listing.ListArgs(**args, sort="newest")
    monkeypatch.setattr(listplan, "SET_MAX", 10**9)
    total, ids = every_match(db, a)
    monkeypatch.setattr(listplan, "SET_MAX", 0)
    monkeypatch.setattr(listplan, "WINDOW", 10**6)
    exact_first = run(listing._exact(db, a, wording.plan(a.q) if a.q else None,
                                     run(listplan.sizes(db, wording.plan(a.q) if a.q else None,
                                                        {c: v for c, v in (("topics", a.topic), ("systems", a.system))
                                                         if v})), 25, 0, listing.COLUMNS))
    r = run(listing.fetch(db, a, limit=25, offset=0))
    assert r.total == total
    assert [row["id"] for row in r.rows] == [row["id"] for row in exact_first.rows]
    assert {row["id"] for row in fetched(db, a).rows} == ids


def test_a_window_smaller_than_the_catalog_estimates_and_the_page_says_so(catalog, monkeypatch):
    db = DB(catalog)
    monkeypatch.setattr(listplan, "SET_MAX", 10**9)
    total, _ids = every_match(db, listing.ListArgs(q="copyright"))
    monkeypatch.setattr(listplan, "SET_MAX", 100)
    monkeypatch.setattr(listplan, "WINDOW", 1000)
    r = run(listing.fetch(db, listing.ListArgs(q="copyright")))  # one page: the window needs no growth
    assert r.window == 1000 and 0.6 * total <= r.total <= 1.4 * total
    monkeypatch.setattr(listplan, "FACET_SAMPLE", 100)
    c = Client(catalog)
    try:
        html = c.get("/search?q=copyright").text
        assert "About " in html and "estimated from the 1,000 most recently added resources" in html
        assert "Counts among the 100 most recently added matches" in html
        topic = c.get("/topic/copyright").text
        n = sqlite3.connect(catalog).execute(
            "select count(*) from resource_tags where col = 'topics' and value = 'copyright'").fetchone()[0]
        assert f"{n:,} resources" in topic  # a topic's own count stays exact
    finally:
        c.close()
