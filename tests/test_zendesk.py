"""The zendesk kind: its parser (locales, cursor pagination), and `illhub harvest` (a subprocess)
of a Help Center API followed through next_page (tests/fixtures/zendesk/), on loopback."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harvesters.parsers.zendesk import articles_url, locale_from_url, parse_articles
from illhub.loopback import Request
from tests.harvesting import harvest_sites, rows
from tests.server import StubServer

FIXTURES = Path(__file__).parent / "fixtures" / "zendesk"


def zendesk_server() -> StubServer:
    srv = StubServer().start()
    srv.add("/robots.txt", "User-agent: *\nDisallow: /hc/*/search\nDisallow: /access/\n", "text/plain")
    data = json.loads((FIXTURES / "articles.json").read_text(encoding="utf-8").replace("{base}", srv.base))

    def articles(req: Request):
        per_page, page = int(req.arg("per_page", "30")), int(req.arg("page", "1"))
        count = len(data["articles"])
        page_count = max(1, math.ceil(count / per_page))
        chunk = data["articles"][(page - 1) * per_page: page * per_page]
        section_ids = {a["section_id"] for a in chunk}
        sections = [s for s in data["sections"] if s["id"] in section_ids]
        categories = [c for c in data["categories"] if c["id"] in {s["category_id"] for s in sections}]
        nxt = (f"{srv.base}/api/v2/help_center/en-us/articles.json?include=sections%2Ccategories&page={page + 1}"
               f"&per_page={per_page}") if page < page_count else None
        body = {"articles": chunk, "sections": sections, "categories": categories, "next_page": nxt,
                "previous_page": None, "count": count, "page": page, "page_count": page_count, "per_page": per_page,
                "sort_by": "updated_at", "sort_order": "desc"}
        return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body).encode()

    srv.route("/api/v2/help_center/en-us/articles.json", articles)
    return srv


def registry_text(s: dict[str, StubServer]) -> str:
    return f"""
sources:
  - id: zd-help
    name: ILLiad support (Zendesk-like)
    kind: zendesk
    url: {s['zd'].base}/hc/en-us
    per_page: 2
"""


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """One harvest of the Zendesk source for the module."""
    servers = {"zd": zendesk_server()}
    yield harvest_sites(tmp_path_factory.mktemp("zendesk"), servers, registry_text(servers))
    for srv in servers.values():
        srv.stop()


def test_every_zendesk_source_succeeds(web):
    assert web["result"].returncode == 0, web["result"].stdout + web["result"].stderr
    assert dict(rows(web["db"], "select source_id, status from harvest_runs")) == {"zd-help": "ok"}


def test_zendesk_locale_urls_and_cursor_pagination():
    assert locale_from_url("https://support.demo.example.com/hc/fr-ca/articles") == "fr-ca"
    assert locale_from_url("https://support.demo.example.com/") is None
    assert articles_url("https://support.demo.example.com/hc/en-us", "en-us", 100) == (
        "https://support.demo.example.com/api/v2/help_center/en-us/articles.json?per_page=100"
        "&include=sections%2Ccategories&sort_by=updated_at&sort_order=desc")
    body = json.dumps({"articles": [{"id": 1, "html_url": "https://support.demo.example.com/hc/en-us/articles/1-x",
                                     "title": "X", "body": "<p>short</p>", "label_names": []}],
                       "meta": {"has_more": True}, "links": {"next": "https://support.demo.example.com/api/next"}}).encode()
    parsed = parse_articles(body, "https://support.demo.example.com/api/v2/help_center/en-us/articles.json")
    assert parsed.next_page == "https://support.demo.example.com/api/next" and len(parsed.resources) == 1
    with pytest.raises(ValueError, match="not JSON"):
        parse_articles(b"<html>", "https://support.demo.example.com/api/v2/help_center/en-us/articles.json")


def test_zendesk_follows_next_page_and_keeps_section_and_labels(web):
    base = web["servers"]["zd"].base
    got = {r[0]: r[1:] for r in rows(web["db"], "select url, title, content_type, updated, extra, language "
                                                "from resources where source_id = 'zd-help'")}
    assert len(got) == 5  # six articles, one a draft
    assert not any("upcoming-release-notes" in u for u in got)
    title, ctype, updated, extra, language = got[base + "/hc/en-us/articles/360000105-connecting-illiad-to-alma-with-ncip"]
    extra = json.loads(extra)
    assert (title, ctype, language) == ("Connecting ILLiad to Alma with NCIP", "documentation", "en-us")
    assert extra["section"] == "Addons and integrations (DEMO)" and extra["category"] == "Integrations (DEMO)"
    assert extra["labels"] == ["ncip", "alma"]
    api = [h for h in web["hits"]["zd"] if h.startswith("/api/")]
    assert len(api) == 3 and len(set(api)) == 3  # 6 articles at 2 a page, next_page followed to the end
