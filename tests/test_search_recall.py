"""Search recall on practitioner wording: the labelled queries in
tests/fixtures/search/practitioner_queries.yaml, run through the hub's search (catalog/listing.py
with catalog/wording.py, relevance order) on the demo catalog; recall@10 must be at least 0.9.
The figure is printed (pytest -s) with every query that missed something."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from catalog import listing
from catalog.app import make_datasette
from tests.test_hub import harvest_demo

QUERIES = Path(__file__).parent / "fixtures" / "search" / "practitioner_queries.yaml"
TARGET = 0.9


@pytest.fixture(scope="module")
def demo_catalog(tmp_path_factory):
    return harvest_demo(tmp_path_factory.mktemp("recall"))


def test_labelled_set_is_large_enough():
    queries = YAML(typ="safe").load(QUERIES.read_text(encoding="utf-8"))["queries"]
    assert len(queries) >= 40 and all(q["expect"] for q in queries)
    assert len({q["q"].lower() for q in queries}) == len(queries)


def test_recall_at_10_on_the_demo_catalog(demo_catalog):
    queries = YAML(typ="safe").load(QUERIES.read_text(encoding="utf-8"))["queries"]

    async def run():
        ds = make_datasette(demo_catalog)
        await ds.invoke_startup()
        db = ds.get_database("demo")
        titles = {r[0] for r in await db.execute("select title from resources")}
        out = []
        for item in queries:
            missing_labels = [t for t in item["expect"] if t not in titles]
            assert not missing_labels, f"labelled titles not in the demo catalog: {missing_labels}"
            result = await listing.fetch(db, listing.ListArgs(q=item["q"]), limit=10, offset=0)
            found = {r["title"] for r in result.rows}
            out.append((item["q"], [t for t in item["expect"] if t not in found], len(item["expect"])))
        return out

    results = asyncio.run(run())
    recall = sum((n - len(missed)) / n for _, missed, n in results) / len(results)
    print(f"\nrecall@10 over {len(results)} practitioner queries: {recall:.3f}")
    for q, missed, _ in results:
        if missed:
            print(f"  {q!r} missed {missed}")
    assert recall >= TARGET
