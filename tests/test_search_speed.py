"""Search on a large catalog (catalog/search.py, wired by datasette_config/plugins/illhub_search.py,
and the facet warmer in catalog/facetcache.py): the same answers as Datasette's own queries, found
the cheap way, and facet counts precomputed so that nobody waits for them."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from datasette.app import Datasette
from datasette.utils import escape_fts

from benchmarks.catalog import build_catalog
from catalog import search
from catalog.app import CONFIG_DIR, build_metadata

DEFAULT_FACETS = set(search.DEFAULT_FACETS)


def test_the_default_facets_are_those_of_the_metadata():
    from ruamel.yaml import YAML

    meta = YAML(typ="safe").load((CONFIG_DIR / "metadata.yml").read_text(encoding="utf-8"))
    facets = meta["databases"]["illhub"]["tables"]["resources"]["facets"]
    assert {col: kind for facet in facets for kind, col in facet.items()} == search.DEFAULT_FACETS


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("search") / "illhub.db"
    build_catalog(path, 3000, sources=20)
    return path


def _datasette(path, **settings):
    return Datasette([str(path)], metadata=build_metadata(path), plugins_dir=str(CONFIG_DIR / "plugins"),
                     settings={"suggest_facets": False, **settings})


def _recording(ds) -> list[str]:
    """The SQL the catalog runs, as it reaches SQLite (recorded beneath the plugin's rewrite)."""
    db = ds.get_database("illhub")
    original, seen = db.execute, []

    async def execute(sql, params=None, **kwargs):
        seen.append(sql)
        return await original(sql, params, **kwargs)

    db.execute = execute
    return seen


def _direct(path, word):
    conn = sqlite3.connect(path)
    clause = "rowid in (select rowid from resources_fts where resources_fts match ?)"
    count = conn.execute(f"select count(*) from resources where {clause}", [escape_fts(word)]).fetchone()[0]
    matching = {r[0] for r in conn.execute(f"select id from resources where {clause}", [escape_fts(word)])}
    newest = [r[0] for r in conn.execute(
        f"select published from resources where {clause} order by published desc limit 50", [escape_fts(word)])]
    conn.close()
    return count, matching, newest


def _all_in_order(path, word):
    conn = sqlite3.connect(path)
    ids = [r[0] for r in conn.execute(
        "select id from resources where rowid in (select rowid from resources_fts where resources_fts match ?) "
        "order by published desc, id", [escape_fts(word)])]
    conn.close()
    return ids


@pytest.mark.parametrize("word", ["borrowing", "Careers", "ncip explained", "zebra"])
def test_search_answers_as_datasette_would_with_cheaper_queries(catalog, word):
    ds = _datasette(catalog)
    seen = _recording(ds)

    async def go():
        await ds.invoke_startup()
        return (await ds.client.get(f"/illhub/resources.json?_search={word}&_size=50&_shape=objects"
                                    "&_extra=count")).json()

    got = asyncio.run(go())
    count, matching, newest = _direct(catalog, word)
    assert got["filtered_table_rows_count"] == count
    assert {row["id"] for row in got["rows"]} <= matching
    assert [row["published"] for row in got["rows"]] == newest
    # counted in the full-text index alone; a common word's page walks the published index
    assert any(sql.startswith("select count(*) from resources_fts where") for sql in seen)
    assert not any(sql.startswith("select count(*) from resources where rowid in") for sql in seen)
    walked = any("indexed by idx_resources_published" in sql for sql in seen)
    assert walked == search.walk_published_index(count, 3000, 51)
    if word == "borrowing":
        assert walked and count > 300


@pytest.mark.parametrize("word", ["lending", "borrowing"])
def test_paging_through_a_search_shows_every_match_once(catalog, word):
    """The rewritten first page breaks ties in published by id, as Datasette's next pages
    do: following ``next`` lists each match once, in order (the benchmark catalog has 3,000
    distinct dates for 3,000 resources drawn at random, so ties are common)."""
    ds = _datasette(catalog)

    async def go():
        await ds.invoke_startup()
        ids, url = [], f"/illhub/resources.json?_search={word}&_size=50&_shape=objects"
        for _ in range(6):
            page = (await ds.client.get(url)).json()
            ids += [row["id"] for row in page["rows"]]
            if not page.get("next"):
                break
            url = f"/illhub/resources.json?_search={word}&_size=50&_shape=objects&_next={page['next']}"
        return ids

    got = asyncio.run(go())
    assert got == _all_in_order(catalog, word)[:len(got)] and len(got) == 300


def test_only_plain_searches_are_rewritten():
    fts = "rowid in (select rowid from resources_fts where resources_fts match escape_fts(:search))"
    count = f"select count(*) from resources where {fts} "
    page = f"select rowid, id, title from resources where {fts} order by published desc limit 51"
    assert search.search_shape(count, {"search": "x"})[0] == "count"
    assert search.search_shape(page, {"search": "x"})[0] == "page"
    assert search.search_shape(count, {"search": "x", "p0": "video"}) is None  # another filter
    assert search.search_shape(count.replace(fts, f"{fts} and content_type = :p0"), {"search": "x"}) is None
    assert search.search_shape(page.replace("published desc", "title"), {"search": "x"}) is None
    assert search.search_shape(page.replace("resources where", "sources where"), {"search": "x"}) is None
    assert search.search_shape("select 1", None) is None


def test_the_page_walks_the_index_only_when_the_search_matches_many():
    assert search.walk_published_index(170_000, 1_000_000, 51)
    assert not search.walk_published_index(2_000, 1_000_000, 51)
    assert not search.walk_published_index(0, 1_000_000, 51)
    assert not search.walk_published_index(40, 100, 51)  # fewer matches than a page


def test_frequent_words_are_the_common_searchable_words(catalog):
    conn = sqlite3.connect(catalog)
    words = search.frequent_words(conn, min_matches=400)
    assert "borrowing" in words and "lending" in words  # about 17% and 30% of this catalog
    assert not set(words) & search.STOPWORDS and all(len(w) >= 3 for w in words)
    for word in words:
        matches = conn.execute("select count(*) from resources_fts where resources_fts match ?",
                               [escape_fts(word)]).fetchone()[0]
        assert matches >= 0.8 * 400  # estimated from a sample: near the threshold at worst
    assert search.frequent_words(conn, min_matches=10_000) == []  # more than the catalog holds
    conn.close()


async def _cache_state(ds) -> dict:
    return (await ds.client.get("/-/facet-cache.json")).json()


async def _wait(ds, done, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = await _cache_state(ds)
        if done(state):
            return state
        assert time.monotonic() < deadline, f"gave up waiting: {state}"
        await asyncio.sleep(0.1)


def _plugin():
    """The facet cache's module (one per process, like the plugin that wires it)."""
    from catalog import facetcache

    return facetcache


def _warmer(ds):
    return _plugin().warmer_for(ds)


def _warming_copy(catalog, tmp_path, monkeypatch, **settings):
    """A copy of the catalog served by a Datasette whose warmer precomputes views of 600
    resources or more, the frequent words' searches too (``WARM_SEARCHES``, off by default),
    and looks for changes every 50 ms."""
    monkeypatch.setattr(search, "WARM_MIN_MATCHES", 600)
    monkeypatch.setattr(search, "WARM_SEARCHES", True)
    path = tmp_path / "illhub.db"
    path.write_bytes(catalog.read_bytes())
    ds = _datasette(path, **settings)
    monkeypatch.setattr(_warmer(ds), "POLL", 0.05)
    return path, ds


def test_frequent_searches_are_precomputed_after_a_change(catalog, tmp_path, monkeypatch):
    path, ds = _warming_copy(catalog, tmp_path, monkeypatch)
    words = search.frequent_words(sqlite3.connect(path), min_matches=600)
    filters = search.frequent_filters(sqlite3.connect(path), min_matches=600)

    async def go():
        await ds.invoke_startup()
        rounds = (await _cache_state(ds))["rounds"]
        state = await _wait(ds, lambda s: s["rounds"] > rounds)
        assert state["views"] == state["warmed"] == len(words) + len(filters)
        assert len(words) > 3 and filters
        before = await _cache_state(ds)
        page = (await ds.client.get(f"/illhub/resources.json?_search={words[0].upper()}&_size=5")).json()
        after = await _cache_state(ds)
        assert set(page["facet_results"]) == DEFAULT_FACETS
        assert after["misses"] == before["misses"] and after["hits"] - before["hits"] == len(DEFAULT_FACETS)
        # a change: the counts kept no longer apply, and the frequent searches are precomputed again
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("UPDATE resources SET content_type = 'video' WHERE rowid % 7 = 0")
        conn.close()
        await _wait(ds, lambda s: s["rounds"] > after["rounds"])
        before = await _cache_state(ds)
        fresh = (await ds.client.get(f"/illhub/resources.json?_search={words[0]}&_size=0")).json()
        assert (await _cache_state(ds))["misses"] == before["misses"]
        expected = sqlite3.connect(path).execute(
            "select count(*) from resources where content_type = 'video' and rowid in "
            "(select rowid from resources_fts where resources_fts match ?)", [escape_fts(words[0])]).fetchone()[0]
        video = {r["value"]: r["count"] for r in fresh["facet_results"]["content_type"]["results"]}["video"]
        assert video == expected > 0

    asyncio.run(go())


def test_a_timed_out_facet_is_finished_in_the_background(catalog, tmp_path):
    path = tmp_path / "illhub.db"
    path.write_bytes(catalog.read_bytes())
    ds = _datasette(path, facet_time_limit_ms=1)
    url = "/illhub/resources.json?_search=practical&_size=0"

    async def go():
        await ds.invoke_startup()
        finished = (await _cache_state(ds))["finished_later"]
        first = (await ds.client.get(url)).json()
        missing = DEFAULT_FACETS - set(first["facet_results"])
        assert missing, "no facet took over 1 ms: the catalog is too small for this test"
        await _wait(ds, lambda s: s["finished_later"] >= finished + len(missing))
        second = (await ds.client.get(url)).json()
        assert set(second["facet_results"]) == DEFAULT_FACETS

    asyncio.run(go())


def test_frequent_filters_are_the_large_facet_selections(catalog):
    conn = sqlite3.connect(catalog)
    filters = search.frequent_filters(conn, min_matches=400)
    params = {p for p, _v in filters}
    assert {"content_type", "_topic", "link_status"} <= params and "source_id" not in params  # 20 sources: 150 each
    for param, value in filters:
        if param == "_topic":
            n = conn.execute("select count(*) from resources, json_each(topics) j where j.value = ?", [value]).fetchone()[0]
        elif param == "_system":
            n = conn.execute("select count(*) from resources, json_each(systems) j where j.value = ?",
                             [value]).fetchone()[0]
        else:
            n = conn.execute(f"select count(*) from resources where {param} = ?", [value]).fetchone()[0]
        assert n >= 400
    assert filters[0] == ("link_status", "unchecked")  # every resource: the largest first
    conn.close()


def test_requests_asking_the_same_counts_at_once_share_one_computation(catalog, tmp_path):
    path = tmp_path / "illhub.db"
    path.write_bytes(catalog.read_bytes())
    ds = _datasette(path)
    seen = _recording(ds)
    url = "/illhub/resources.json?_search=lending%20workflows&_size=0"

    async def go():
        await ds.invoke_startup()
        return await asyncio.gather(*(ds.client.get(url) for _ in range(3)))

    pages = [r.json() for r in asyncio.run(go())]
    for page in pages:
        assert set(page["facet_results"]) == DEFAULT_FACETS
    assert pages[0]["facet_results"] == pages[1]["facet_results"] == pages[2]["facet_results"]
    # all six facets were counted in one pass, once for the three requests
    assert len([sql for sql in seen if sql.startswith("with m as materialized")]) == 1
    assert not [sql for sql in seen if " group by " in sql and not sql.startswith("with m as materialized")]


@pytest.mark.parametrize("args, where, params", [
    ("_search=careers", "rowid in (select rowid from resources_fts where resources_fts match :s)", {"s": '"careers"'}),
    ("_search=alma%20iso&content_type=page",
     "rowid in (select rowid from resources_fts where resources_fts match :s) and content_type = 'page'",
     {"s": '"alma" "iso"'}),
    ("_topic=copyright", "id in (select resource_id from resource_tags where value = 'copyright')", {}),
    ("organization=Organization%203", "organization = 'Organization 3'", {}),
])
def test_facets_counted_in_one_pass_are_each_facets_own_counts(catalog, args, where, params):
    ds = _datasette(catalog)
    _plugin().CACHE.clear()  # counted afresh, not kept from another test on this catalog
    seen = _recording(ds)

    async def go():
        await ds.invoke_startup()
        return (await ds.client.get(f"/illhub/resources.json?{args}&_size=0")).json()

    got = asyncio.run(go())
    assert any(sql.startswith("with m as materialized") for sql in seen)
    expected = _facet_counts(catalog, where, params)
    for column in DEFAULT_FACETS:
        results = got["facet_results"][column]["results"]
        assert [(r["value"], r["count"]) for r in results] == expected[column], column


def _facet_counts(path, where, params) -> dict[str, list[tuple]]:
    """Each default facet's counts (the first 30) over the resources ``where`` selects,
    computed directly."""
    conn = sqlite3.connect(path)
    out = {}
    for column in DEFAULT_FACETS:
        if column in ("topics", "systems"):
            sql = (f"with r as (select * from resources where {where}) select j.value, count(*) c "
                   f"from r, json_each(r.{column}) j group by j.value order by c desc, j.value limit 30")
        else:
            sql = (f"select {column}, count(*) c from resources where {where} and {column} is not null "
                   f"group by {column} order by c desc, {column} limit 30")
        out[column] = [tuple(r) for r in conn.execute(sql, params)]
    conn.close()
    return out


def test_a_catalog_being_written_is_warmed_once_it_holds_still(catalog, tmp_path, monkeypatch):
    path, ds = _warming_copy(catalog, tmp_path, monkeypatch)

    async def go():
        await ds.invoke_startup()
        conn = sqlite3.connect(path)
        await _cache_state(ds)  # starts the warmer
        for i in range(20):  # a harvest committing more often than the warmer looks
            with conn:
                conn.execute("UPDATE resources SET last_seen = ? WHERE rowid = 1", [str(i)])
            await asyncio.sleep(0.03)
            state = await _cache_state(ds)
            assert state["rounds"] == 0 and state["warmed"] == 0
        conn.close()
        await _wait(ds, lambda s: s["rounds"] == 1)

    asyncio.run(go())


def test_one_pass_only_stands_in_for_a_facet_of_its_own_type():
    _datasette(":memory:")  # the plugin registers with the first Datasette instance
    applies = _plugin()._one_pass_applies
    narrowed = "select * from resources where content_type = :p0"
    assert applies("resources", "tags", "topics", narrowed)
    assert applies("resources", "values", "content_type", narrowed)
    assert not applies("resources", "values", "topics", narrowed)  # raw JSON values, not tags
    assert not applies("resources", "tags", "content_type", narrowed)
    assert not applies("resources", "values", "content_type", "select * from resources")  # the whole table
    assert not applies("sources", "values", "content_type", "select * from sources where 1")


def test_a_search_matching_nothing_counts_its_facets_once(catalog):
    ds = _datasette(catalog)
    seen = _recording(ds)

    async def go():
        await ds.invoke_startup()
        return (await ds.client.get("/illhub/resources.json?_search=zebraxyz&_size=0")).json()

    got = asyncio.run(go())
    assert all(got["facet_results"][f]["results"] == [] for f in DEFAULT_FACETS)
    assert not [sql for sql in seen if " group by " in sql and not sql.startswith("with m as materialized")]


def test_a_request_that_goes_away_takes_nobody_elses_answer():
    _datasette(":memory:")
    shared = _plugin()._shared
    runs = []

    async def compute():
        runs.append(1)
        await asyncio.sleep(0.2)
        return "counts"

    async def go():
        first = asyncio.create_task(shared(("test", 1), compute, 5000))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(shared(("test", 1), compute, 5000))
        await asyncio.sleep(0.01)
        first.cancel()  # its client closed the connection
        assert await second == "counts"
        assert first.cancelled() and runs == [1]
        # and one that may not wait as long reports a time-out, without stopping the work
        third = asyncio.create_task(shared(("test", 2), compute, 5000))
        with pytest.raises(_plugin().QueryInterrupted):
            await shared(("test", 2), compute, 10)
        assert await third == "counts" and runs == [1, 1]

    asyncio.run(go())


def test_search_keys_fold_only_the_case_the_index_folds():
    _datasette(":memory:")
    key = _plugin()._search_key
    sql = "... match escape_fts(:search)"
    assert key(sql, {"search": "Borrowing  101"}) == key(sql, {"search": "borrowing 101"})
    assert key(sql, {"search": "\u13a0"}) != key(sql, {"search": "\uab70"})  # Cherokee: unicode61 keeps them apart
    assert key("... match :search", {"search": "A OR b"}) != key("... match :search", {"search": "a or b"})


def test_the_warmer_works_under_a_base_url(catalog, tmp_path, monkeypatch):
    path, ds = _warming_copy(catalog, tmp_path, monkeypatch, base_url="/hub/")

    async def go():
        await ds.invoke_startup()
        state = await _wait(ds, lambda s: s["rounds"] >= 1 or s.get("error"))
        assert "error" not in state and state["warmed"] == state["views"] > 0
        before = await _cache_state(ds)
        word = search.frequent_words(sqlite3.connect(path), min_matches=600)[0]
        page = (await ds.client.get(f"/illhub/resources.json?_search={word}&_size=0")).json()
        assert set(page["facet_results"]) == DEFAULT_FACETS
        assert (await _cache_state(ds))["misses"] == before["misses"]

    asyncio.run(go())


def _sample_counts(path, word, sample):
    """Each default facet's counts over the ``sample`` most recently added matches of a search."""
    where = (f"rowid in (select rowid from resources_fts where resources_fts match ? "
             f"order by rowid desc limit {sample})")
    return _facet_counts(path, where, [escape_fts(word)])


def test_a_search_matching_many_counts_its_facets_over_a_sample_and_says_so(catalog, monkeypatch):
    from catalog.app import make_datasette

    monkeypatch.setattr(search, "FACET_SAMPLE", 200)
    ds = make_datasette(catalog)  # with the catalog's templates, which say so
    _plugin().CACHE.clear()
    count, _matching, _newest = _direct(catalog, "borrowing")
    assert count > 200

    async def go():
        await ds.invoke_startup()
        data = (await ds.client.get("/illhub/resources.json?_search=borrowing&_size=0&_extra=count")).json()
        html = (await ds.client.get("/illhub/resources?_search=borrowing")).text
        few = (await ds.client.get("/illhub/resources.json?_search=careers%20explained&_size=0")).json()
        few_html = (await ds.client.get("/illhub/resources?_search=careers%20explained")).text
        narrowed = (await ds.client.get("/illhub/resources.json?_search=borrowing&content_type=page&_size=0"
                                        "&_extra=count")).json()
        return data, html, few, few_html, narrowed

    data, html, few, few_html, narrowed = asyncio.run(go())
    assert data["filtered_table_rows_count"] == count  # the count stays exact
    expected = _sample_counts(catalog, "borrowing", 200)
    for column in DEFAULT_FACETS:
        facet = data["facet_results"][column]
        assert facet["sampled"] == {"rows": 200, "of": count}, column
        assert [(r["value"], r["count"]) for r in facet["results"]] == expected[column], column
    assert f"Counts from the 200 most recently added of the {count:,} matches." in html
    # a search matching fewer than the sample, and a narrowed search matching fewer than the
    # sample, count every match (a narrowed search matching more: tests/test_search_narrow.py)
    assert 0 < len(_direct(catalog, "careers explained")[1]) <= 200
    assert 0 < narrowed["filtered_table_rows_count"] <= 200
    assert not any("sampled" in f for f in few["facet_results"].values())
    assert "facet-sample" not in few_html
    assert not any("sampled" in f for f in narrowed["facet_results"].values())


def test_a_search_matching_most_of_the_catalog_asks_the_index_about_each_row(catalog, monkeypatch):
    """The first page of a very common word walks the published index and asks the full-text
    index about each row it meets: the same rows, in the same order, as sorting every match."""
    ds = _datasette(catalog)
    seen = _recording(ds)
    assert search.probe_each_row(942_602, 1_000_000, 51) and not search.probe_each_row(43_116, 1_000_000, 51)
    assert not search.probe_each_row(2_000, 3_000, 51)  # below the crossing on this small catalog
    monkeypatch.setattr(search, "PROBE_OVER_LIST", 1)  # here: from a few hundred matches on

    async def go():
        await ds.invoke_startup()
        ids, url = [], "/illhub/resources.json?_search=borrowing&_size=50&_shape=objects"
        for _ in range(3):
            page = (await ds.client.get(url)).json()
            ids += [row["id"] for row in page["rows"]]
            url = f"/illhub/resources.json?_search=borrowing&_size=50&_shape=objects&_next={page['next']}"
        return ids

    got = asyncio.run(go())
    assert any("exists (select 1 from resources_fts" in sql for sql in seen)
    assert got == _all_in_order(catalog, "borrowing")[:150]


def test_by_default_the_warmer_precomputes_the_facet_selections_only(catalog, tmp_path, monkeypatch):
    """Searches are not precomputed (their facets are sampled when they match many); the
    large facet selections, whose facets count every row they select, are."""
    path, ds = _warming_copy(catalog, tmp_path, monkeypatch)
    monkeypatch.setattr(search, "WARM_SEARCHES", False)
    filters = search.frequent_filters(sqlite3.connect(path), min_matches=600)
    assert search.frequent_words(sqlite3.connect(path), min_matches=600)  # there are frequent words

    async def go():
        await ds.invoke_startup()
        rounds = (await _cache_state(ds))["rounds"]
        state = await _wait(ds, lambda s: s["rounds"] > rounds)
        assert state["views"] == state["warmed"] == len(filters) > 0

    asyncio.run(go())
