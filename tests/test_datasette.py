"""Datasette over a harvested catalog, through Datasette's own test client: the resources
table with its default facets, full-text search, every canned query, CSV and JSON."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import pytest
from datasette.app import Datasette

from catalog.app import build_metadata, make_datasette
from illhub.demo import DEMO_REGISTRY, DemoServer
from tests.conftest import run_cli

DB_NAME = "catalog"  # not "illhub": build_metadata must file the metadata under the served name


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("datasette")
    db = tmp / f"{DB_NAME}.db"
    with DemoServer() as server:
        registry = tmp / "registry.yaml"
        registry.write_text(DEMO_REGISTRY.read_text(encoding="utf-8").replace("{base}", server.base), encoding="utf-8")
        result = run_cli("harvest", "--registry", str(registry), "--db", str(db), "--delay", "0.01", "--quiet")
    assert result.returncode == 1, result.stderr  # the demo's moved feed fails on purpose
    return db


@pytest.fixture(scope="module")
def ds(catalog) -> Datasette:
    return make_datasette(catalog)  # built exactly as `illhub serve` builds it


def get(ds: Datasette, path: str):
    response = asyncio.run(ds.client.get(path))
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    return response


def test_metadata_is_filed_under_the_served_database(catalog):
    meta = build_metadata(catalog)
    assert DB_NAME in meta["databases"] and "illhub" not in meta["databases"]
    assert meta["title"].startswith("illhub")


def test_home_and_database_pages(ds):
    assert "illhub" in get(ds, "/").text
    tables = {t["name"]: t for t in get(ds, f"/{DB_NAME}.json").json()["tables"]}
    assert {"resources", "sources", "harvest_runs", "resource_sources"} <= set(tables)
    assert tables["raw_entries"]["hidden"] and tables["resources_fts"]["hidden"]


def test_resources_table_default_facets_and_order(ds):
    data = get(ds, f"/{DB_NAME}/resources.json").json()
    facets = data["facet_results"]
    assert {"content_type", "organization", "source_id", "topics"} <= set(facets)
    assert facets["topics"]["type"] in ("array", "tags")  # a JSON-array facet (the catalog plugin's fast one)
    content_types = {r["value"]: r["count"] for r in facets["content_type"]["results"]}
    assert content_types["video"] >= 4 and content_types["article"] >= 5
    sources = {r["value"] for r in facets["source_id"]["results"]}
    assert {"demo-northwind-blog", "demo-lakeside-youtube", "demo-curated-copyright"} <= sources
    assert "copyright" in {r["value"] for r in facets["topics"]["results"]}
    # newest first
    published = [r[data["columns"].index("published")] for r in data["rows"] if r[data["columns"].index("published")]]
    assert published == sorted(published, reverse=True) and len(published) > 5


def test_facet_selection(ds):
    data = get(ds, f"/{DB_NAME}/resources.json?_shape=objects&content_type=video").json()
    assert data["rows"] and all(r["content_type"] == "video" for r in data["rows"])
    data = get(ds, f"/{DB_NAME}/resources.json?_shape=objects&topics__arraycontains=copyright").json()
    assert data["rows"] and all("copyright" in r["topics"] for r in data["rows"])


def test_full_text_search(ds):
    rows = get(ds, f"/{DB_NAME}/resources.json?_search=borrowing&_shape=array").json()
    assert rows and any("Borrowing 101" in r["title"] for r in rows)
    # the index covers title, description and the page excerpt (web pages' body text)
    assert all("borrow" in (r["title"] + r["description"] + (r["excerpt"] or "")).lower() for r in rows)
    # stemming (porter): "moves" finds "moving"
    rows = get(ds, f"/{DB_NAME}/resources.json?_search=moves&_shape=array").json()
    assert any("moving our lending workflow" in r["title"] for r in rows)
    # escaped search: user punctuation is not FTS syntax
    get(ds, f"/{DB_NAME}/resources.json?_search=%22unbalanced+(quote&_shape=array")


def canned_queries(catalog) -> dict:
    return build_metadata(catalog)["databases"][DB_NAME]["queries"]


def test_every_canned_query_runs_as_json_and_csv(ds, catalog):
    queries = canned_queries(catalog)
    assert {"new_this_week", "harvest_health"} <= set(queries)
    for name in queries:
        rows = get(ds, f"/{DB_NAME}/{name}.json?_shape=array").json()
        assert isinstance(rows, list), name
        text = get(ds, f"/{DB_NAME}/{name}.csv").text
        header = next(csv.reader(io.StringIO(text)))
        assert header, name
        if rows:
            assert set(header) == set(rows[0]), name


def test_new_this_week_and_harvest_health(ds):
    new = get(ds, f"/{DB_NAME}/new_this_week.json?_shape=array").json()
    assert len(new) > 20  # everything was harvested just now
    health = get(ds, f"/{DB_NAME}/harvest_health.json?_shape=array").json()
    assert health[0]["source_id"] == "demo-moved-feed" and health[0]["status"] == "failed"
    assert "HTTP 404" in health[0]["error"]
    statuses = {r["source_id"]: r["status"] for r in health}
    assert statuses["demo-northwind-blog"] == "ok" and statuses["demo-riverbend-messy"] == "warning"


@pytest.mark.parametrize("table", ["resources", "sources", "harvest_runs", "resource_sources"])
def test_csv_and_json_of_every_table(ds, table):
    rows = get(ds, f"/{DB_NAME}/{table}.json?_shape=array&_size=max").json()
    assert rows, table
    text = get(ds, f"/{DB_NAME}/{table}.csv?_size=max").text
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == len(rows)
    assert set(parsed[0]) >= set(rows[0]) - {"rowid"}
