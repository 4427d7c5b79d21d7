"""The SQLite store: schema by migrations, idempotent writes, provenance, nothing deleted."""

from __future__ import annotations

import json
import re

import pytest

from pipeline.resource import Batch, Resource
from pipeline.store import finish_run, mark_interrupted_runs, open_db, start_run, store_batch, sync_sources

T1, T2, T3 = "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"


@pytest.fixture
def db(tmp_path):
    db = open_db(tmp_path / "catalog.db")
    sync_sources(db, [
        {"id": "blog", "name": "Blog", "kind": "feed", "url": "https://a.example.org/feed", "topics": ["lending"]},
        {"id": "news", "name": "News", "kind": "feed", "url": "https://b.example.org/feed"},
    ])
    yield db
    db.close()


def resources(n: int = 3) -> list[Resource]:
    return [
        Resource(url=f"https://A.example.org/post/{i}?utm_source=rss#c", title=f"<b>Post {i}</b>",
                 description=f"About borrowing, part {i}", content_type="article",
                 published="Tue, 10 Nov 2026 14:00:00 GMT", raw={"n": i}, extra={"views": i})
        for i in range(n)
    ]


def snapshot(db, table: str, ignore: tuple[str, ...] = ()) -> list[dict]:
    rows = [dict(r) for r in db[table].rows]
    return sorted(({k: v for k, v in r.items() if k not in ignore} for r in rows), key=lambda r: json.dumps(r))


def test_schema_and_pragmas(tmp_path):
    db = open_db(tmp_path / "x.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = set(db.table_names())
    assert {"sources", "resources", "resource_sources", "raw_entries", "harvest_runs", "resources_fts",
            "_sqlite_migrations"} <= tables
    cols = set(db["resources"].columns_dict)
    assert {"id", "url", "title", "description", "content_type", "organization", "source_id", "published",
            "updated", "topics", "systems", "first_seen", "last_seen", "last_changed"} <= cols
    db.close()
    open_db(tmp_path / "x.db").close()  # migrations are applied once; reopening is a no-op


def test_store_twice_changes_only_last_seen(db):
    first = store_batch(db, Batch("blog", resources(), url="https://a.example.org/feed"), run_id=1, now=T1)
    assert dict(first) == {"seen": 3, "new": 3, "updated": 0, "unchanged": 0, "skipped": 0}
    before = {t: snapshot(db, t) for t in ("resources", "resource_sources", "raw_entries")}
    second = store_batch(db, Batch("blog", resources(), url="https://a.example.org/feed"), run_id=1, now=T2)
    assert dict(second) == {"seen": 3, "new": 0, "updated": 0, "unchanged": 3, "skipped": 0}
    after = {t: snapshot(db, t) for t in ("resources", "resource_sources", "raw_entries")}
    # the raw entries did not change at all; resources and attributions only in last_seen
    assert after["raw_entries"] == before["raw_entries"]
    for t in ("resources", "resource_sources"):
        assert [{k: v for k, v in r.items() if k != "last_seen"} for r in after[t]] == \
               [{k: v for k, v in r.items() if k != "last_seen"} for r in before[t]]
        assert {r["last_seen"] for r in after[t]} == {T2}
    row = db["resources"].get(db.execute("select id from resources limit 1").fetchone()[0])
    assert row["first_seen"] == row["last_changed"] == T1 and row["last_seen"] == T2


def test_normalized_on_the_way_in(db):
    store_batch(db, Batch("blog", resources(1), url="https://a.example.org/feed"), now=T1)
    row = next(db["resources"].rows)
    assert row["url"] == "https://a.example.org/post/0"
    assert row["title"] == "Post 0" and row["published"] == "2026-11-10T14:00:00Z"
    assert json.loads(row["topics"]) == ["borrowing"]  # classified from the text
    assert row["source_id"] == "blog" and row["status"] == "active"
    raw = json.loads(db.execute("select raw from raw_entries").fetchone()[0])
    assert raw["raw"] == {"n": 0} and raw["title"] == "<b>Post 0</b>"  # what the parser read, untouched


def test_content_change_updates_last_changed(db):
    store_batch(db, Batch("blog", resources(2)), now=T1)
    changed = resources(2)
    changed[1].title = "Post 1, revised"
    changed[0].extra = {"views": 999}  # volatile: not a content change
    result = store_batch(db, Batch("blog", changed), now=T2)
    assert result["updated"] == 1 and result["unchanged"] == 1
    rows = {r["url"]: r for r in db["resources"].rows}
    assert rows["https://a.example.org/post/1"]["title"] == "Post 1, revised"
    assert rows["https://a.example.org/post/1"]["last_changed"] == T2
    assert rows["https://a.example.org/post/0"]["last_changed"] == T1
    assert json.loads(rows["https://a.example.org/post/0"]["extra"])["views"] == 999


def test_two_sources_one_resource(db):
    store_batch(db, Batch("blog", resources(1)), source_topics=["lending"], now=T1)
    other = [Resource(url="https://a.example.org/post/0", title="Another title from the news feed",
                      description="", content_type="article")]
    result = store_batch(db, Batch("news", other), source_topics=["copyright"], now=T2)
    assert result["seen"] == 1 and result["new"] == 0
    assert db["resources"].count == 1
    row = next(db["resources"].rows)
    assert row["source_id"] == "blog" and row["title"] == "Post 0"  # the first source owns the content
    assert set(json.loads(row["topics"])) >= {"lending", "copyright", "borrowing"}  # topics of both
    attributions = {r["source_id"]: r for r in db["resource_sources"].rows}
    assert set(attributions) == {"blog", "news"}
    assert attributions["blog"]["first_seen"] == T1 and attributions["news"]["first_seen"] == T2


def test_the_resources_own_site_owns_it_whatever_order_the_sources_come_in(tmp_path):
    """A newsletter (b.example.org) links to a blog post (a.example.org) that the blog's own feed
    lists too: the blog's content is kept, stored first or second, so a harvest gives the same
    catalog whichever source its downloads finish first; between two sources neither of which
    is the resource's site, the first keeps it."""
    shared = [Resource(url="https://a.example.org/post/0", title="Shared from A: Post 0",
                       description="A member's pick.", content_type="article")]
    stamps = ("first_seen", "last_seen", "last_changed")
    catalogs = []
    for order in (("blog", "news"), ("news", "blog")):
        db = open_db(tmp_path / f"{order[0]}.db")
        sync_sources(db, [{"id": "blog", "name": "Blog", "kind": "feed", "url": "https://a.example.org/feed"},
                          {"id": "news", "name": "News", "kind": "feed", "url": "https://b.example.org/feed"}])
        for sid, now in zip(order, (T1, T2), strict=True):
            store_batch(db, Batch(sid, resources(1) if sid == "blog" else shared), now=now)
        row = next(db["resources"].rows)
        assert (row["source_id"], row["title"]) == ("blog", "Post 0"), order
        catalogs.append(snapshot(db, "resources", ignore=stamps))
        db.close()
    assert catalogs[0] == catalogs[1]
    db = open_db(tmp_path / "neither.db")
    sync_sources(db, [{"id": "news", "name": "News", "kind": "feed", "url": "https://b.example.org/feed"},
                      {"id": "digest", "name": "Digest", "kind": "feed", "url": "https://c.example.org/feed"}])
    store_batch(db, Batch("news", shared), now=T1)
    store_batch(db, Batch("digest", [Resource(url="https://a.example.org/post/0", title="Other",
                                              content_type="article")]), now=T2)
    assert next(db["resources"].rows)["source_id"] == "news"
    db.close()


def test_duplicates_within_a_batch_and_unusable_links(db):
    batch = resources(1) + resources(1) + [Resource(url="javascript:alert(1)", title="x"),
                                           Resource(url="/relative/no-base", title="y")]
    result = store_batch(db, Batch("blog", batch), now=T1)
    assert result["seen"] == 4 and result["new"] == 1 and result["skipped"] == 2
    assert db["resources"].count == 1


def test_failing_or_empty_source_deletes_nothing(db):
    store_batch(db, Batch("blog", resources(3)), now=T1)
    before = snapshot(db, "resources")
    assert dict(store_batch(db, Batch("blog", []), now=T2)) == {"seen": 0, "new": 0, "updated": 0,
                                                                 "unchanged": 0, "skipped": 0}
    # a failed run stores no batch at all: only its harvest_runs row records the failure
    run = start_run(db, "blog", "g1", T3)
    finish_run(db, run, status="failed", error="DNS lookup failed for a.example.org")
    assert snapshot(db, "resources") == before and db["resources"].count == 3
    assert db["resource_sources"].count == 3


def test_full_text_search_follows_updates(db):
    store_batch(db, Batch("blog", resources(2)), now=T1)
    search = "select r.url from resources_fts f join resources r on r.rowid = f.rowid where resources_fts match ?"
    assert len(db.execute(search, ["borrowing"]).fetchall()) == 2
    changed = resources(2)
    changed[0].title, changed[0].description = "Tipasa migration", "moving systems"
    store_batch(db, Batch("blog", changed), now=T2)
    assert [r[0] for r in db.execute(search, ["tipasa"])] == ["https://a.example.org/post/0"]
    assert [r[0] for r in db.execute(search, ["borrowing"])] == ["https://a.example.org/post/1"]


def test_runs_and_interrupted_runs(db):
    run = start_run(db, "blog", "g1", T1)
    finish_run(db, run, status="ok", items_seen=3, items_new=3, http_status=200)
    row = db["harvest_runs"].get(run)
    assert row["status"] == "ok" and row["items_seen"] == 3 and row["finished_at"]
    left = start_run(db, "news", "g2", T2)
    assert mark_interrupted_runs(db) == 1
    row = db["harvest_runs"].get(left)
    assert row["status"] == "interrupted" and "stopped before this source finished" in row["error"]


def test_sync_sources_updates_and_never_deletes(db):
    sync_sources(db, [{"id": "blog", "name": "Blog renamed", "kind": "feed", "enabled": False,
                       "config": {"x": 1}, "topics": ["a"]}])
    assert db["sources"].count == 2
    row = db["sources"].get("blog")
    assert row["name"] == "Blog renamed" and row["enabled"] == 0
    assert json.loads(row["config"]) == {"x": 1} and json.loads(row["topics"]) == ["a"]


def test_json_encoding_is_dumps_without_an_encoder_per_value(monkeypatch):
    """What the CPU stage stores is ``json.dumps(value, ensure_ascii=False, sort_keys=True)``,
    encoded by one shared encoder instead of one built for each value."""
    from pipeline import store

    values = [[], ["b", "a"], {}, {"z": 1, "a": ["é", "\u2028"], "m": {"y": None, "b": 1.5}}, "ß", None, True,
              {"classified_by": {"system:alma": 'alias "Alma" in title', "lending": "weak words"}}]
    for v in values:
        assert store.to_json(v) == json.dumps(v, ensure_ascii=False, sort_keys=True)
    built = []
    real_init = json.JSONEncoder.__init__
    monkeypatch.setattr(json.JSONEncoder, "__init__", lambda self, *a, **k: built.append(1) or real_init(self, *a, **k))
    batch = Batch("s1", [Resource(url=f"https://example.org/{i}", title=f"Interlibrary loan {i}") for i in range(3)],
                  url="https://example.org/feed")
    prepared, _result = store.prepare_batch(batch, source_topics=["ill"])
    assert len(prepared) == 3 and built == []


def test_busy_timeout_from_the_environment_is_a_finite_number(monkeypatch, tmp_path):
    """ILLHUB_BUSY_TIMEOUT=inf crashed open_db (int of infinity); a value that is not a finite
    number >= 0 falls back to the default, like the lock wait's."""
    from pipeline.store import DEFAULT_BUSY_TIMEOUT, busy_timeout, open_db

    for bad in ("inf", "nan", "-3", "soon"):
        monkeypatch.setenv("ILLHUB_BUSY_TIMEOUT", bad)
        assert busy_timeout() == DEFAULT_BUSY_TIMEOUT
    monkeypatch.setenv("ILLHUB_BUSY_TIMEOUT", "inf")
    db = open_db(tmp_path / "c.db")
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == int(DEFAULT_BUSY_TIMEOUT * 1000)
    monkeypatch.setenv("ILLHUB_BUSY_TIMEOUT", "2.5")
    assert busy_timeout() == 2.5


def test_on_topic_only_reads_the_entry_s_own_words_even_for_its_source_s_topics():
    """A source listing `copyright`, keeping only what is on topic: a video about copyright is
    kept although its copyright reason reads "registry topic of …" (the registry's reason is
    kept first); a video about nothing in the vocabulary is left out and counted skipped."""
    from pipeline.resource import Batch, Resource
    from pipeline.store import prepare_batch

    batch = Batch(source_id="cc-youtube", url="https://www.youtube.com/feeds/videos.xml?channel_id=x", resources=[
        Resource(url="https://www.youtube.com/watch?v=aaaaaaaaaa1", title="Copyright and fair use in five minutes"),
        Resource(url="https://www.youtube.com/watch?v=aaaaaaaaaa2", title="Our new office dog says hello"),
    ])
    prepared, result = prepare_batch(batch, source_topics=["copyright"], on_topic_only=True)
    [(kept, _, reasons, _)] = prepared.values()
    assert kept.title == "Copyright and fair use in five minutes"
    assert reasons["copyright"] == "registry topic of source 'cc-youtube'" and result["skipped"] == 1


def _tags(db) -> tuple[list, list]:
    return (sorted(db.execute("SELECT col, value, resource_id FROM resource_tags").fetchall()),
            sorted(db.execute("SELECT col, value, n FROM tag_counts WHERE n > 0").fetchall()))


def _counted_tags(db) -> tuple[list, list]:
    """The tag tables as the resources themselves say they should be."""
    pairs = sorted(db.execute("SELECT 'topics', j.value, r.id FROM resources r, json_each(r.topics) j UNION ALL "
                              "SELECT 'systems', j.value, r.id FROM resources r, json_each(r.systems) j").fetchall())
    counts = sorted(db.execute("SELECT col, value, count(*) FROM (SELECT 'topics' col, j.value FROM resources r, "
                               "json_each(r.topics) j UNION ALL SELECT 'systems', j.value FROM resources r, "
                               "json_each(r.systems) j) GROUP BY col, value").fetchall())
    return pairs, counts


def test_index_and_tag_triggers_run_only_when_what_they_read_changed(db):
    """Migration m2202: an update that leaves the indexed values and the topics as they were
    (a new date) skips the full-text and tag triggers; one that changes them keeps the index
    and the tag tables in step, as before."""
    for name in ("resources_au", "tag_counts_au", "resource_tags_au"):
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", [name]).fetchone()[0]
        assert re.search(r"\sWHEN old\.", sql), name
    store_batch(db, Batch("blog", resources()), now=T1)
    rid = db.execute("SELECT id FROM resources ORDER BY id LIMIT 1").fetchone()[0]

    def check() -> None:
        db.execute("INSERT INTO resources_fts(resources_fts, rank) VALUES ('integrity-check', 1)")
        assert _tags(db) == _counted_tags(db)

    # the same values written again beside a new date: nothing for the triggers to do
    db.execute("UPDATE resources SET title = title, topics = topics, systems = systems, last_seen = ? WHERE id = ?",
               [T2, rid])
    check()
    # a new title, new topics and a system: the index and the tag tables follow
    db.execute("UPDATE resources SET title = 'Tipasa lending policy', topics = '[\"lending\",\"workflows\"]', "
               "systems = '[\"tipasa\"]' WHERE id = ?", [rid])
    check()
    found = db.execute("SELECT rowid FROM resources_fts WHERE resources_fts MATCH 'tipasa'").fetchall()
    assert found == db.execute("SELECT rowid FROM resources WHERE id = ?", [rid]).fetchall()
    assert ("systems", "tipasa", 1) in _tags(db)[1]
    # back to no system: counted down
    db.execute("UPDATE resources SET systems = '[]' WHERE id = ?", [rid])
    check()
    assert all(col != "systems" for col, _v, _n in _tags(db)[1])
