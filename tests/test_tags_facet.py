"""The fast tags facet (catalog/facets.py) counts exactly what
Datasette's own array facet counts, and selecting a value filters like it."""

from __future__ import annotations

import asyncio

from datasette.app import Datasette

from catalog.app import CONFIG_DIR, build_metadata
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, store_batch, sync_sources


def _catalog(tmp_path):
    path = tmp_path / "illhub.db"
    db = open_db(path)
    sync_sources(db, [{"id": "s1", "name": "S1", "kind": "feed"}])
    resources = [
        Resource(url=f"https://example.org/{i}", title=f"Item {i}", source_id="s1",
                 topics=[t for j, t in enumerate(["copyright", "lending", "international"]) if i % (j + 2) == 0])
        for i in range(40)
    ]
    store_batch(db, Batch("s1", resources), source_topics=[])
    db.close()
    return path


def _get(ds, path):
    return asyncio.run(ds.client.get(path)).json()


def test_tags_facet_matches_array_facet(tmp_path):
    path = _catalog(tmp_path)
    ds = Datasette([str(path)], metadata=build_metadata(path), plugins_dir=str(CONFIG_DIR / "plugins"))
    fast = _get(ds, "/illhub/resources.json?_facet_tags=topics&_size=0")["facet_results"]["topics"]["results"]
    slow = _get(ds, "/illhub/resources.json?_facet_array=topics&_size=0")["facet_results"]["topics"]["results"]
    assert [(r["value"], r["count"]) for r in fast] == [(r["value"], r["count"]) for r in slow]
    assert {r["value"]: r["count"] for r in fast}["lending"] == 14  # i % 3 == 0 for i in 0..39
    # selecting a value filters exactly like the array facet does
    chosen = next(r for r in fast if r["value"] == "international")
    filtered = _get(ds, chosen["toggle_url"].replace("http://localhost", "") + "&_size=100")
    assert filtered["filtered_table_rows_count"] == 10
    assert all("international" in row["topics"] for row in filtered["rows"])


def test_precomputed_counts_follow_updates_and_deletes(tmp_path):
    path = _catalog(tmp_path)
    conn = __import__("sqlite3").connect(path)
    with conn:
        conn.execute("UPDATE resources SET topics = '[\"copyright\", \"careers\"]' WHERE url LIKE '%/1'")
        conn.execute("DELETE FROM resources WHERE url LIKE '%/2'")
        conn.execute("UPDATE resources SET title = 'renamed' WHERE url LIKE '%/3'")  # not a tag change
    conn.close()
    ds = Datasette([str(path)], metadata=build_metadata(path), plugins_dir=str(CONFIG_DIR / "plugins"))
    fast = _get(ds, "/illhub/resources.json?_facet_tags=topics&_size=0")["facet_results"]["topics"]["results"]
    slow = _get(ds, "/illhub/resources.json?_facet_array=topics&_size=0")["facet_results"]["topics"]["results"]
    assert sorted((r["value"], r["count"]) for r in fast) == sorted((r["value"], r["count"]) for r in slow)
    assert ("careers", 1) in [(r["value"], r["count"]) for r in fast]


def _tag_pairs(conn):
    index = set(conn.execute("SELECT col, value, resource_id FROM resource_tags"))
    from_json = set(conn.execute(
        "SELECT 'topics', j.value, r.id FROM resources r, json_each(r.topics) j UNION "
        "SELECT 'systems', j.value, r.id FROM resources r, json_each(r.systems) j"))
    return index, from_json


def test_resource_tags_follow_inserts_updates_and_deletes(tmp_path):
    path = _catalog(tmp_path)
    conn = __import__("sqlite3").connect(path)
    index, from_json = _tag_pairs(conn)
    assert index == from_json and len(index) > 20
    with conn:
        conn.execute("UPDATE resources SET topics = '[\"careers\", \"copyright\"]', systems = '[\"alma\"]' "
                     "WHERE url LIKE '%/1'")
        conn.execute("DELETE FROM resources WHERE url LIKE '%/2'")
        conn.execute("UPDATE resources SET title = 'renamed' WHERE url LIKE '%/3'")  # not a tag change
        conn.execute("UPDATE resources SET id = 'moved' WHERE url LIKE '%/4'")
    index, from_json = _tag_pairs(conn)
    assert index == from_json
    assert ("topics", "careers", conn.execute("SELECT id FROM resources WHERE url LIKE '%/1'").fetchone()[0]) in index
    assert ("systems", "alma", conn.execute("SELECT id FROM resources WHERE url LIKE '%/1'").fetchone()[0]) in index
    conn.close()


def test_topic_parameter_narrows_like_arraycontains(tmp_path):
    path = _catalog(tmp_path)
    ds = Datasette([str(path)], metadata=build_metadata(path), plugins_dir=str(CONFIG_DIR / "plugins"))
    by_index = _get(ds, "/illhub/resources.json?_topic=international&_size=100&_shape=objects")
    by_json = _get(ds, "/illhub/resources.json?topics__arraycontains=international&_size=100&_shape=objects")
    assert by_index["filtered_table_rows_count"] == by_json["filtered_table_rows_count"] == 10
    assert sorted(r["id"] for r in by_index["rows"]) == sorted(r["id"] for r in by_json["rows"])
    assert by_index["human_description_en"].startswith('where topics contains "international"')
    # two values: resources holding both
    both = _get(ds, "/illhub/resources.json?_topic=international&_topic=lending&_size=100")
    assert both["filtered_table_rows_count"] == 4  # i % 12 == 0 for i in 0..39
    # the facet marks the chosen value and its toggle removes it again
    topics = by_index["facet_results"]["topics"]["results"]
    chosen = next(r for r in topics if r["value"] == "international")
    assert chosen["selected"] and chosen["count"] == 10
    assert "_topic" not in chosen["toggle_url"]
    other = next(r for r in topics if r["value"] == "lending")
    assert not other["selected"] and "_topic=lending" in other["toggle_url"]


def test_facet_counts_cached_until_the_database_changes(tmp_path):
    path = _catalog(tmp_path)
    ds = Datasette([str(path)], metadata=build_metadata(path), plugins_dir=str(CONFIG_DIR / "plugins"))

    def stats():
        return _get(ds, "/-/facet-cache.json")

    url = "/illhub/resources.json?_search=item&_size=0"
    first = _get(ds, url)["facet_results"]
    before = stats()
    again = _get(ds, url)["facet_results"]
    after = stats()
    assert again == first
    assert after["hits"] - before["hits"] == len(first) and after["misses"] == before["misses"]
    # a commit by another connection (a harvest) makes the cached counts unreachable
    conn = __import__("sqlite3").connect(path)
    with conn:
        conn.execute("UPDATE resources SET content_type = 'video' WHERE url LIKE '%/1_'")
    conn.close()
    changed = _get(ds, url)["facet_results"]
    assert stats()["misses"] >= after["misses"] + len(first)
    counts = {r["value"]: r["count"] for r in changed["content_type"]["results"]}
    assert counts["video"] == 10  # /10 .. /19


def test_topic_parameter_without_the_index_still_narrows(tmp_path):
    """A catalog without resource_tags (an older file served --immutable is never migrated):
    ``_topic=`` / ``_system=`` give the same rows by reading the JSON, never every resource."""
    path = _catalog(tmp_path)
    conn = __import__("sqlite3").connect(path)
    with conn:
        conn.execute("UPDATE resources SET systems = '[\"alma\"]' WHERE url LIKE '%/1_'")
        for trigger in ("resource_tags_ai", "resource_tags_ad", "resource_tags_au"):
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("DROP TABLE resource_tags")
    conn.close()
    ds = Datasette([str(path)], metadata=build_metadata(path), plugins_dir=str(CONFIG_DIR / "plugins"))
    for param, column, value, expected in (("_topic", "topics", "international", 10),
                                           ("_system", "systems", "alma", 10)):
        plain = _get(ds, f"/illhub/resources.json?{param}={value}&_size=100&_shape=objects")
        by_json = _get(ds, f"/illhub/resources.json?{column}__arraycontains={value}&_size=100&_shape=objects")
        assert plain["filtered_table_rows_count"] == by_json["filtered_table_rows_count"] == expected
        assert sorted(r["id"] for r in plain["rows"]) == sorted(r["id"] for r in by_json["rows"])
        assert plain["human_description_en"].startswith(f'where {column} contains "{value}"')


def test_column_facets_of_a_narrowed_table_count_the_selected_rows(tmp_path):
    """On a narrowed table the column facets group by ``+column`` (so SQLite reads the rows
    the filter selects instead of walking the facet column's index over every resource):
    the counts are those of the selected rows, and unfiltered the plain query still runs."""
    import sqlite3

    from benchmarks.catalog import build_catalog
    from catalog.facetcache import CACHE

    path = tmp_path / "illhub.db"
    build_catalog(path, 600, sources=30)
    ds = Datasette([str(path)], metadata=build_metadata(path), plugins_dir=str(CONFIG_DIR / "plugins"))
    # the facet cache: its keys hold the SQL that ran
    conn = sqlite3.connect(path)
    views = {
        "content_type=article": "content_type = 'article'",
        "organization=Organization+3": "organization = 'Organization 3'",
        "link_status=unchecked": "link_status = 'unchecked'",
        "_topic=lending": "id in (select resource_id from resource_tags where col = 'topics' and value = 'lending')",
        "_search=borrowing": "rowid in (select rowid from resources_fts where resources_fts match 'borrowing')",
    }
    for query, where in views.items():
        CACHE.clear()
        facets = _get(ds, f"/illhub/resources.json?_size=0&{query}")["facet_results"]
        for column in ("content_type", "organization", "source_id", "link_status"):
            expected = conn.execute(f"select {column}, count(*) from resources where {where} and {column} is not null "
                                    f"group by {column} order by count(*) desc, {column} limit 30").fetchall()
            got = [(r["value"], r["count"]) for r in facets[column]["results"]]
            assert got == expected and sum(n for _, n in got) > 0, (query, column)
        assert any(f"group by +{column} order by" in key[2] for key in CACHE.entries
                   for column in ("organization", "source_id")), query
    CACHE.clear()
    _get(ds, "/illhub/resources.json?_size=0")
    assert not any("group by +" in key[2] for key in CACHE.entries)
    assert any("group by organization order by" in key[2] for key in CACHE.entries)
