"""Narrowed searches and tables folded into one full-text query (catalog/narrow.py) against
Datasette's own, unfolded SQL, on the edges: values with quotes, spaces, accents, emoji,
empty strings and great length, NULL organizations, several topics at once, raw full-text
syntax, the filters that look like a facet value's but are not, sorting, paging and the
renderers. Each URL is asked twice of the same catalog, once folded and once with folding
switched off; the answers must be the same."""

from __future__ import annotations

import asyncio
import json
import unicodedata
from urllib.parse import quote

import pytest

from catalog import facetcache, narrow
from catalog.app import make_datasette
from pipeline.store import open_db

LONG = "Consortium " + "x" * 3000
NFD = unicodedata.normalize("NFD", "Université de Montréal")
VALUES = {
    "organization": ["Université de Montréal", NFD, "O'Reilly & Sons", 'The "Quoted" Org', "", None,
                     "Org 🚀 Rocket", LONG, "org", "Org", "  padded  "],
    "content_type": ["page", "video", "document", "Page", ""],
    "topics": [["copyright"], ["copyright", "lending"], ["lending", "best practices"], [],
               ["Copyright"], ["copyright", "lending", "borrowing"], ["📚 books"], ["it's"]],
    "systems": [[], ["alma"], ["alma", "worldshare-ill"], ["tipasa"], ["ALMA"]],
}


def _rows() -> list[dict]:
    rows = []
    for i in range(80):
        words = ["borrowing", "lending", "ill", "copyright", "rapido"]
        rows.append({
            "id": f"r{i:03d}", "url": f"https://example.org/{i}",
            "title": f"Item {i} on {words[i % 5]} and {words[(i * 3) % 5]}",
            "description": "near far" if i % 4 == 0 else "far and wide, then near",
            "content_type": VALUES["content_type"][i % 5],
            "organization": VALUES["organization"][i % 11],
            "source_id": ["s1", "s2", "s 3"][i % 3],
            "topics": json.dumps(VALUES["topics"][i % 8]),
            "systems": json.dumps(VALUES["systems"][i % 5]),
            "published": None if i % 13 == 0 else f"2026-01-{1 + i % 28:02d}T00:00:00Z",
            "content_hash": "h", "first_seen": "2026-01-01", "last_seen": "2026-01-01",
            "last_changed": "2026-01-01",
        })
    return rows


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("edges") / "illhub.db"
    db = open_db(path)
    with db.conn:
        db.conn.executemany("insert into sources (id, name, kind) values (?, ?, 'feed')",
                            [("s1", "S1"), ("s2", "S2"), ("s 3", "S3")])
        rows = _rows()
        cols = list(rows[0])
        db.conn.executemany(f"insert into resources ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})",
                            [[r[c] for c in cols] for r in rows])
    db.close()
    return path


def _answer(response) -> tuple:
    if response.status_code != 200:
        return (response.status_code,)
    if not response.headers["content-type"].startswith("application/json"):
        return 200, response.text
    data = response.json()
    if isinstance(data, list):
        return 200, data
    facets = {name: [(r["value"], r["count"]) for r in facet["results"]]
              for name, facet in (data.get("facet_results") or {}).items()}
    return 200, [row["id"] for row in data["rows"]], data.get("filtered_table_rows_count"), facets, data.get("next")


def _ask(path, urls: list[str], *, folded: bool, monkeypatch, public: bool = False) -> list[tuple]:
    facetcache.CACHE.clear()
    with monkeypatch.context() as m:
        if not folded:
            m.setattr(narrow, "fold", lambda sql, params: None)
        ds = make_datasette(path, public=public)

        async def go():
            await ds.invoke_startup()
            return [_answer(await ds.client.get(url)) for url in urls]

        return asyncio.run(go())


def _q(**args) -> str:
    parts = []
    for key, value in args.items():
        for v in value if isinstance(value, list) else [value]:
            parts.append(f"{key}={quote(v, safe='')}")
    return "&".join(parts)


def _same(path, queries: list[str], monkeypatch, suffix=".json", extra="&_shape=objects&_extra=count&_size=100",
          public=False):
    urls = [f"/illhub/resources{suffix}?{q}{extra}" for q in queries]
    got = _ask(path, urls, folded=True, monkeypatch=monkeypatch, public=public)
    want = _ask(path, urls, folded=False, monkeypatch=monkeypatch, public=public)
    for url, g, w in zip(urls, got, want, strict=True):
        assert g == w, url[:300]
    return got


TRICKY_VALUES = [
    _q(organization=v) for v in VALUES["organization"] if v is not None
] + [
    _q(content_type=v) for v in VALUES["content_type"]
] + [
    _q(source_id="s 3"), _q(source_id="s1", content_type="page"),
    _q(_topic=["copyright", "lending"]), _q(_topic=["copyright", "Copyright"]), _q(_topic="📚 books"),
    _q(_topic="it's"), _q(_topic="best practices", _system="alma", content_type="page"),
    _q(_system=["alma", "worldshare-ill"]), _q(_system="ALMA"), _q(_topic=""), _q(_topic="nothing such"),
    _q(organization=["org", "Org"]), _q(organization="Org", content_type="video", _topic="copyright"),
]


@pytest.mark.parametrize("search", [None, "borrowing", "Near far", "it's", "Item 1"])
def test_tricky_values_narrow_to_the_same_rows(catalog, monkeypatch, search):
    queries = [q + (f"&{_q(_search=search)}" if search else "") for q in TRICKY_VALUES]
    got = _same(catalog, queries, monkeypatch)
    assert any(g[0] == 200 and g[1] for g in got) or search == "it's"


RAW = ['"near far"', "near OR rapido", "NEAR(near far, 2)", "bor*", "-", "far NOT near", '"unbalanced',
       "lending)", "(lending", "nothing) OR (rapido", "title: rapido", "rapido OR x) OR (copyright", '""',
       "i*", "ih*", "*", "*reads"]


@pytest.mark.parametrize("search", RAW)
def test_raw_full_text_syntax_narrowed(catalog, monkeypatch, search):
    queries = [_q(_search=search, _searchmode=mode, **narrowing)
               for mode in ("raw", "escaped")
               for narrowing in ({"_topic": "copyright"}, {"content_type": "page", "_system": "alma"})]
    _same(catalog, queries, monkeypatch)


LOOKALIKES = [
    _q(content_type__exact="video"), _q(content_type__not="video"), _q(organization__isnull="1"),
    _q(source_id__in="s1,s2"), _q(organization__contains="Org"), _q(title="Item 1 on lending and ill"),
    _q(content_type="page", _where="published is not null"), _q(content_type="page", _where="1 = 1 or 1 = 1"),
    _q(content_type="page", _sort="organization"), _q(_topic="copyright", _sort_desc="title"),
    _q(_topic="copyright", _sort="published"), _q(_topic="copyright", _search="ill", _sort="rowid"),
    _q(content_type="page", _facet="language"), _q(_topic="lending", _search_title="lending"),
    _q(content_type="page", _nofacet="1"), _q(content_type="page", _size="7"),
    _q(content_type="page", link_status="unchecked"), _q(_search="", _topic="copyright"),
    _q(_search="  ", content_type="page"), _q(_search="-", _topic="lending"), _q(_search="🚀", organization="Org 🚀 Rocket"),
    _q(_search="Montréal", organization="Université de Montréal"), _q(_topic="copyright", _size="5"),
    _q(_search="item", _topic=["copyright", "lending"], _system="alma", content_type="video", _size="2"),
]


def test_similar_filters_sorts_and_pages(catalog, monkeypatch):
    got = _same(catalog, LOOKALIKES, monkeypatch, extra="&_shape=objects&_extra=count")
    nexts = [(q, g[4]) for q, g in zip(LOOKALIKES, got, strict=True) if g[0] == 200 and g[4]]
    _same(catalog, [f"{q}&_next={quote(n)}" for q, n in nexts], monkeypatch, extra="&_shape=objects&_extra=count")


def test_csv_and_the_html_page_agree(catalog, monkeypatch):
    queries = [_q(_topic="copyright", content_type="page"), _q(_search="borrowing", organization="org"),
               _q(_topic=["copyright", "lending"], _size="3"), _q(_topic="copyright", _stream="on", _size="4"),
               _q(organization="O'Reilly & Sons", _search="item", _stream="on")]
    _same(catalog, queries, monkeypatch, suffix=".csv", extra="")
    _same(catalog, queries, monkeypatch, suffix=".json", extra="&_shape=array")
    _same(catalog, queries, monkeypatch, suffix=".json", extra="&_shape=objects&_extra=count", public=True)


def test_a_raw_search_is_folded_only_when_it_stays_one_group():
    sql = ('select count(*) from resources where "content_type" = :p0 and '
           "rowid in (select rowid from resources_fts where resources_fts match :search)")
    for search in ["nothing) OR (rapido", "a)", "(a", '"a', '"a"" OR b) OR (c', "a) OR (b OR c", " *reads"]:
        assert narrow.fold(sql, {"p0": "page", "search": search}) is None, search
    for search in ['"x)" OR y', '"say ""hi)"" " OR (a NOT b)', "NEAR(a b, 3)", "(a OR b) c*"]:
        assert narrow.fold(sql, {"p0": "page", "search": search}) is not None, search


def test_merge_reprocess_and_doctor_keep_the_tokens_right(tmp_path):
    """A shard merged in (newer topics, a new resource), a resource reclassified, one deleted,
    an older catalog migrated with its data: the index still agrees, and ``illhub doctor``
    finds nothing wrong with it."""
    from sqlite_utils import Database

    from pipeline import doctor
    from pipeline.merge import merge_catalog
    from pipeline.migrations import migrations
    from tests.test_search_narrow import _agrees

    def build(path, rows, stop_before=None):
        db = Database(path) if stop_before else open_db(path)
        if stop_before:
            migrations.apply(db, stop_before=stop_before)
        with db.conn:
            db.conn.executemany("insert or ignore into sources (id, name, kind) values (?, ?, 'feed')",
                                [("s1", "S1"), ("s2", "S2"), ("s 3", "S3")])
            cols = list(rows[0])
            db.conn.executemany(f"insert into resources ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})",
                                [[r[c] for c in cols] for r in rows])
        db.close()

    rows = _rows()
    build(tmp_path / "old.db", rows[:40], stop_before="m2201_fts_facets")
    main = open_db(tmp_path / "old.db")  # migrated here
    _agrees(main.conn)
    main.conn.commit()  # (the integrity check's implicit transaction)
    assert doctor._fts_check(tmp_path / "old.db") is None
    newer = [{**r, "topics": json.dumps(["lending", "new topic"]), "organization": "Merged Org",
              "last_changed": "2026-02-01", "last_seen": "2026-02-01"} for r in rows[30:50]]
    build(tmp_path / "shard.db", newer)
    merge_catalog(main, tmp_path / "shard.db")
    with main.conn:
        main.conn.execute("update resources set topics = '[\"copyright\"]', systems = '[\"alma\"]', "
                          "content_type = 'video' where id = 'r001'")
        main.conn.execute("delete from resources where id = 'r002'")
    _agrees(main.conn)
    main.conn.commit()
    held = {r[0] for r in main.conn.execute(
        "select resource_id from resource_tags where col = 'topics' and value = 'new topic'")}
    assert held == {f"r{i:03d}" for i in range(30, 50)}
    main.close()
    assert doctor._fts_check(tmp_path / "old.db") is None
    assert doctor.diagnose(tmp_path / "old.db").problems == []


def test_values_longer_than_a_full_text_token_are_not_confused(tmp_path, monkeypatch):
    """FTS5 keeps a token's first 32,768 bytes: two values whose first 16 KB agree would have
    the same token."""
    path = tmp_path / "illhub.db"
    db = open_db(path)
    prefix = "Organization " + "z" * 17_000
    rows = [{**r, "organization": prefix + ("a" if i % 2 else "b"), "topics": json.dumps([prefix + str(i % 2)])}
            for i, r in enumerate(_rows()[:6])]
    with db.conn:
        db.conn.executemany("insert into sources (id, name, kind) values (?, ?, 'feed')",
                            [("s1", "S1"), ("s2", "S2"), ("s 3", "S3")])
        cols = list(rows[0])
        db.conn.executemany(f"insert into resources ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})",
                            [[r[c] for c in cols] for r in rows])
    db.close()
    got = _same(path, [_q(organization=prefix + "a"), _q(organization=prefix + "b", _search="item"),
                       _q(_topic=prefix + "1"), _q(_topic=prefix + "0", content_type="page")], monkeypatch)
    assert [len(g[1]) for g in got] == [3, 3, 3, 1]


def test_doctor_notices_an_index_that_disagrees_with_the_resources(tmp_path):
    """A resource whose topics changed while the index did not (a trigger missing, a write
    from a tool that drops them) narrows wrongly: ``illhub doctor`` must say so."""
    import sqlite3

    from pipeline import doctor

    path = tmp_path / "illhub.db"
    db = open_db(path)
    with db.conn:
        db.conn.executemany("insert into sources (id, name, kind) values (?, ?, 'feed')",
                            [("s1", "S1"), ("s2", "S2"), ("s 3", "S3")])
        rows = _rows()[:10]
        cols = list(rows[0])
        db.conn.executemany(f"insert into resources ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})",
                            [[r[c] for c in cols] for r in rows])
    db.close()
    assert doctor._fts_check(path) is None
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("drop trigger resources_au")
        conn.execute("update resources set topics = '[\"zzz\"]' where id = 'r001'")
    conn.close()
    assert "does not match" in (doctor._fts_check(path) or "")
