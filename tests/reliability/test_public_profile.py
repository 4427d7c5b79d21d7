"""What ``illhub serve --public`` shows: resources, their sources, events, link health and a
harvest-health summary; nothing else (issue 21, item 6).

The catalog is harvested from loopback with a source whose failure names an internal host
(a redirect to ``intranet-secret.example``): its harvest error must not be reachable from
anywhere in the public catalog, nor the catalog's path on disk, nor Datasette's own pages;
a bad URL gets a short 4xx and one line in the log.
"""

from __future__ import annotations

import html
import logging
import re
from urllib.parse import urljoin, urlsplit

import pytest

from catalog.public import PRIVATE_QUERIES, PUBLIC_TABLES
from tests.reliability.helpers import DatasetteClient, feed_source, harvest, items_for, rss, runs, write_registry
from tests.server import StubServer, ok, redirect

SECRET_HOST = "intranet-secret.example"
PRIVATE_TABLES = ("fetch_cache", "raw_entries", "source_state", "harvest_runs", "link_checks", "link_check_runs",
                  "web_pages", "source_health", "resource_tags", "tag_counts", "_sqlite_migrations",
                  "resources_fts", "resources_fts_data")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("public")
    with StubServer("127.0.0.91") as server:
        server.route("/feed", ok(rss(items_for("good", 30, base="http://127.0.0.1:9/"))))
        server.route("/moved", redirect(f"http://{SECRET_HOST}/admin/feed.xml"))
        registry = write_registry(tmp / "registry.yaml", [feed_source("good", server.url("/feed")),
                                                          feed_source("moved", server.url("/moved"))])
        db = tmp / "catalog.db"
        result = harvest(registry, db)
    assert result.returncode == 1  # 'moved' failed
    assert SECRET_HOST in runs(db)["moved"]["error"]
    return db


Client = DatasetteClient


@pytest.fixture(scope="module")
def public(catalog):
    c = Client(catalog, public=True)
    yield c
    c.close()


def crawl(client, start="/", limit=400):
    """Every page reachable by links from the front page (and each table's JSON and CSV)."""
    seen, queue, pages = set(), [start], {}
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        r = client.get(path)
        pages[path] = r
        if r.status_code != 200 or "html" not in r.headers.get("content-type", ""):
            continue
        for href in re.findall(r'href="([^"#]+)"', r.text):
            target = urljoin("http://localhost" + path, html.unescape(href))
            parts = urlsplit(target)
            if parts.netloc != "localhost" or parts.path.startswith("/-/static"):
                continue
            local = parts.path + (f"?{parts.query}" if parts.query else "")
            if local not in seen:
                queue.append(local)
                if re.match(rf"^/{client.name}/\w+$", parts.path):
                    queue += [parts.path + ".json", parts.path + ".csv"]
    return pages


def test_nothing_private_is_reachable_from_the_public_catalog(public, catalog):
    pages = crawl(public)
    assert len(pages) > 40
    for path, r in pages.items():
        assert SECRET_HOST not in r.text, path
        assert str(catalog) not in r.text and str(catalog.parent) not in r.text, path
        assert r.status_code < 500, (path, r.status_code)
    reached = {urlsplit(p).path for p, r in pages.items() if r.status_code == 200}
    for table in PRIVATE_TABLES:
        assert f"/{public.name}/{table}" not in reached, table
    assert f"/{public.name}/harvest_summary" in reached
    assert f"/{public.name}/resources" in reached and f"/{public.name}/sources" in reached


@pytest.mark.parametrize("table", PRIVATE_TABLES)
def test_private_tables_answer_403_in_every_format(public, table):
    for suffix in ("", ".json", ".csv"):
        r = public.get(f"/{public.name}/{table}{suffix}")
        assert r.status_code == 403, (table, suffix, r.status_code)
        assert SECRET_HOST not in r.text
    assert public.get(f"/{public.name}/{table}/1").status_code in (403, 404)


def test_only_public_tables_are_listed(public):
    listed = {t["name"] for t in public.get(f"/{public.name}.json").json()["tables"]}
    assert listed == set(PUBLIC_TABLES)
    queries = {q["name"] for q in public.get(f"/{public.name}.json").json()["queries"]}
    assert not queries & PRIVATE_QUERIES and "harvest_summary" in queries


def test_the_harvest_summary_has_no_error_texts(public):
    data = public.get(f"/{public.name}/harvest_summary.json?_shape=objects").json()
    rows = {row["source_id"]: row for row in data["rows"]}
    assert rows["moved"]["last_status"] == "failed" and rows["moved"]["consecutive_failures"] == 1
    assert not {"error", "warning", "last_error"} & set(data["columns"])


@pytest.mark.parametrize("path", ["/-/databases.json", "/-/threads.json", "/-/versions.json", "/-/settings.json",
                                  "/-/plugins.json", "/-/metadata.json", "/-/config", "/-/actor.json",
                                  "/-/facet-cache.json", "/-/databases"])
def test_datasettes_own_pages_are_not_public(public, path):
    r = public.get(path)
    assert r.status_code == 404
    assert len(r.text) < 3000 and "/" + public.name not in r.text.replace(f'href="/{public.name}', "")


def test_the_local_profile_still_shows_everything(catalog):
    local = Client(catalog)
    try:
        assert local.get("/-/databases.json").status_code == 200
        assert local.get(f"/{local.name}/harvest_runs.json").status_code == 200
        assert local.get(f"/{local.name}/harvest_health.json").status_code == 200
    finally:
        local.close()


def test_unique_and_text_facets_are_refused(public):
    for column in ("title", "description", "url", "id", "excerpt", "extra"):
        r = public.get(f"/{public.name}/resources.json?_facet={column}")
        assert r.status_code == 400 and "not offered" in r.json()["error"], column
    assert public.get(f"/{public.name}/resources.json?_facet_array=title").status_code == 400
    assert public.get(f"/{public.name}/resources.json?_facet_size=max").status_code == 400
    assert public.get(f'/{public.name}/resources.json?_through={{"table":"web_pages","column":"source_id",'
                      '"value":"x"}').status_code == 400
    r = public.get(f"/{public.name}/resources.json?_facet=content_type&_facet=language&_facet_size=10")
    assert r.status_code == 200 and "content_type" in r.json()["facet_results"]


def test_a_bad_url_is_a_short_4xx_and_one_log_line(public, caplog, capfd):
    capfd.readouterr()
    for path in (f"/{public.name}/resources.atom", f"/{public.name}/nonexistent", f"/{public.name}/resources.json?"
                 "_sort=nonexistent", f"/{public.name}/fetch_cache"):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            r = public.get(path)
        assert 400 <= r.status_code < 500, (path, r.status_code)
        assert len(r.text) < 20_000
        records = [rec for rec in caplog.records if rec.name == "illhub.serve"]
        assert len(records) == 1 and not records[0].exc_info, (path, [rec.getMessage() for rec in caplog.records])
        assert str(r.status_code) in records[0].getMessage() and "\n" not in records[0].getMessage()
        out, err = capfd.readouterr()
        assert "Traceback" not in out + err and len((out + err).splitlines()) <= 1, (path, out, err)
