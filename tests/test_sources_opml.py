"""`illhub sources` (registry + last status) and `illhub export --format opml`."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from pipeline.store import finish_run, open_db, start_run, sync_sources
from tests.conftest import ROOT, run_cli

REGISTRY = """\
defaults:
  schedule: nightly
sources:
  # a blog
  - id: lakeside-blog
    name: Lakeside ILL blog
    kind: feed
    url: https://lakeside.example.org/feed/
    organization: Lakeside Consortium
    topics: [workflows, news]
  - id: lakeside-videos
    name: Lakeside on YouTube
    kind: youtube
    channel_id: UCabcdefghijklmnopqrstuv
    organization: Lakeside Consortium
  - id: prairie-channel
    name: Prairie channel page
    kind: youtube
    url: https://www.youtube.com/channel/UCzyxwvutsrqponmlkjihgfe
    organization: Prairie Library
  - id: handle-only
    name: A channel known by its handle
    kind: youtube
    url: https://www.youtube.com/@someillchannel
  - id: old-feed
    name: Retired feed
    kind: feed
    url: https://old.example.org/rss
    enabled: false
  - id: refs
    name: References
    kind: manual
    entries:
      - url: https://www.copyright.gov/circs/circ21.pdf
        title: Circular 21
"""


@pytest.fixture
def registry_file(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY, encoding="utf-8")
    return path


def test_opml_export_lists_the_feeds_and_parses_back(registry_file, tmp_path):
    out = tmp_path / "feeds.opml"
    result = run_cli("export", "--format", "opml", "--registry", str(registry_file), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote 3 feeds" in result.stderr and "handle-only" in result.stderr
    root = ET.parse(out).getroot()
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.find("head/title").text and root.find("head/dateCreated").text.endswith("+0000")
    feeds = {o.get("illhubId"): o for o in root.iter("outline") if o.get("xmlUrl")}
    assert set(feeds) == {"lakeside-blog", "lakeside-videos", "prairie-channel"}
    assert feeds["lakeside-blog"].get("xmlUrl") == "https://lakeside.example.org/feed/"
    assert feeds["lakeside-blog"].get("category") == "/workflows,/news"
    assert feeds["lakeside-blog"].get("type") == "rss" and feeds["lakeside-blog"].get("text") == "Lakeside ILL blog"
    assert feeds["lakeside-videos"].get("xmlUrl") == (
        "https://www.youtube.com/feeds/videos.xml?channel_id=UCabcdefghijklmnopqrstuv")
    assert feeds["prairie-channel"].get("xmlUrl").endswith("channel_id=UCzyxwvutsrqponmlkjihgfe")
    groups = [o.get("text") for o in root.find("body")]
    assert groups == ["Lakeside Consortium", "Prairie Library"]
    lakeside = root.find("body")[0]
    assert {o.get("illhubId") for o in lakeside} == {"lakeside-blog", "lakeside-videos"}


def test_opml_of_the_real_registry_is_valid_xml():
    result = run_cli("export", "--format", "opml", "--registry", str(ROOT / "registry.yaml"))
    assert result.returncode == 0, result.stderr
    root = ET.fromstring(result.stdout)
    urls = [o.get("xmlUrl") for o in root.iter("outline") if o.get("xmlUrl")]
    assert "https://hangingtogether.org/feed/" in urls
    assert all(u.startswith(("http://", "https://")) for u in urls)


def test_sources_lists_registry_with_last_status(registry_file, tmp_path):
    db_path = tmp_path / "c.db"
    db = open_db(db_path)
    sync_sources(db, [{"id": "lakeside-blog", "name": "x", "kind": "feed"}, {"id": "lakeside-videos",
                                                                             "name": "y", "kind": "youtube"}])
    first = start_run(db, "lakeside-blog", "g1", "2026-11-01T00:00:00Z")
    finish_run(db, first, status="failed", error="HTTP 404 from https://lakeside.example.org/feed/")
    second = start_run(db, "lakeside-blog", "g2", "2026-11-02T00:00:00Z")
    finish_run(db, second, status="ok", items_seen=12, finished_at="2026-11-02T00:01:00Z")
    third = start_run(db, "lakeside-videos", "g2", "2026-11-02T00:00:00Z")
    finish_run(db, third, status="failed", error="DNS lookup failed", finished_at="2026-11-02T00:02:00Z")
    db.close()
    result = run_cli("sources", "--registry", str(registry_file), "--db", str(db_path), "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert list(rows) == ["lakeside-blog", "lakeside-videos", "prairie-channel", "handle-only", "old-feed", "refs"]
    assert rows["lakeside-blog"]["status"] == "ok" and rows["lakeside-blog"]["items_seen"] == 12
    assert rows["lakeside-blog"]["last_run"] == "2026-11-02T00:01:00Z" and rows["lakeside-blog"]["error"] is None
    assert rows["lakeside-videos"]["status"] == "failed" and rows["lakeside-videos"]["error"] == "DNS lookup failed"
    assert rows["prairie-channel"]["status"] == "never harvested"
    assert rows["old-feed"]["status"] == "disabled"
    table = run_cli("sources", "--registry", str(registry_file), "--db", str(db_path))
    assert table.returncode == 0
    assert "lakeside-videos" in table.stdout and "DNS lookup failed" in table.stdout and "never harvested" in table.stdout


def test_sources_without_a_catalog(registry_file, tmp_path):
    result = run_cli("sources", "--registry", str(registry_file), "--db", str(tmp_path / "none.db"), "--json")
    assert result.returncode == 0, result.stderr
    assert {r["status"] for r in json.loads(result.stdout)} == {"never harvested", "disabled"}
    assert not (tmp_path / "none.db").exists()
