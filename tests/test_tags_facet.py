"""The fast tags facet (datasette_config/plugins/illhub_facets.py) counts exactly what
Datasette's own array facet counts, and selecting a value filters like it."""

from __future__ import annotations

import asyncio

from datasette.app import Datasette

from illhub.serve import CONFIG_DIR, build_metadata
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
