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
    # docs-capped's budget (2) leaves pages for later runs: it says so (issue 16: it used to end `ok`)
    assert status == {"docs-sitemap": "ok", "docs-capped": "warning"}, status
    [warning] = rows(web["db"], "select warning from harvest_runs where source_id = 'docs-capped'")[0]
    assert warning.startswith("max_pages (2) reached: 4 more page(s) left for later runs"), warning


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


# -- a sitemap larger than max_pages: rotation (issue 16) ---------------------------------------


def help_center_server() -> tuple[StubServer, list[str]]:
    """A help center whose sitemap lists 19 articles (no lastmod), each a page."""
    srv = StubServer().start()
    srv.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    body = (FIXTURES / "help-center-19.xml").read_text(encoding="utf-8")
    srv.add("/hc/sitemap.xml", body, "application/xml")
    template = (FIXTURES / "docs-page.html").read_text(encoding="utf-8")
    paths = [line.split("<loc>{base}")[1].split("</loc>")[0] for line in body.splitlines() if "<loc>" in line]
    for path in paths:
        title = path.rsplit("-", 1)[0].split("/")[-1]
        srv.add(path, template.replace("{title}", title).replace("{description}", f"About {title}.")
                .replace("{updated}", "2025-10-01").replace("{path}", path))
    return srv, paths


def harvest_again(registry: Path, db: Path, source: str) -> None:
    result = run_cli("harvest", "--registry", str(registry), "--db", str(db), "--delay", "0.005", "--quiet",
                     "--source", source)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_sitemap_larger_than_max_pages_is_covered_over_several_runs(tmp_path):
    """19 pages, max_pages 5: each run fetches 5 pages no run fetched before (the sitemap
    itself unchanged, from the fetch cache), so 4 runs cover all 19; then the pages fetched
    longest ago come first. Each run that leaves pages says how many."""
    srv, paths = help_center_server()
    try:
        registry = (f"sources:\n  - {{id: hc, name: Help center, kind: sitemap, url: '{srv.base}/hc/sitemap.xml', "
                    "max_pages: 5}\n")
        web = harvest_sites(tmp_path, {"hc": srv}, registry)
        assert web["result"].returncode == 0, web["result"].stdout + web["result"].stderr
        runs = [[h for h in web["hits"]["hc"] if h.startswith("/hc/en-us/")]]
        for _ in range(3):
            srv.clear()
            harvest_again(web["registry"], web["db"], "hc")
            runs.append([h for h in srv.targets() if h.startswith("/hc/en-us/")])
        assert [len(r) for r in runs] == [5, 5, 5, 5]
        assert len(set(runs[0]) | set(runs[1]) | set(runs[2])) == 15  # no page fetched twice in three runs
        assert set(runs[0] + runs[1] + runs[2] + runs[3]) == set(paths)  # all 19 in four
        assert len(set(runs[3]) & set(runs[0])) == 1  # the one slot left over: a page fetched in the first run
        assert runs[0] == paths[:5]  # never-fetched pages in the sitemap's order
        statuses = rows(web["db"], "select status, warning from harvest_runs order by id")
        assert [s for s, _ in statuses] == ["warning"] * 4
        assert [w.split(":")[1].strip().split(" left")[0] for _, w in statuses] == [
            "14 more page(s)", "14 more page(s)", "14 more page(s)", "14 more page(s)"]
        assert len(urls_of(web, "hc")) == 19
    finally:
        srv.stop()


def test_rotation_puts_new_and_changed_lastmods_first(tmp_path):
    """With lastmod: pages never fetched, newest lastmod first; later a page whose lastmod
    changed goes before the pages fetched longest ago; unchanged ones are not fetched."""
    srv, paths = help_center_server()
    try:
        def sitemap(changed: str) -> str:
            entries = "".join(
                f"<url><loc>{{base}}{p}</loc><lastmod>2025-{(i % 12) + 1:02d}-01</lastmod></url>" if p != paths[0] else
                f"<url><loc>{{base}}{p}</loc><lastmod>{changed}</lastmod></url>" for i, p in enumerate(paths))
            return f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'

        srv.add("/hc/sitemap.xml", sitemap("2024-01-01"), "application/xml")
        registry = (f"sources:\n  - {{id: hc, name: Help center, kind: sitemap, url: '{srv.base}/hc/sitemap.xml', "
                    "max_pages: 4}\n")
        web = harvest_sites(tmp_path, {"hc": srv}, registry)
        first = [h for h in web["hits"]["hc"] if h.startswith("/hc/en-us/")]
        # never fetched: the newest lastmods first (December, November, November, October)
        lastmods = {p: f"2025-{(i % 12) + 1:02d}-01" for i, p in enumerate(paths)}
        assert sorted((lastmods[p] for p in first), reverse=True) == sorted(lastmods.values(), reverse=True)[:4]
        for _ in range(4):  # cover the rest (15 pages, 4 a run)
            harvest_again(web["registry"], web["db"], "hc")
        srv.add("/hc/sitemap.xml", sitemap("2026-11-30"), "application/xml")  # the first article changed
        srv.clear()
        harvest_again(web["registry"], web["db"], "hc")
        assert [h for h in srv.targets() if h.startswith("/hc/en-us/")] == [paths[0]]  # the rest: same lastmod
        assert rows(web["db"], "select status from harvest_runs order by id desc limit 1") == [("ok",)]
    finally:
        srv.stop()
