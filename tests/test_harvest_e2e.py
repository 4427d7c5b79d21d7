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
    assert demo_server.hits and all(ua.startswith("illhub/") for _, ua in demo_server.hits)
    assert any(path == "/robots.txt" for path, _ in demo_server.hits)


def test_second_harvest_changes_only_last_seen(demo_server, demo_registry_file, tmp_path):
    db = tmp_path / "catalog.db"
    args = ("harvest", "--registry", str(demo_registry_file), "--db", str(db), "--delay", "0.01", "--quiet")
    run_cli(*args)
    conn = sqlite3.connect(db)
    before = conn.execute("select id, content_hash, first_seen, last_changed from resources order by id").fetchall()
    run_cli(*args)
    after = conn.execute("select id, content_hash, first_seen, last_changed from resources order by id").fetchall()
    assert before == after and len(before) > 20
    assert conn.execute("select count(*) from harvest_runs").fetchone()[0] == 18
