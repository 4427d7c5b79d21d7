"""``illhub publish DIR``: a consistent snapshot of the catalog, ready to be served
``--public --immutable`` by read-only replicas, checked by serving it so."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3

from catalog.app import make_datasette
from illhub.publish import publish
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, store_batch, sync_sources
from tests.conftest import run_cli


def make_catalog(path, n=30, start=0):
    db = open_db(path)
    sync_sources(db, [{"id": "blog", "name": "A blog", "kind": "feed"}])
    store_batch(db, Batch("blog", [Resource(url=f"https://example.org/post/{i}", title=f"Borrowing tip {i}",
                                            description="Interlibrary loan borrowing workflow", source_id="blog")
                                   for i in range(start, start + n)]), source_topics=[])
    db.close()


def served(path, url):
    async def get():
        ds = make_datasette(path, public=True, immutable=True)
        await ds.invoke_startup()
        return await ds.client.get(url)

    return asyncio.run(get())


def test_publish_makes_an_immutable_snapshot_a_replica_serves(tmp_path):
    catalog = tmp_path / "data" / "illhub.db"
    make_catalog(catalog)
    result = run_cli("publish", "--db", str(catalog), str(tmp_path / "publish"))
    assert result.returncode == 0, result.stderr
    snapshot = tmp_path / "publish" / "illhub.db"
    assert "30 resources" in result.stdout and str(snapshot) in result.stdout
    # only the snapshot and its manifest: no -wal/-shm, no leftovers of the work
    assert sorted(p.name for p in snapshot.parent.iterdir()) == ["illhub.db", "illhub.json"]
    manifest = json.loads((tmp_path / "publish" / "illhub.json").read_text())
    assert manifest["resources"] == 30 and manifest["file"] == "illhub.db"
    assert manifest["sha256"] == hashlib.sha256(snapshot.read_bytes()).hexdigest()
    conn = sqlite3.connect(f"file:{snapshot}?immutable=1", uri=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT count(*) FROM resources_fts WHERE resources_fts MATCH 'borrowing'").fetchone()[0] == 30
    assert conn.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] > 0  # ANALYZE ran
    conn.close()
    page = served(snapshot, "/illhub/resources.json?_search=borrowing&_size=5&_shape=objects")
    assert page.status_code == 200 and len(page.json()["rows"]) == 5
    assert served(snapshot, "/illhub?sql=select+1").status_code == 403  # the public profile: no arbitrary SQL


def test_publish_takes_only_committed_rows_and_replaces_the_previous_snapshot(tmp_path):
    catalog = tmp_path / "illhub.db"
    make_catalog(catalog, n=10)
    first = publish(catalog, tmp_path / "out")
    assert first.resources == 10
    writer = sqlite3.connect(catalog)  # a harvest in the middle of a transaction
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE resources SET title = 'uncommitted'")
    try:
        second = publish(catalog, tmp_path / "out")
    finally:
        writer.rollback()
        writer.close()
    assert second.path == first.path and second.resources == 10
    conn = sqlite3.connect(f"file:{second.path}?immutable=1", uri=True)
    assert conn.execute("SELECT count(*) FROM resources WHERE title = 'uncommitted'").fetchone()[0] == 0
    conn.close()
    make_catalog(catalog, n=5, start=100)
    third = publish(catalog, tmp_path / "out")
    assert third.resources == 15 and third.sha256 != second.sha256
    assert json.loads(third.manifest.read_text())["resources"] == 15


def test_publish_errors_are_one_line_and_leave_nothing(tmp_path):
    missing = run_cli("publish", "--db", str(tmp_path / "none.db"), str(tmp_path / "out"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr and "illhub harvest" in missing.stderr
    catalog = tmp_path / "illhub.db"
    make_catalog(catalog, n=3)
    (tmp_path / "afile").write_text("x")
    not_dir = run_cli("publish", "--db", str(catalog), str(tmp_path / "afile"))
    assert not_dir.returncode != 0 and "afile" in not_dir.stderr
    itself = run_cli("publish", "--db", str(catalog), str(tmp_path))
    assert itself.returncode == 1 and "is the catalog itself" in itself.stderr
    assert not list(tmp_path.glob(".publish-*"))
