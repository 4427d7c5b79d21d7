"""End to end: `illhub harvest` as a subprocess against the demo web on loopback."""

from __future__ import annotations

import json
import sqlite3

from tests.conftest import run_cli


def test_harvest_demo_web_end_to_end(demo_server, demo_registry_file, tmp_path):
    db = tmp_path / "catalog.db"
    result = run_cli("harvest", "--registry", str(demo_registry_file), "--db", str(db), "--delay", "0.01", "--quiet")
    # demo-moved-feed answers 404 on purpose: the run reports it and exits 1, the rest is stored
    assert result.returncode == 1, result.stderr
    assert "demo-moved-feed" in result.stdout and "HTTP 404" in result.stdout
    conn = sqlite3.connect(db)
    runs = dict(conn.execute("select source_id, status from harvest_runs"))
    assert runs["demo-moved-feed"] == "failed"
    assert runs["demo-northwind-blog"] == "ok"
    assert runs["demo-riverbend-messy"] == "warning"
    urls = {row[0] for row in conn.execute("select url from resources")}
    # tracking parameters and fragments are gone, relative links made absolute, host lower-cased
    assert "https://demo-northwind.example.edu/ill/2026/11/contu-rule-of-five/" in urls
    assert "https://demo-northwind.example.edu/ill/2026/10/tipasa-migration/" in urls
    assert "https://demo-northwind.example.edu/ill/2026/09/borrowing-101/" in urls
    assert not any(u.startswith("javascript:") for u in urls)
    # the Borrowing 101 post is one resource listed by two sources
    rid = conn.execute("select id from resources where url like '%borrowing-101/'").fetchone()[0]
    sources = {r[0] for r in conn.execute("select source_id from resource_sources where resource_id = ?", [rid])}
    assert sources == {"demo-northwind-blog", "demo-lakeside-news"}
    # YouTube: a Short, with its view count and thumbnail
    title, extra, thumb = conn.execute(
        "select title, extra, thumbnail from resources where url = 'https://www.youtube.com/watch?v=dEmOvid0002'"
    ).fetchone()
    extra = json.loads(extra)
    assert extra["is_short"] is True and extra["views"] == 212 and extra["channel_id"] == "UCdemoLakesideILLtrain01"
    assert thumb.startswith("https://i2.ytimg.com/")
    # every request carried the identifying User-Agent, robots.txt included
    assert demo_server.hits() and all(h.user_agent.startswith("illhub/") for h in demo_server.hits())
    assert any(path == "/robots.txt" for path in demo_server.targets())
    # the web kinds of the demo: a crawl, a listing, a sitemap, WordPress and Zendesk APIs
    # (what each source gave, owned or shared: a video of the listing is owned by its channel's feed)
    counts = dict(conn.execute("select source_id, count(*) from resource_sources group by source_id"))
    for source_id, n in {"demo-lakeside-help": 5, "demo-lakeside-training": 4, "demo-riverbend-docs": 4,
                         "demo-harbor-wordpress": 6, "demo-lakeside-support": 4}.items():
        assert runs[source_id] == "ok" and counts[source_id] == n, (source_id, runs[source_id], counts.get(source_id))
    assert not any(path.startswith("/help/Lakeside_ILL/Internal/") for path in demo_server.targets())
    assert not any(path.startswith("/docs/company/") for path in demo_server.targets())


def test_second_harvest_changes_only_last_seen(demo_server, demo_registry_file, tmp_path):
    db = tmp_path / "catalog.db"
    args = ("harvest", "--registry", str(demo_registry_file), "--db", str(db), "--delay", "0.01", "--quiet")
    run_cli(*args)
    conn = sqlite3.connect(db)
    before = conn.execute("select id, content_hash, first_seen, last_changed from resources order by id").fetchall()
    run_cli(*args)
    after = conn.execute("select id, content_hash, first_seen, last_changed from resources order by id").fetchall()
    assert before == after and len(before) > 20
    assert conn.execute("select count(*) from harvest_runs").fetchone()[0] == 2 * demo_source_count()


def demo_source_count() -> int:
    from illhub.demo import demo_registry

    return len(demo_registry("http://127.0.0.1:9").sources)


ISO_UTC = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


def test_source_selection_exit_0_and_run_rows(demo_server, demo_registry_file, tmp_path):
    import re

    db = tmp_path / "catalog.db"
    result = run_cli("harvest", "--registry", str(demo_registry_file), "--db", str(db), "--delay", "0.01", "--quiet",
                     "--source", "demo-northwind-blog", "--source", "demo-curated-copyright")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 ok" in result.stdout
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    runs = {r["source_id"]: dict(r) for r in conn.execute("select * from harvest_runs")}
    assert set(runs) == {"demo-northwind-blog", "demo-curated-copyright"}
    blog = runs["demo-northwind-blog"]
    assert blog["status"] == "ok" and blog["http_status"] == 200 and blog["error"] is None
    assert blog["items_seen"] == blog["items_new"] == 6 and blog["items_updated"] == 0
    assert blog["requests"] >= 1 and blog["bytes"] > 1000
    assert re.match(ISO_UTC, blog["started_at"]) and re.match(ISO_UTC, blog["finished_at"])
    assert blog["run_group"] == runs["demo-curated-copyright"]["run_group"]
    assert runs["demo-curated-copyright"]["items_new"] == 2
    # only the chosen sources were fetched (robots.txt aside), but the whole registry is mirrored
    fetched = {path for path in demo_server.targets() if path != "/robots.txt"}
    assert fetched == {"/feeds/northwind-ill-blog.rss"}
    assert conn.execute("select count(*) from sources").fetchone()[0] == demo_source_count()
    assert {r[0] for r in conn.execute("select distinct source_id from resource_sources")} == set(runs)


def test_unknown_source_is_a_usage_error(demo_registry_file, tmp_path):
    db = tmp_path / "catalog.db"
    result = run_cli("harvest", "--registry", str(demo_registry_file), "--db", str(db), "--source", "demo-nope",
                     "--source", "demo-northwind-blog")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {demo_registry_file}: no source with id 'demo-nope'; known ids: ")
    assert "demo-northwind-blog" in line
    assert not db.exists()  # nothing was started


def test_registry_error_exits_2_and_touches_nothing(tmp_path):
    registry = tmp_path / "registry.yaml"
    registry.write_text("sources:\n  - id: x\n    name: X\n    kind: feed\n    url: file:///etc/passwd\n", encoding="utf-8")
    db = tmp_path / "catalog.db"
    result = run_cli("harvest", "--registry", str(registry), "--db", str(db))
    assert result.returncode == 2
    assert "source 'x' (#1): field 'url': must be an http:// or https:// URL, not file: URL" in result.stderr
    assert not db.exists()
