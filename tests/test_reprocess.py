"""`illhub reprocess`: reclassify stored raw entries after the taxonomy changes, offline."""

from __future__ import annotations

import json

import pytest
from ruamel.yaml import YAML
from sqlite_utils import Database

from pipeline import migrations
from pipeline.reprocess import reprocess
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, store_batch, sync_sources
from pipeline.taxonomy import load_taxonomy
from tests.conftest import ROOT, run_cli

T0, T1, T2 = "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"


def source(sid, topics=(), systems=()):
    return {"id": sid, "name": sid, "kind": "feed", "url": f"https://example.org/{sid}.xml",
            "organization": "Example Library", "topics": list(topics), "systems": list(systems), "config": {}}


@pytest.fixture
def catalog(tmp_path):
    db = open_db(tmp_path / "c.db")
    sync_sources(db, [source("blog", ["workflows"]), source("news")])
    resources = [
        Resource(url="https://example.org/fair-use?utm_source=x", title="Fair use and the lending desk"),
        Resource(url="https://example.org/tipasa", title="Tipasa turnaround time statistics"),
        Resource(url="https://example.org/holiday", title="Holiday closing", description="We are closed."),
    ]
    store_batch(db, Batch("blog", resources, url="https://example.org/blog.xml"),
                source_topics=["workflows"], organization="Example Library", now=T0)
    store_batch(db, Batch("news", [Resource(url="https://example.org/holiday", title="Holiday closing")]),
                source_topics=[], now=T0)
    return db


def rows(db):
    return {r["url"].rsplit("/", 1)[1]: r for r in db.query(
        "select url, topics, systems, classified_by, last_changed, last_seen, content_hash from resources")}


def edited_taxonomy(tmp_path, change):
    data = YAML(typ="safe").load((ROOT / "data" / "taxonomy.yaml").read_text(encoding="utf-8"))
    change({t["id"]: t for t in data["topics"]})
    path = tmp_path / "taxonomy.yaml"
    YAML().dump(data, path)
    return load_taxonomy(path)


def test_classified_by_is_stored_in_its_own_column(catalog):
    r = rows(catalog)
    why = json.loads(r["fair-use"]["classified_by"])
    assert why["copyright"] == 'keyword "Fair use" in title'
    assert why["workflows"] == "registry topic of source 'blog'"
    extra = catalog.execute("select extra from resources where url like '%fair-use'").fetchone()[0]
    assert "classified_by" not in json.loads(extra)


def test_reprocess_with_the_same_taxonomy_changes_nothing(catalog):
    before = rows(catalog)
    result = reprocess(catalog, now=T1)
    assert (result.resources, result.changed, result.reasons_only, result.unchanged) == (3, 0, 0, 3)
    assert rows(catalog) == before


def test_reprocess_applies_a_taxonomy_change_only_where_it_matters(catalog, tmp_path):
    def change(topics):
        topics["news"]["keywords"].append("holiday closing")  # a new rule
        topics["copyright"]["keywords"].remove("fair use")  # a rule removed: the stale topic goes
        topics["copyright"]["keywords"].remove("Copyright Office")
    tax = edited_taxonomy(tmp_path, change)
    before = rows(catalog)
    result = reprocess(catalog, tax, now=T1)
    after = rows(catalog)
    assert result.changed == 2 and result.unchanged == 1
    assert result.topics_added == {"news": 1} and result.topics_removed == {"copyright": 1}
    assert "news" in json.loads(after["holiday"]["topics"])
    assert json.loads(after["holiday"]["classified_by"])["news"] == 'keyword "Holiday closing" in title'
    assert after["holiday"]["last_changed"] == T1
    assert "copyright" not in json.loads(after["fair-use"]["topics"])
    assert "workflows" in json.loads(after["fair-use"]["topics"])  # registry topics always apply
    assert after["fair-use"]["last_changed"] == T1
    # untouched: same row, same last_changed; and nothing changes last_seen (no harvest happened)
    assert after["tipasa"] == before["tipasa"]
    assert all(after[k]["last_seen"] == T0 for k in after)
    # a second pass is a no-op
    again = reprocess(catalog, tax, now=T2)
    assert again.changed == 0 and rows(catalog) == after


def test_reprocess_uses_every_source_that_lists_a_resource(catalog):
    sync_sources(catalog, [source("blog", ["workflows"]), source("news", ["careers"], ["clio"])])
    result = reprocess(catalog, now=T1)
    after = rows(catalog)
    assert result.changed == 1
    assert {"careers", "workflows", "systems"} <= set(json.loads(after["holiday"]["topics"]))
    assert json.loads(after["holiday"]["systems"]) == ["clio"]
    why = json.loads(after["holiday"]["classified_by"])
    assert why["careers"] == "registry topic of source 'news'" and why["system:clio"].startswith("registry system")


def test_reprocess_leaves_resources_without_raw_entries_alone(catalog):
    catalog.execute("delete from raw_entries where resource_id in (select id from resources where url like '%tipasa')")
    before = rows(catalog)
    result = reprocess(catalog, now=T1)
    assert result.no_raw == 1 and rows(catalog)["tipasa"] == before["tipasa"]


def test_migration_moves_old_reasons_out_of_extra(tmp_path):
    db = Database(tmp_path / "old.db")
    migrations.migrations.apply(db, stop_before="m0701_classified_by")
    db.execute("insert into sources (id, name, kind) values ('s', 's', 'feed')")
    db.execute(
        "insert into resources (id, url, title, content_type, source_id, extra, content_hash, first_seen, last_seen, "
        "last_changed) values ('r', 'https://e.org/', 't', 'page', 's', ?, 'h', ?, ?, ?)",
        [json.dumps({"views": 3, "classified_by": {"copyright": "CONTU"}}), T0, T0, T0],
    )
    db.conn.commit()
    migrations.apply(db)
    extra, why = db.execute("select extra, classified_by from resources").fetchone()
    assert json.loads(extra) == {"views": 3} and json.loads(why) == {"copyright": "CONTU"}
    assert db.execute("select systems from sources").fetchone()[0] == "[]"


def test_reprocess_cli(catalog, tmp_path):
    db_path = tmp_path / "c.db"
    catalog.close()
    result = run_cli("reprocess", "--db", str(db_path))
    assert result.returncode == 0, result.stderr
    assert "reprocessed 3 resources" in result.stdout and "0 changed" in result.stdout
    missing = run_cli("reprocess", "--db", str(tmp_path / "nope.db"))
    assert missing.returncode == 2 and "does not exist yet" in missing.stderr


def test_reprocess_right_after_a_real_harvest_changes_nothing(demo_registry_file, tmp_path):
    db_path = tmp_path / "demo.db"
    harvest = run_cli("harvest", "--registry", str(demo_registry_file), "--db", str(db_path), "--delay", "0.01",
                      "--quiet")
    assert harvest.returncode in (0, 1), harvest.stderr  # the demo has a source that fails on purpose
    db = Database(db_path)
    before = list(db.query("select id, topics, systems, classified_by, content_hash, last_changed from resources"))
    assert len(before) > 20
    why = {r["id"]: json.loads(r["classified_by"]) for r in before}
    assert all(why[r["id"]] for r in before if json.loads(r["topics"]))  # every topic has its reason
    db.close()
    result = run_cli("reprocess", "--db", str(db_path))
    assert result.returncode == 0, result.stderr
    assert f"reprocessed {len(before)} resources" in result.stdout
    assert "0 changed, 0 with new reasons only" in result.stdout
    after = list(Database(db_path).query(
        "select id, topics, systems, classified_by, content_hash, last_changed from resources"))
    assert [(r["id"], r["topics"], r["classified_by"], r["last_changed"]) for r in after] == [
        (r["id"], r["topics"], r["classified_by"], r["last_changed"]) for r in before]


def test_reprocess_counts_resources_per_topic_before_and_after(catalog, tmp_path):
    tax = edited_taxonomy(tmp_path, lambda topics: topics["news"]["keywords"].append("holiday closing"))
    result = reprocess(catalog, tax, now=T1)
    assert result.topics_before.get("news", 0) == 0 and result.topics_after["news"] == 1
    assert ("news", 0, 1) in result.topic_changes()
    assert all(before != after for _, before, after in result.topic_changes())
    # unchanged topics are counted on both sides
    assert result.topics_before["copyright"] == result.topics_after["copyright"] == 1


def test_reprocess_cli_prints_the_change_in_counts_per_topic(catalog, tmp_path):
    # as an older classifier left it: the holiday notice filed under news
    catalog.execute("update resources set topics = '[\"news\"]', content_hash = 'old' where url like '%holiday'")
    catalog.conn.commit()
    catalog.close()
    result = run_cli("reprocess", "--db", str(tmp_path / "c.db"))
    assert result.returncode == 0, result.stderr
    assert "resources per topic, before → after:" in result.stdout
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith("news"))
    assert line.split() == ["news", "1", "→", "0", "(-1)"]
