"""What a crawl stores, pinned: the records of a crawl of the fixture sites (tests/test_crawl.py's
MindTouch-like tree, LibGuides pages and listing page) and what the page extractor reads from every
HTML fixture, compared with tests/fixtures/golden/records.json.

The file was written by the code before the per-page path was made faster (issue 22), so a speed-up
that changes a stored value, a link followed or a warning fails here. When a change to what is
stored is meant, rewrite it (``python -m tests.test_crawl_records --write``) and review the diff.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harvesters.parsers.page import extract_links, extract_page
from tests.harvesting import harvest_sites, rows

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "golden" / "records.json"

RESOURCE_COLUMNS = ("url", "title", "description", "content_type", "organization", "source_id", "published",
                    "updated", "topics", "systems", "author", "language", "thumbnail", "excerpt", "extra",
                    "classified_by", "status")
RUN_COLUMNS = ("source_id", "status", "items_seen", "items_new", "items_updated", "http_status", "requests",
               "documents", "warning", "error")


def page_records() -> dict[str, Any]:
    """extract_page and extract_links of every HTML fixture, at a URL made of its path."""
    out = {}
    for path in sorted(FIXTURES.rglob("*.html")):
        name = path.relative_to(FIXTURES).as_posix()
        url = f"https://help.example.org/{name.removesuffix('.html')}?x=1"
        body = path.read_bytes()
        out[name] = {"page": extract_page(body, url, http_content_type="text/html"),
                     "links": [asdict(link) for link in extract_links(body, url)]}
    return out


def crawl_records(tmp: Path) -> dict[str, Any]:
    """The resources, page visits and runs of one crawl of the fixture sites, each server's
    address replaced by its name."""
    from tests.test_crawl import libguides_server, listing_server, mindtouch_server, registry_text

    servers = {"mt": mindtouch_server(), "mt2": mindtouch_server(), "lg": libguides_server(),
               "listing": listing_server()}
    try:
        web = harvest_sites(tmp, servers, registry_text(servers))
        assert web["result"].returncode == 0, web["result"].stdout + web["result"].stderr
        db = web["db"]
        found = {
            "resources": rows(db, f"select {', '.join(RESOURCE_COLUMNS)} from resources order by source_id, url"),
            "web_pages": rows(db, "select source_id, url, lastmod, http_status, resource_id is not null "
                                  "from web_pages order by source_id, url"),
            "runs": rows(db, f"select {', '.join(RUN_COLUMNS)} from harvest_runs order by source_id"),
        }
        text = json.dumps(found, ensure_ascii=False)
        for name, srv in sorted(servers.items(), key=lambda kv: -len(kv[1].base)):
            text = text.replace(srv.base, "{" + name + "}")
        return json.loads(text)
    finally:
        for srv in servers.values():
            srv.stop()


def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_every_html_fixture_reads_as_before():
    before, now = golden()["pages"], json.loads(json.dumps(page_records()))
    assert sorted(now) == sorted(before)
    for name in before:
        assert now[name] == before[name], name


def test_a_crawl_of_the_fixture_sites_stores_the_same_records(tmp_path):
    before, now = golden()["crawl"], crawl_records(tmp_path)
    assert [r[0] for r in now["resources"]] == [r[0] for r in before["resources"]]
    for a, b in zip(now["resources"], before["resources"], strict=True):
        assert dict(zip(RESOURCE_COLUMNS, a, strict=True)) == dict(zip(RESOURCE_COLUMNS, b, strict=True))
    assert now["web_pages"] == before["web_pages"]
    assert now["runs"] == before["runs"]


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    with tempfile.TemporaryDirectory() as tmp:
        GOLDEN.write_text(json.dumps({"pages": page_records(), "crawl": crawl_records(Path(tmp))},
                                     ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
