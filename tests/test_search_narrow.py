"""A search narrowed by facet values, answered by the full-text index (issue 22): the facet
values' tokens in ``resources_fts`` (pipeline/ftsfacets.py, migration m2201), kept by the
triggers, and the rewrite that folds Datasette's filters into one full-text query
(catalog/narrow.py). Same rows, counts and facets as Datasette's own queries."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from datasette.utils import escape_fts
from sqlite_utils import Database

from benchmarks.catalog import build_catalog
from catalog import narrow, search
from catalog.app import make_datasette
from pipeline import ftsfacets
from pipeline.migrations import migrations
from pipeline.store import open_db
from tests.test_search_speed import _recording

FTS = "rowid in (select rowid from resources_fts where resources_fts match escape_fts(:search))"
TOPIC = "id in (select resource_id from resource_tags where col = 'topics' and value = :illhub_topic0)"
SYSTEM = "id in (select resource_id from resource_tags where col = 'systems' and value = :illhub_system0)"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("narrow") / "illhub.db"
    build_catalog(path, 3000, sources=20)
    return path


def _resource(i: int, **values) -> dict:
    row = {"id": f"r{i}", "url": f"https://example.org/{i}", "title": f"Item {i} on borrowing",
           "description": "", "content_type": "page", "organization": "Org", "source_id": "s1",
           "topics": "[]", "systems": "[]", "content_hash": "h", "first_seen": "2026-01-01",
           "last_seen": "2026-01-01", "last_changed": "2026-01-01"}
    row.update({k: json.dumps(v) if isinstance(v, list) else v for k, v in values.items()})
    return row


#: Values a token must stand for exactly: accents, punctuation, spaces, case, empty, NULL.
TRICKY = [
    _resource(1, organization="Université de Montréal", topics=["best-practices", "copyright"], systems=["alma"]),
    _resource(2, organization="O'Reilly & Sons", topics=["copyright"], systems=[]),
    _resource(3, organization=None, content_type="video", topics=[], systems=["worldshare-ill", "alma"]),
    _resource(4, organization="", source_id="s2", topics=["Copyright"]),
    _resource(5, organization="org", topics=["lending", "best practices"]),
]


def _insert(conn, rows) -> None:
    cols = list(rows[0])
    conn.executemany(f"insert into resources ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})",
                     [[r[c] for c in cols] for r in rows])


def _sources(conn) -> None:
    conn.executemany("insert into sources (id, name, kind) values (?, ?, 'feed')", [("s1", "S1"), ("s2", "S2")])


def _agrees(conn) -> None:
    """The index agrees with the resources: FTS5's own check, the triggers' tokens are the
    content view's, and each value's token finds exactly the resources holding that value."""
    conn.execute("insert into resources_fts(resources_fts) values ('integrity-check')")
    by_trigger = conn.execute(f"select rowid, {ftsfacets.facets_sql('r')} from resources r order by rowid").fetchall()
    by_view = conn.execute(f"select rowid, facets from {ftsfacets.CONTENT_VIEW} order by rowid").fetchall()
    assert by_trigger == by_view
    for column in ftsfacets.FACET_CODES:
        if column in ftsfacets.ARRAY_COLUMNS:
            held = conn.execute(f"select j.value, r.rowid from resources r, json_each(r.{column}) j").fetchall()
        else:
            held = conn.execute(f"select {column}, rowid from resources where {column} is not null").fetchall()
        for value in {v for v, _ in held}:
            found = {r[0] for r in conn.execute("select rowid from resources_fts where resources_fts match ?",
                                                [f'"{ftsfacets.token(column, value)}"'])}
            assert found == {rowid for v, rowid in held if v == value}, (column, value)


def test_the_triggers_keep_each_facet_value_as_a_token(tmp_path):
    db = open_db(tmp_path / "illhub.db")
    conn = db.conn
    with conn:
        _sources(conn)
        _insert(conn, TRICKY)
    _agrees(conn)
    with conn:  # what a harvest does: new attribution, new content, a move to another source
        conn.execute("update resources set topics = '[\"lending\"]', systems = '[]' where id = 'r1'")
        conn.execute("update resources set organization = null, content_type = 'video' where id = 'r2'")
        conn.execute("update resources set source_id = 's1', organization = 'Université de Montréal' where id = 'r4'")
        conn.execute("delete from resources where id = 'r5'")
    _agrees(conn)
    gone = ftsfacets.token("organization", "O'Reilly & Sons")
    assert conn.execute("select count(*) from resources_fts where resources_fts match ?", [f'"{gone}"']).fetchone()[0] == 0
    # the tokens are words of no search: a search for a word finds what it found before
    assert conn.execute("select count(*) from resources_fts where resources_fts match 'borrowing'").fetchone()[0] == 4
    db.close()


def _older_catalog(tmp_path):
    """A catalog of the tricky resources, as written before migration m2201."""
    path = tmp_path / "illhub.db"
    old = Database(path)
    migrations.apply(old, stop_before="m2201_fts_facets")
    _sources(old.conn)
    _insert(old.conn, TRICKY)
    old.conn.commit()
    assert not narrow.has_tokens(old.conn)
    old.close()
    return path


def test_an_older_catalog_gets_the_tokens_when_migrated(tmp_path):
    path = _older_catalog(tmp_path)
    db = open_db(path)
    assert narrow.has_tokens(db.conn)
    _agrees(db.conn)
    snippet = db.conn.execute("select snippet(resources_fts, 0, '[', ']', '…', 5) from resources_fts "
                              "where resources_fts match 'borrowing' order by rowid limit 1").fetchone()[0]
    assert snippet == "Item 1 on [borrowing]"  # the index still reads its text from the resources
    db.close()


def test_fold_turns_facet_filters_into_one_full_text_query():
    count = f'select count(*) from resources where "organization" = :p0 and {TOPIC} and {FTS}'
    got = narrow.fold(count, {"p0": "Org 1", "illhub_topic0": "lending", "search": "ill"})
    assert got == (
        "select count(*) from resources where rowid in (select rowid from resources_fts where resources_fts match "
        "'(' || escape_fts(:search) || ') AND ' || :illhub_fts)",
        {"illhub_fts": f'"{ftsfacets.token("organization", "Org 1")}" AND "{ftsfacets.token("topics", "lending")}"',
         "search": "ill"})
    assert search.search_shape(*got)[0] == "count"
    page = f"select id, title from resources where {SYSTEM} order by published desc limit 51"
    folded = narrow.fold(page, {"illhub_system0": "alma"})
    assert folded[1] == {"illhub_fts": f'"{ftsfacets.token("systems", "alma")}"'}
    assert search.search_shape(*folded)[0] == "page"
    assert narrow.fold('select count(*) from resources where "content_type" = :p0', {"p0": "video"}) == (
        "select count(*) from resources where rowid in (select rowid from resources_fts where resources_fts match "
        ":illhub_fts)", {"illhub_fts": f'"{ftsfacets.token("content_type", "video")}"'})
    # left alone: a filter it does not know, a parameter nothing explains, a value that is
    # not text, no filter at all
    assert narrow.fold(count.replace('"organization" = :p0', '"published" > :p0'),
                       {"p0": "2020", "illhub_topic0": "x", "search": "ill"}) is None
    assert narrow.fold(page, {"illhub_system0": "alma", "p9": "x"}) is None
    assert narrow.fold(page, {"illhub_system0": 3}) is None
    assert narrow.fold(f"select count(*) from resources where {FTS}", {"search": "ill"}) is None


def _direct(path, where, params, sample=0):
    """Count, newest page and default facets of the resources ``where`` selects, by
    Datasette's own SQL run directly (``sample``: facets over that many newest matches)."""
    conn = sqlite3.connect(path)
    count = conn.execute(f"select count(*) from resources where {where}", params).fetchone()[0]
    page = [r[0] for r in conn.execute(
        f"select id from resources where {where} order by published desc, id limit 50", params)]
    rows = f"select * from resources where {where}" + (f" order by rowid desc limit {sample}" if sample else "")
    facets = {}
    for column in search.DEFAULT_FACETS:
        if column in ("topics", "systems"):
            sql = (f"with r as ({rows}) select j.value, count(*) c from r, json_each(r.{column}) j "
                   "group by j.value order by c desc, j.value limit 30")
        else:
            sql = (f"with r as ({rows}) select {column}, count(*) c from r where {column} is not null "
                   f"group by {column} order by c desc, {column} limit 30")
        facets[column] = [tuple(r) for r in conn.execute(sql, params)]
    conn.close()
    return count, page, facets


NARROWED = [
    ("_search=borrowing&_topic=lending", f"{TOPIC} and {FTS}", {"illhub_topic0": "lending"}),
    ("_search=lending&_system=alma", f"{SYSTEM} and {FTS}", {"illhub_system0": "alma"}),
    ("_search=careers explained&content_type=video", f'"content_type" = :p0 and {FTS}', {"p0": "video"}),
    ("_search=borrowing&organization=Organization 3&_topic=borrowing",
     f'"organization" = :p0 and {TOPIC} and {FTS}', {"p0": "Organization 3", "illhub_topic0": "borrowing"}),
    ("_topic=copyright", TOPIC, {"illhub_topic0": "copyright"}),
    ("organization=Organization 7&content_type=page", '"content_type" = :p0 and "organization" = :p1',
     {"p0": "page", "p1": "Organization 7"}),
]


@pytest.mark.parametrize("args,where,params", NARROWED)
def test_a_narrowed_search_answers_as_datasette_would_from_the_index(catalog, args, where, params):
    from catalog import facetcache

    facetcache.CACHE.clear()
    ds = make_datasette(catalog)
    seen = _recording(ds)
    search_words = dict(a.split("=") for a in args.split("&")).get("_search")
    sql_params = {**params, **({"search": escape_fts(search_words)} if search_words else {})}
    where = where.replace("escape_fts(:search)", ":search")

    async def go():
        await ds.invoke_startup()
        return (await ds.client.get(f"/illhub/resources.json?{args}&_size=50&_shape=objects&_extra=count")).json()

    got = asyncio.run(go())
    count, page, facets = _direct(catalog, where, sql_params)
    assert count <= search.FACET_SAMPLE
    assert got["filtered_table_rows_count"] == count
    assert [row["id"] for row in got["rows"]] == page
    for column, expected in facets.items():
        assert [(r["value"], r["count"]) for r in got["facet_results"][column]["results"]] == expected, column
        assert "sampled" not in got["facet_results"][column]
    # one full-text query for the count and the page; no resource looked up to test a filter
    assert any(sql.startswith("select count(*) from resources_fts where resources_fts match") for sql in seen)
    narrowing = [sql for sql in seen if "from resource_tags where" in sql or '" = :p' in sql]
    if search_words:  # the facets too
        assert not narrowing
    else:  # a table narrowed without a search keeps its exact facets, counted by the filter
        assert narrowing and not any(sql.startswith("select count(*)") or "order by published" in sql
                                     for sql in narrowing)


def test_a_narrowed_search_matching_many_counts_its_facets_over_a_sample_and_says_so(catalog, monkeypatch):
    from catalog import facetcache

    facetcache.CACHE.clear()
    monkeypatch.setattr(search, "FACET_SAMPLE", 40)
    ds = make_datasette(catalog)
    where = f"{TOPIC} and rowid in (select rowid from resources_fts where resources_fts match :search)"
    params = {"illhub_topic0": "lending", "search": escape_fts("borrowing")}
    count, page, _exact = _direct(catalog, where, params)
    _count, _page, sampled = _direct(catalog, where, params, sample=40)
    assert count > 40

    async def go():
        await ds.invoke_startup()
        url = "/illhub/resources{}?_search=borrowing&_topic=lending"
        return ((await ds.client.get(url.format(".json") + "&_size=50&_shape=objects&_extra=count")).json(),
                (await ds.client.get(url.format(""))).text)

    data, html = asyncio.run(go())
    assert data["filtered_table_rows_count"] == count  # the count and the page stay exact
    assert [row["id"] for row in data["rows"]] == page
    for column, expected in sampled.items():
        facet = data["facet_results"][column]
        assert facet["sampled"] == {"rows": 40, "of": count}, column
        assert [(r["value"], r["count"]) for r in facet["results"]] == expected, column
    assert f"Counts from the 40 most recently added of the {count:,} matches." in html


def test_a_catalog_without_the_tokens_is_answered_as_before(tmp_path):
    """A file served ``--immutable`` is never migrated: its narrowed searches are not folded."""
    path = _older_catalog(tmp_path)
    ds = make_datasette(path, immutable=True)
    seen = _recording(ds)

    async def go():
        await ds.invoke_startup()
        return (await ds.client.get("/illhub/resources.json?_search=borrowing&_topic=copyright&_shape=objects")).json()

    got = asyncio.run(go())
    assert sorted(row["id"] for row in got["rows"]) == ["r1", "r2"]
    assert not any(":illhub_fts" in sql for sql in seen)


def test_no_profile_shows_the_view_the_index_reads(tmp_path):
    path = tmp_path / "illhub.db"
    open_db(path).close()
    for public in (False, True):
        ds = make_datasette(path, public=public)

        async def go(ds=ds):
            await ds.invoke_startup()
            return (await ds.client.get("/illhub")).text, (await ds.client.get(f"/illhub/{ftsfacets.CONTENT_VIEW}")).status_code

        page, status = asyncio.run(go())
        assert ftsfacets.CONTENT_VIEW not in page and status == 403, public


def test_paging_through_a_narrowed_search_shows_every_match_once(catalog):
    """The folded first page and Datasette's next pages (not folded) agree on the order."""
    ds = make_datasette(catalog)
    where = f"{TOPIC} and rowid in (select rowid from resources_fts where resources_fts match :search)"
    conn = sqlite3.connect(catalog)
    expected = [r[0] for r in conn.execute(f"select id from resources where {where} order by published desc, id",
                                           {"illhub_topic0": "lending", "search": escape_fts("borrowing")})]
    conn.close()

    async def go():
        await ds.invoke_startup()
        ids, url = [], "/illhub/resources.json?_search=borrowing&_topic=lending&_size=20&_shape=objects"
        while url and len(ids) < 200:
            page = (await ds.client.get(url)).json()
            ids += [row["id"] for row in page["rows"]]
            url = page.get("next_url") and page["next_url"].replace("http://localhost", "")
        return ids

    got = asyncio.run(go())
    assert len(expected) > 40 and got == expected[:len(got)] and len(got) >= min(len(expected), 200)
