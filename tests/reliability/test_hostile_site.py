"""A hostile site under the `crawl` kind: a start page whose links point at disallowed
paths, script and file links, internal addresses, an endless link trap and an off-site
redirect. The crawler must request only what robots.txt, the site boundary, `max_depth`
and `max_pages` allow, store only plain http(s) links, and keep what it stored before.
"""

from __future__ import annotations

import sqlite3

from tests.reliability.helpers import harvest, runs, snapshot, write_registry
from tests.server import StubServer, ok, redirect

MAX_PAGES = 12


def page(title: str, links: list[str], body: str = "") -> str:
    anchors = "".join(f'<a href="{link}">{link}</a>\n' for link in links)
    return (f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>"
            f"<p>Interlibrary loan notes. {body}</p>{anchors}</body></html>")


def test_crawl_of_a_hostile_site(tmp_path):
    with StubServer("127.0.0.61") as site:
        port = site.base.rsplit(":", 1)[1]
        html = "text/html; charset=utf-8"
        site.route("/ill/", ok(page("Start", ["/ill/first"]), html))
        site.route("/ill/first", ok(page("First", []), html))
        source = {"id": "hostile-site", "name": "Hostile site", "kind": "crawl", "url": site.url("/ill/"),
                  "max_depth": 3, "max_pages": MAX_PAGES}
        registry = write_registry(tmp_path / "registry.yaml", [source])
        db = tmp_path / "catalog.db"
        first = harvest(registry, db)
        assert first.returncode == 0, first.stdout + first.stderr
        before = snapshot(db, "hostile-site")
        assert len(before) == 2

        links = [
            "/ill/private/secret", "javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd", "//evil.example/phish", "http://169.254.169.254/latest/meta-data/",
            f"http://0.0.0.0:{port}/ill/zero", f"http://[::ffff:0.0.0.0]:{port}/ill/zero6",
            f"http://admin:pw@127.0.0.61:{port}/ill/creds", "/ill/offsite", "/ill/trap/1", "/ill/first",
        ]
        site.route("/robots.txt", ok("User-agent: *\nDisallow: /ill/private/\n", "text/plain"))
        site.route("/ill/", ok(page("Start", links, '<img src=x onerror="alert(1)">'), html))
        site.route("/ill/offsite", redirect(f"http://0.0.0.0:{port}/ill/zero-redirect"))
        for n in range(1, 200):  # an endless trap: every page links to the next
            site.route(f"/ill/trap/{n}", ok(page(f"Trap {n}", [f"/ill/trap/{n + 1}", f"/ill/trap/{n}?again=1"]), html))
        site.clear()

        second = harvest(registry, db, "--timeout", "5")
        paths = site.paths()

    assert second.returncode == 0, second.stdout + second.stderr
    assert not [p for p in paths if p.startswith("/ill/private/")]  # robots.txt honoured
    assert not [p for p in paths if "zero" in p or "creds" in p]  # nothing the guard refuses got through
    assert len([p for p in paths if p != "/robots.txt"]) <= MAX_PAGES
    trap = sorted(int(p.rsplit("/", 1)[1]) for p in paths if p.startswith("/ill/trap/"))
    assert trap and max(trap) == 3  # max_depth 3: at most three links away from the start page
    assert all(h.user_agent.startswith("illhub/") for h in site.hits())
    run = runs(db)["hostile-site"]
    assert run["status"] == "warning", run["error"]  # pages stored; the off-site redirect attributed
    assert "network guard: 0.0.0.0 is the unspecified address" in run["error"]
    conn = sqlite3.connect(db)
    urls = [r[0] for r in conn.execute("select url from resources")]
    assert urls and all(u.startswith(f"http://127.0.0.61:{port}/ill/") for u in urls), urls
    text = " ".join(str(v) for row in conn.execute("select title, description from resources") for v in row)
    assert "onerror" not in text and "<" not in text
    now = {row[0]: row for row in snapshot(db, "hostile-site")}
    for row in before:  # what the first crawl stored is still there (the first page unchanged)
        assert row[0] in now
