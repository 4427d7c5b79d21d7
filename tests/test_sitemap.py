"""The sitemap kind: its parser (urlsets, indexes, gzip, robots.txt lines, hostile XML), and
`illhub harvest` (a subprocess) of a docs site with a sitemap index and gzip sitemaps on loopback
(tests/fixtures/sitemap/); a second run skips pages whose lastmod is unchanged."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from harvesters.parsers.sitemap import NotASitemap, parse_sitemap
from tests.conftest import run_cli
from tests.harvesting import harvest_sites, paths, rows, urls_of
from tests.server import StubServer

FIXTURES = Path(__file__).parent / "fixtures" / "sitemap"


DOCS_PAGES = {
    "/docs/illiad/getting-started": ("Getting started", "Install ILLiad and sign in for the first time.", "2025-10-01"),
    "/docs/illiad/addons/odyssey": ("The Odyssey addon", "Send and receive articles with the Odyssey addon.", "2025-09-01"),
    "/docs/illiad/web-pages": ("Customizing web pages", "Edit the patron web pages of ILLiad.", "2025-08-01"),
    "/docs/illiad/ncip": ("NCIP with Alma", "Connect ILLiad and Alma with NCIP.", "2025-07-01"),
    "/docs/internal/staff-notes": ("Staff notes", "Disallowed by robots.txt.", "2025-09-02"),
    "/docs/archive/illiad-8-install": ("Installing ILLiad 8", "Excluded by pattern.", "2019-01-01"),
    "/blog/2025/release-party": ("Release party", "Not included.", "2025-10-10"),
}


def docs_server(lastmod_odyssey: str = "2025-09-01T10:00:00+00:00") -> StubServer:
    srv = StubServer().start()
    set_sitemaps(srv, lastmod_odyssey)
    template = (FIXTURES / "docs-page.html").read_text(encoding="utf-8")
    for path, (title, description, updated) in DOCS_PAGES.items():
        srv.add(path, template.replace("{title}", title).replace("{description}", description)
                .replace("{updated}", updated).replace("{path}", path))
    return srv


def set_sitemaps(srv: StubServer, lastmod_odyssey: str) -> None:
    d = FIXTURES
    srv.add_file("/robots.txt", d / "robots.txt", "text/plain")
    srv.add_file("/sitemap_index.xml", d / "sitemap_index.xml", "application/xml")
    docs1 = (d / "docs-1.xml").read_text(encoding="utf-8").replace("2025-09-01T10:00:00+00:00", lastmod_odyssey)
    srv.add("/sitemaps/docs-1.xml.gz", docs1, "application/x-gzip", gzip=True)
    srv.add_file("/sitemaps/docs-2.xml.gz", d / "docs-2.xml", "application/x-gzip", gzip=True)
    srv.add_file("/sitemaps/blog.xml", d / "blog.xml", "application/xml")


URLSET = b"""<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc> https://docs.demo.example.org/a </loc><lastmod>2025-10-01</lastmod></url>
<url><loc>/relative/b</loc></url><url><lastmod>2025-01-01</lastmod></url>
<url><loc>javascript:alert(1)</loc></url></urlset>"""


def registry_text(s: dict[str, StubServer]) -> str:
    return f"""
sources:
  - id: docs-sitemap
    name: ILLiad docs (sitemap)
    kind: sitemap
    url: {s['docs'].base}/robots.txt
    include: ['/docs/']
    exclude: ['/docs/archive/']
    documents: true
  - id: docs-capped
    name: ILLiad docs, two pages
    kind: sitemap
    url: {s['docs2'].base}/sitemap_index.xml
    max_pages: 2
"""


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """One harvest of every sitemap source for the module."""
    servers = {"docs": docs_server(), "docs2": docs_server()}
    yield harvest_sites(tmp_path_factory.mktemp("sitemap"), servers, registry_text(servers))
    for srv in servers.values():
        srv.stop()


def test_every_sitemap_source_succeeds(web):
    assert web["result"].returncode == 0, web["result"].stdout + web["result"].stderr
    status = dict(rows(web["db"], "select source_id, status from harvest_runs"))
    assert status == {"docs-sitemap": "ok", "docs-capped": "ok"}, status


def test_sitemap_urlset_plain_and_gzip():
    for body in (URLSET, gzip.compress(URLSET)):
        parsed = parse_sitemap(body, "https://docs.demo.example.org/sitemap.xml")
        assert parsed.kind == "urlset"
        assert [(e.url, e.lastmod) for e in parsed.pages] == [
            ("https://docs.demo.example.org/a", "2025-10-01T00:00:00Z"), ("https://docs.demo.example.org/relative/b", None)]
        assert parsed.warnings == ["https://docs.demo.example.org/sitemap.xml: 2 entries without a usable <loc> were skipped"]


def test_sitemap_index_and_robots_lines():
    index = parse_sitemap(b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap>'
                          b"<loc>https://h.example.org/s1.xml.gz</loc></sitemap></sitemapindex>", "https://h.example.org/i.xml")
    assert index.kind == "sitemapindex" and [s.url for s in index.sitemaps] == ["https://h.example.org/s1.xml.gz"]
    robots = parse_sitemap(b"User-agent: *\nDisallow: /x\nSitemap: https://h.example.org/sitemap.xml\n"
                           b"sitemap: /other.xml\n", "https://h.example.org/robots.txt")
    assert robots.kind == "robots"
    assert [s.url for s in robots.sitemaps] == ["https://h.example.org/sitemap.xml", "https://h.example.org/other.xml"]


@pytest.mark.parametrize("body, reason", [
    (b"<!DOCTYPE html><html><body>Not found</body></html>", "HTML page"),
    (b"", "empty"),
    (b"<rss version='2.0'><channel/></rss>", "<rss>"),
    (b"User-agent: *\nDisallow:\n", "no Sitemap"),
    (b"\x1f\x8b\x08garbage", "corrupt"),
])
def test_not_a_sitemap(body, reason):
    url = "https://h.example.org/robots.txt" if b"User-agent" in body else "https://h.example.org/sitemap.xml"
    with pytest.raises(NotASitemap, match=reason):
        parse_sitemap(body, url)


def test_gzip_bomb_is_refused():
    bomb = gzip.compress(b"<urlset>" + b" " * (2 * 1024 * 1024) + b"</urlset>")
    assert len(bomb) < 10_000
    with pytest.raises(NotASitemap, match="larger than 1 MB"):
        parse_sitemap(bomb, "https://h.example.org/s.xml.gz", max_size=1024 * 1024)


def test_xml_entities_are_not_expanded():
    evil = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>https://h.example.org/&e;</loc></url></urlset>')
    parsed = parse_sitemap(evil, "https://h.example.org/s.xml")
    assert all("root:" not in e.url for e in parsed.pages)


def test_sitemap_index_gzip_filters_and_robots(web):
    base = web["servers"]["docs"].base
    assert paths(urls_of(web, "docs-sitemap"), base) == {
        "/docs/illiad/getting-started", "/docs/illiad/addons/odyssey", "/docs/illiad/web-pages", "/docs/illiad/ncip",
        "/docs/illiad/release-notes-9.2.pdf"}
    hits = web["hits"]["docs"]
    assert sorted(h for h in hits if not h.startswith("/docs/")) == sorted(
        ["/robots.txt", "/robots.txt", "/sitemap_index.xml", "/sitemaps/docs-1.xml.gz", "/sitemaps/docs-2.xml.gz",
         "/sitemaps/blog.xml"])  # robots.txt: once by the robots policy, once as the source itself
    assert sorted(h for h in hits if h.startswith("/docs/")) == [
        "/docs/illiad/addons/odyssey", "/docs/illiad/getting-started", "/docs/illiad/ncip", "/docs/illiad/web-pages"]
    title, updated, ctype = rows(web["db"], "select title, updated, content_type from resources where url = ?",
                                 base + "/docs/illiad/addons/odyssey")[0]
    assert title == "The Odyssey addon | ILLiad Documentation (DEMO)" and updated == "2025-09-01T00:00:00Z"
    assert ctype == "documentation"
    capped = [h for h in web["hits"]["docs2"] if h.startswith(("/docs/", "/blog/"))]
    assert len(capped) == 2 and len(urls_of(web, "docs-capped")) == 2


def test_second_run_skips_pages_whose_lastmod_is_unchanged(web, tmp_path):
    docs = web["servers"]["docs"]
    run_id_1 = rows(web["db"], "select max(id) from harvest_runs where source_id = 'docs-sitemap'")[0][0]
    before = dict(rows(web["db"], "select url, last_changed from resources where source_id = 'docs-sitemap'"))
    docs.clear()
    result = run_cli("harvest", "--registry", str(web["registry"]), "--db", str(web["db"]), "--delay", "0.005",
                     "--quiet", "--source", "docs-sitemap")
    assert result.returncode == 0, result.stdout + result.stderr
    # only the page listed without a lastmod is fetched again
    assert [h for h in docs.targets() if h.startswith("/docs/")] == ["/docs/illiad/ncip"]
    run_id_2, status, seen = rows(web["db"], "select id, status, items_seen from harvest_runs where source_id = "
                                             "'docs-sitemap' order by id desc limit 1")[0]
    # seen: the 3 pages skipped by lastmod and ncip (fetched, same body as before); the sitemaps themselves are
    # unchanged too, so the PDF they list is not stored again
    assert run_id_2 > run_id_1 and status == "ok" and seen == 4
    remembered = dict(rows(web["db"], "select url, last_run_id from web_pages where source_id = 'docs-sitemap'"))
    assert remembered == {base + p: run_id_2 for base in [docs.base] for p in (
        "/docs/illiad/getting-started", "/docs/illiad/addons/odyssey", "/docs/illiad/web-pages", "/docs/illiad/ncip")}
    assert dict(rows(web["db"], "select url, last_changed from resources where source_id = 'docs-sitemap'")) == before
    # a new lastmod for one page: that page (and the one without lastmod) is fetched, nothing else
    set_sitemaps(docs, "2025-11-20T08:00:00+00:00")
    docs.clear()
    result = run_cli("harvest", "--registry", str(web["registry"]), "--db", str(web["db"]), "--delay", "0.005",
                     "--quiet", "--source", "docs-sitemap")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(h for h in docs.targets() if h.startswith("/docs/")) == ["/docs/illiad/addons/odyssey", "/docs/illiad/ncip"]
    lastmod = rows(web["db"], "select lastmod from web_pages where url = ?", docs.base + "/docs/illiad/addons/odyssey")
    assert lastmod == [("2025-11-20T08:00:00Z",)]
