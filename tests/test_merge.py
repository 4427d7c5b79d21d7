"""Sharded harvests and `illhub merge`: the merged catalog equals a single harvest's."""

from __future__ import annotations

import sqlite3

from illhub.demo import demo_registry
from illhub.harvest import shard_of
from tests.conftest import run_cli

CONTENT = "id, url, title, description, content_type, organization, source_id, published, topics, systems"


def test_shards_split_by_host_and_cover_every_source(demo_server):
    registry = demo_registry(demo_server.base)
    shards = {s.id: shard_of(s, 3) for s in registry.sources}
    assert set(shards.values()) <= {1, 2, 3}
    hosts: dict[str, set[int]] = {}
    for s in registry.sources:
        if s.url:
            hosts.setdefault(s.url.split("/")[2], set()).add(shards[s.id])
    assert all(len(v) == 1 for v in hosts.values())  # one host, one shard


def test_merged_shards_equal_one_harvest(demo_server, demo_registry_file, tmp_path):
    common = ("--registry", str(demo_registry_file), "--delay", "0.01", "--quiet")
    whole = tmp_path / "whole.db"
    run_cli("harvest", "--db", str(whole), *common)
    shard_dbs = []
    for k in (1, 2):
        db = tmp_path / f"shard-{k}.db"
        run_cli("harvest", "--db", str(db), "--shard", f"{k}/2", *common)
        shard_dbs.append(str(db))
    merged = tmp_path / "merged.db"
    result = run_cli("merge", "--db", str(merged), *shard_dbs)
    assert result.returncode == 0, result.stderr
    assert "resources" in result.stdout

    def content(path):
        conn = sqlite3.connect(path)
        rows = conn.execute(f"SELECT {CONTENT} FROM resources ORDER BY id").fetchall()
        attribution = conn.execute("SELECT resource_id, source_id FROM resource_sources ORDER BY 1, 2").fetchall()
        fts = conn.execute("SELECT count(*) FROM resources_fts WHERE resources_fts MATCH 'borrowing'").fetchone()
        runs = conn.execute("SELECT count(*) FROM harvest_runs").fetchone()[0]
        return rows, attribution, fts, runs

    whole_rows, whole_attr, whole_fts, whole_runs = content(whole)
    rows, attr, fts, runs = content(merged)
    # the demo feeds are on one loopback host, so "same content" holds whatever the split
    assert rows == whole_rows and attr == whole_attr and fts == whole_fts and len(rows) > 20
    assert runs == whole_runs
    # merging the same shards again changes nothing
    run_cli("merge", "--db", str(merged), *shard_dbs)
    assert content(merged) == (rows, attr, fts, runs)


def test_bad_shard_option_is_a_usage_error(tmp_path):
    result = run_cli("harvest", "--shard", "3/2", "--db", str(tmp_path / "x.db"))
    assert result.returncode == 2 and "--shard" in result.stderr


def test_merge_keeps_tag_index_and_counts_of_the_merged_catalog(tmp_path):
    """resource_tags and tag_counts (migrations m1001, m1002) describe the merged resources:
    two shards sharing a topic add up, and a resource in both shards keeps only the tags of
    the copy that wins (the newer), without tripping over the shard's own index."""
    from pipeline.merge import merge_catalog
    from pipeline.resource import Batch, Resource
    from pipeline.store import open_db, store_batch, sync_sources

    def shard(name, urls, topics, systems, now):
        path = tmp_path / f"{name}.db"
        db = open_db(path)
        sync_sources(db, [{"id": name, "name": name, "kind": "feed"}])
        store_batch(db, Batch(name, [Resource(url=f"https://example.org/{i}", title=f"Item {i}", source_id=name,
                                              topics=topics, systems=systems) for i in urls]),
                    source_topics=[], now=now)
        db.close()
        return path

    one = shard("one", range(0, 6), ["copyright"], ["alma"], "2026-01-01T00:00:00Z")
    two = shard("two", range(4, 10), ["copyright", "lending"], ["tipasa"], "2026-02-01T00:00:00Z")
    main = open_db(tmp_path / "main.db")
    for path in (one, two, two):
        merge_catalog(main, path)
    main.close()
    conn = sqlite3.connect(tmp_path / "main.db")
    from_json = set(conn.execute(
        "SELECT 'topics', j.value, r.id FROM resources r, json_each(r.topics) j UNION "
        "SELECT 'systems', j.value, r.id FROM resources r, json_each(r.systems) j"))
    assert set(conn.execute("SELECT col, value, resource_id FROM resource_tags")) == from_json
    counts = {(c, v): n for c, v, n in conn.execute("SELECT col, value, n FROM tag_counts WHERE n > 0")}
    # (a system implies the "systems" topic: pipeline/classify.py)
    assert counts == {("topics", "copyright"): 10, ("topics", "lending"): 6, ("topics", "systems"): 10,
                      ("systems", "alma"): 4, ("systems", "tipasa"): 6}
