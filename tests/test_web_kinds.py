"""The web kinds end to end: `illhub harvest` (a subprocess) against platform-like sites on
loopback — a MindTouch help tree, LibGuides pages, a listing page read with selectors, a
WordPress REST API (and a closed one that falls back to the feed), a Zendesk Help Center
API and a sitemap index with gzip sitemaps. Requests are counted at the servers.

One harvest of every source runs once for the module (each harvest is a subprocess that
costs a couple of seconds); the tests below read its catalog and the servers' hit logs.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest

from illhub.loopback import Request
from tests.conftest import run_cli
from tests.server import StubServer

WEB = Path(__file__).parent / "fixtures" / "web"
HTML = "text/html; charset=utf-8"

MINDTOUCH_PAGES = {
    "/Resource_Sharing/Lakeside_ILL": "lakeside-ill.html",
    "/Resource_Sharing/Lakeside_ILL/Borrowing": "borrowing.html",
    "/Resource_Sharing/Lakeside_ILL/Borrowing/Borrowing_requests": "borrowing-requests.html",
    "/Resource_Sharing/Lakeside_ILL/Borrowing/Borrowing_requests/Advanced_search": "advanced.html",
    "/Resource_Sharing/Lakeside_ILL/Borrowing/Copyright_clearance": "copyright.html",
    "/Resource_Sharing/Lakeside_ILL/Lending": "lending.html",
    "/Resource_Sharing/Lakeside_ILL/Lending/Lending_workflow": "lending-workflow.html",
    "/Resource_Sharing/Lakeside_ILL/Lending/Pull_slips": "pull-slips.html",
    "/Resource_Sharing/Lakeside_ILL/Internal_notes": "internal.html",
    "/Resource_Sharing/Lakeside_ILL_Archive": "archive.html",
}
MINDTOUCH_ROBOTS = "User-agent: *\nDisallow: /Special:\nDisallow: /@api/deki/pages/\nDisallow: /Resource_Sharing/Lakeside_ILL/Internal_notes\n"

DOCS_PAGES = {
    "/docs/illiad/getting-started": ("Getting started", "Install ILLiad and sign in for the first time.", "2025-10-01"),
    "/docs/illiad/addons/odyssey": ("The Odyssey addon", "Send and receive articles with the Odyssey addon.", "2025-09-01"),
    "/docs/illiad/web-pages": ("Customizing web pages", "Edit the patron web pages of ILLiad.", "2025-08-01"),
    "/docs/illiad/ncip": ("NCIP with Alma", "Connect ILLiad and Alma with NCIP.", "2025-07-01"),
    "/docs/internal/staff-notes": ("Staff notes", "Disallowed by robots.txt.", "2025-09-02"),
    "/docs/archive/illiad-8-install": ("Installing ILLiad 8", "Excluded by pattern.", "2019-01-01"),
    "/blog/2025/release-party": ("Release party", "Not included.", "2025-10-10"),
}


def mindtouch_server() -> StubServer:
    srv = StubServer().start()
    srv.add("/robots.txt", MINDTOUCH_ROBOTS, "text/plain")
    for path, name in MINDTOUCH_PAGES.items():
        srv.add_file(path, WEB / "mindtouch" / name)
    srv.add("/@api/deki/files/5/getting-started.pdf", b"%PDF-1.4 demo", "application/pdf")
    return srv


def docs_server(lastmod_odyssey: str = "2025-09-01T10:00:00+00:00") -> StubServer:
    srv = StubServer().start()
    set_sitemaps(srv, lastmod_odyssey)
    template = (WEB / "sitemap" / "docs-page.html").read_text(encoding="utf-8")
    for path, (title, description, updated) in DOCS_PAGES.items():
        srv.add(path, template.replace("{title}", title).replace("{description}", description)
                .replace("{updated}", updated).replace("{path}", path))
    return srv


def set_sitemaps(srv: StubServer, lastmod_odyssey: str) -> None:
    d = WEB / "sitemap"
    srv.add_file("/robots.txt", d / "robots.txt", "text/plain")
    srv.add_file("/sitemap_index.xml", d / "sitemap_index.xml", "application/xml")
    docs1 = (d / "docs-1.xml").read_text(encoding="utf-8").replace("2025-09-01T10:00:00+00:00", lastmod_odyssey)
    srv.add("/sitemaps/docs-1.xml.gz", docs1, "application/x-gzip", gzip=True)
    srv.add_file("/sitemaps/docs-2.xml.gz", d / "docs-2.xml", "application/x-gzip", gzip=True)
    srv.add_file("/sitemaps/blog.xml", d / "blog.xml", "application/xml")


def wordpress_server() -> StubServer:
    srv = StubServer().start()
    srv.add("/robots.txt", "User-agent: *\nDisallow: /blog/wp-admin/\n", "text/plain")
    posts = json.loads((WEB / "wordpress" / "posts.json").read_text(encoding="utf-8").replace("{base}", srv.base))
    pages = json.loads((WEB / "wordpress" / "pages.json").read_text(encoding="utf-8").replace("{base}", srv.base))

    def collection(items):
        def handler(req: Request):
            per_page, page = int(req.arg("per_page", "10")), int(req.arg("page", "1"))
            total_pages = max(1, math.ceil(len(items) / per_page))
            if page > total_pages:
                body = {"code": "rest_post_invalid_page_number", "message": "The page number requested is larger "
                        "than the number of pages available.", "data": {"status": 400}}
                return 400, {"Content-Type": "application/json"}, json.dumps(body).encode()
            chunk = items[(page - 1) * per_page: page * per_page]
            return 200, {"Content-Type": "application/json; charset=UTF-8", "X-WP-Total": str(len(items)),
                         "X-WP-TotalPages": str(total_pages)}, json.dumps(chunk).encode()
        return handler

    srv.route("/blog/wp-json/wp/v2/posts", collection(posts))
    srv.route("/blog/wp-json/wp/v2/pages", collection(pages))
    # A site whose REST API needs a login: the feed (and its ?paged=2 archive page) is read instead.
    closed = {"code": "rest_cannot_access", "message": "Only authenticated users can access the REST API.",
              "data": {"status": 401}}
    srv.add("/closed/wp-json/wp/v2/posts", json.dumps(closed), "application/json", status=401)
    srv.add_file("/closed/feed/", WEB / "wordpress" / "closed-feed-1.xml", "application/rss+xml; charset=UTF-8")
    srv.add_file("/closed/feed/?paged=2", WEB / "wordpress" / "closed-feed-2.xml", "application/rss+xml; charset=UTF-8")
    return srv


def zendesk_server() -> StubServer:
    srv = StubServer().start()
    srv.add("/robots.txt", "User-agent: *\nDisallow: /hc/*/search\nDisallow: /access/\n", "text/plain")
    data = json.loads((WEB / "zendesk" / "articles.json").read_text(encoding="utf-8").replace("{base}", srv.base))

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


def libguides_server() -> StubServer:
    srv = StubServer().start()
    srv.add("/robots.txt", "User-agent: *\nDisallow: /srch.php\nDisallow: /ld.php\n", "text/plain")
    srv.add_file("/c.php?g=123&p=456", WEB / "libguides" / "toolbox.html")
    srv.add_file("/c.php?g=123&p=457", WEB / "libguides" / "glossary.html")
    srv.add_file("/ILL-Resources/glossary", WEB / "libguides" / "glossary.html")
    return srv


def listing_server() -> StubServer:
    srv = StubServer().start()
    srv.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    srv.add_file("/Training/Lakeside_ILL_self-paced_training", WEB / "listing" / "training.html")
    return srv


def registry_text(s: dict[str, StubServer]) -> str:
    return f"""
sources:
  - id: mt-help
    name: Lakeside ILL help (MindTouch-like)
    kind: crawl
    url: {s['mt'].base}/Resource_Sharing/Lakeside_ILL
    organization: Lakeside Systems (DEMO)
    max_depth: 2
    documents: true
  - id: mt-capped
    name: Lakeside ILL help, four pages
    kind: crawl
    url: {s['mt2'].base}/Resource_Sharing/Lakeside_ILL
    max_depth: 5
    max_pages: 4
    exclude: ['/Borrowing/Copyright_clearance']
  - id: lg-toolbox
    name: ILL Resources guide (LibGuides-like)
    kind: crawl
    url: {s['lg'].base}/c.php?g=123&p=456
    follow: ['/c\\.php\\?g=123&p=\\d+$']
    max_depth: 3
  - id: training-listing
    name: Self-paced training (listing)
    kind: crawl
    url: {s['listing'].base}/Training/Lakeside_ILL_self-paced_training
    max_depth: 0
    selectors:
      item: "table.mt-responsive-table tbody tr"
      title: "td:nth-child(1)"
      description: "td:nth-child(2)"
      duration: "xpath:./td[3]"
      url: ".//a[contains(., 'Recording')]/@href"
      links:
        recording: ".//a[contains(., 'Recording')]/@href"
        transcript: ".//a[contains(., 'Transcript')]/@href"
        slides: "td:nth-child(4) a[href$='.pptx']::attr(href)"
  - id: wp-blog
    name: Northwind ILL blog (WordPress API)
    kind: wordpress
    url: {s['wp'].base}/blog/
    pages: true
    per_page: 3
  - id: wp-closed
    name: Riverbend notes (WordPress, API closed)
    kind: wordpress
    url: {s['wp'].base}/closed/
  - id: zd-help
    name: ILLiad support (Zendesk-like)
    kind: zendesk
    url: {s['zd'].base}/hc/en-us
    per_page: 2
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
    servers = {"mt": mindtouch_server(), "mt2": mindtouch_server(), "lg": libguides_server(),
               "listing": listing_server(), "wp": wordpress_server(), "zd": zendesk_server(),
               "docs": docs_server(), "docs2": docs_server()}
    tmp = tmp_path_factory.mktemp("web")
    registry = tmp / "registry.yaml"
    registry.write_text(registry_text(servers), encoding="utf-8")
    db = tmp / "catalog.db"
    result = run_cli("harvest", "--registry", str(registry), "--db", str(db), "--delay", "0.005", "--quiet")
    hits = {name: srv.targets() for name, srv in servers.items()}
    yield {"servers": servers, "result": result, "db": db, "registry": registry, "hits": hits}
    for srv in servers.values():
        srv.stop()


def rows(db: Path, sql: str, *args) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def urls_of(web, source_id: str) -> set[str]:
    return {r[0] for r in rows(web["db"], "select url from resources where source_id = ?", source_id)}


def paths(urls: set[str], base: str) -> set[str]:
    return {u.removeprefix(base) for u in urls}


def test_every_web_source_succeeds(web):
    assert web["result"].returncode == 0, web["result"].stdout + web["result"].stderr
    status = dict(rows(web["db"], "select source_id, status from harvest_runs"))
    assert status == {"mt-help": "ok", "mt-capped": "ok", "lg-toolbox": "ok", "training-listing": "warning",
                      "wp-blog": "ok", "wp-closed": "warning", "zd-help": "ok", "docs-sitemap": "ok",
                      "docs-capped": "ok"}, status
    warnings = dict(rows(web["db"], "select source_id, warning from harvest_runs where warning is not null"))
    assert "1 listing item(s) had no link" in warnings["training-listing"]
    assert "rest_cannot_access" in warnings["wp-closed"] and "feed instead" in warnings["wp-closed"]


def test_crawl_mindtouch_tree_depth_robots_and_documents(web):
    base = web["servers"]["mt"].base
    got = paths(urls_of(web, "mt-help"), base)
    assert got == {
        "/Resource_Sharing/Lakeside_ILL",
        "/Resource_Sharing/Lakeside_ILL/Borrowing",
        "/Resource_Sharing/Lakeside_ILL/Lending",
        "/Resource_Sharing/Lakeside_ILL/Borrowing/Borrowing_requests",
        "/Resource_Sharing/Lakeside_ILL/Borrowing/Copyright_clearance",
        "/Resource_Sharing/Lakeside_ILL/Lending/Lending_workflow",  # the canonical URL, not ?mt-learningpath=…
        "/Resource_Sharing/Lakeside_ILL/Lending/Pull_slips",
        # documents: true — same-site PDFs and slides become resources (never fetched)
        "/@api/deki/files/5/getting-started.pdf",
        "/@api/deki/files/9/borrowing-training.pptx",
    }
    hits = web["hits"]["mt"]
    # robots.txt once; every page once; nothing disallowed, deeper than max_depth, outside the start folder,
    # or a document
    assert hits.count("/robots.txt") == 1
    page_hits = [h for h in hits if h != "/robots.txt"]
    assert len(page_hits) == len(set(page_hits)) == 7
    for never in ("/Resource_Sharing/Lakeside_ILL/Internal_notes", "/Special:", "/Resource_Sharing/Lakeside_ILL_Archive",
                  "/Resource_Sharing/Lakeside_ILL/Borrowing/Borrowing_requests/Advanced_search",
                  "/Resource_Sharing/Other_Product", "/@api/"):
        assert not any(h.startswith(never) for h in page_hits), never
    # metadata from the pages themselves
    title, ctype, org, updated, published, lang, excerpt, extra = rows(
        web["db"], "select title, content_type, organization, updated, published, language, excerpt, extra "
        "from resources where url = ?", base + "/Resource_Sharing/Lakeside_ILL/Borrowing/Borrowing_requests")[0]
    assert (title, ctype, org, updated, published, lang) == (
        "Borrowing requests", "documentation", "Lakeside Systems (DEMO)", "2025-10-14T16:00:00Z",
        "2023-02-01T00:00:00Z", "en")
    assert excerpt.startswith("Borrowing requests Borrowing requests are created when a patron asks")
    assert json.loads(extra)["depth"] == 2
    doc = rows(web["db"], "select title, content_type, extra from resources where url like '%borrowing-training.pptx'")[0]
    assert doc[0] == "Borrowing training slides" and doc[1] == "document"
    assert json.loads(doc[2])["linked_from"] == base + "/Resource_Sharing/Lakeside_ILL/Borrowing"


def test_crawl_page_cap_is_exact_and_exclude_is_honoured(web):
    hits = [h for h in web["hits"]["mt2"] if h != "/robots.txt"]
    # breadth first: the start page, its two children, then the first grandchild found
    assert hits[:1] == ["/Resource_Sharing/Lakeside_ILL"]
    assert len(hits) == 4
    assert set(hits) == {"/Resource_Sharing/Lakeside_ILL", "/Resource_Sharing/Lakeside_ILL/Borrowing",
                         "/Resource_Sharing/Lakeside_ILL/Lending",
                         "/Resource_Sharing/Lakeside_ILL/Borrowing/Borrowing_requests"}
    assert len(urls_of(web, "mt-capped")) == 4


def test_crawl_libguides_follow_pattern_canonical_and_last_updated(web):
    base = web["servers"]["lg"].base
    assert paths(urls_of(web, "lg-toolbox"), base) == {"/ILL-Resources/toolbox", "/ILL-Resources/glossary"}
    hits = web["hits"]["lg"]
    assert sorted(h for h in hits if h != "/robots.txt") == ["/c.php?g=123&p=456", "/c.php?g=123&p=457"]
    assert not any(h.startswith(("/srch.php", "/ld.php")) for h in hits)
    title, updated, author, description = rows(
        web["db"], "select title, updated, author, description from resources where url = ?",
        base + "/ILL-Resources/toolbox")[0]
    assert title == "Toolbox - ILL Resources - LibGuides at Hudson Valley Council (DEMO)"
    assert updated == "2025-10-03T10:12:00Z" and author == "Jordan Rivera"
    assert description.startswith("New to interlibrary loan? Start with the glossary")


def test_crawl_listing_selectors_give_one_resource_per_row(web):
    base = web["servers"]["listing"].base
    got = {r[0]: r[1:] for r in rows(web["db"], "select url, title, description, content_type, extra from resources "
                                                "where source_id = 'training-listing'")}
    assert set(got) == {base + "/Training/Lakeside_ILL_self-paced_training",
                        "https://www.youtube.com/watch?v=dEmOvid0201", "https://www.youtube.com/watch?v=dEmOvid0202",
                        "https://vimeo.com/demo/880001"}
    title, description, ctype, extra = got["https://www.youtube.com/watch?v=dEmOvid0201"]
    extra = json.loads(extra)
    assert (title, description, ctype) == ("Borrowing basics", "Create a borrowing request, find lenders and receive "
                                           "the item.", "video")
    assert extra["duration"] == "12:30" and extra["duration_seconds"] == 750
    assert extra["links"] == {"recording": "https://www.youtube.com/watch?v=dEmOvid0201",
                              "transcript": base + "/@api/deki/files/21/borrowing-basics-transcript.pdf",
                              "slides": base + "/@api/deki/files/22/borrowing-basics.pptx"}
    assert json.loads(got["https://www.youtube.com/watch?v=dEmOvid0202"][3])["duration_seconds"] == 3900
    assert json.loads(got["https://vimeo.com/demo/880001"][3])["duration_seconds"] == 2700
    assert web["hits"]["listing"] == ["/robots.txt", "/Training/Lakeside_ILL_self-paced_training"]


def test_wordpress_api_pages_through_every_post_and_page(web):
    base = web["servers"]["wp"].base
    posts = json.loads((WEB / "wordpress" / "posts.json").read_text(encoding="utf-8").replace("{base}", base))
    got = {r[0]: r[1:] for r in rows(web["db"], "select url, title, content_type, author, published, extra "
                                                "from resources where source_id = 'wp-blog'")}
    assert set(got) == {p["link"] for p in posts} | {base + "/blog/about/", base + "/blog/policies/"}
    title, ctype, author, published, extra = got[base + "/blog/2025/08/holiday-shipping-schedule/"]
    assert title == "Holiday shipping schedule – 2025" and ctype == "article" and author == "Ana Lima"
    assert published == "2025-08-30T09:00:00Z"
    assert json.loads(extra)["categories"] == ["News"]
    assert got[base + "/blog/policies/"][:2] == ("Borrowing & lending policies", "page")
    api_hits = [h for h in web["hits"]["wp"] if h.startswith("/blog/wp-json/")]
    # 7 posts at 3 a page: pages 1, 2, 3 (from X-WP-TotalPages), and 1 page of pages; nothing twice
    assert sorted((h.split("?")[0], dict(p.split("=") for p in h.split("?")[1].split("&"))["page"]) for h in api_hits) \
        == [("/blog/wp-json/wp/v2/pages", "1"), ("/blog/wp-json/wp/v2/posts", "1"), ("/blog/wp-json/wp/v2/posts", "2"),
            ("/blog/wp-json/wp/v2/posts", "3")]


def test_wordpress_closed_api_falls_back_to_the_paged_feed(web):
    base = web["servers"]["wp"].base
    assert paths(urls_of(web, "wp-closed"), base) == {
        "/closed/scan-and-deliver/", "/closed/new-courier/", "/closed/summer-hours/", "/closed/odyssey-retired/",
        "/closed/welcome/"}
    closed_hits = [h for h in web["hits"]["wp"] if h.startswith("/closed/")]
    assert closed_hits == ["/closed/wp-json/wp/v2/posts?" + closed_hits[0].split("?", 1)[1], "/closed/feed/",
                           "/closed/feed/?paged=2", "/closed/feed/?paged=3"]


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


def test_second_crawl_of_unchanged_pages_keeps_the_cap_and_fetches_each_page_once(web):
    """Unchanged pages are not parsed again (the fetch cache); the links they gave last time
    are replayed through the crawl's own checks, so the cap and the deduplication still hold."""
    mt2 = web["servers"]["mt2"]
    mt2.clear()
    result = run_cli("harvest", "--registry", str(web["registry"]), "--db", str(web["db"]), "--delay", "0.005",
                     "--quiet", "--source", "mt-capped")
    assert result.returncode == 0, result.stdout + result.stderr
    hits = [h for h in mt2.targets() if h != "/robots.txt"]
    assert sorted(hits) == sorted(["/Resource_Sharing/Lakeside_ILL", "/Resource_Sharing/Lakeside_ILL/Borrowing",
                                   "/Resource_Sharing/Lakeside_ILL/Lending",
                                   "/Resource_Sharing/Lakeside_ILL/Borrowing/Borrowing_requests"])
    status, seen = rows(web["db"], "select status, items_seen from harvest_runs where source_id = 'mt-capped' "
                                   "order by id desc limit 1")[0]
    assert status == "ok" and seen == 4  # every page seen again, none parsed


def test_robots_txt_holds_for_every_request_that_waited_for_it(tmp_path):
    """Several sources start on one host at once: every request that waited for the host's
    robots.txt is checked against it (not only the first), so disallowed pages get no hit."""
    with StubServer() as srv:
        srv.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
        for n in range(4):
            srv.add_file(f"/private/page-{n}", WEB / "mindtouch" / "internal.html")
            srv.add_file(f"/public/page-{n}", WEB / "mindtouch" / "pull-slips.html")
        sources = "".join(
            f"  - {{id: start-{n}, name: Start {n}, kind: crawl, url: '{srv.base}/{where}/page-{n}', max_depth: 0}}\n"
            for n, where in enumerate(["public", "private", "private", "public"]))
        registry = tmp_path / "registry.yaml"
        registry.write_text("sources:\n" + sources, encoding="utf-8")
        result = run_cli("harvest", "--registry", str(registry), "--db", str(tmp_path / "c.db"), "--delay", "0.005",
                         "--quiet")
        assert result.returncode == 1, result.stdout + result.stderr
        assert srv.count("/private/") == 0, srv.targets()
        assert sorted(h for h in srv.targets() if h.startswith("/public/")) == ["/public/page-0", "/public/page-3"]
    status = dict(rows(tmp_path / "c.db", "select source_id, status from harvest_runs"))
    assert status == {"start-0": "ok", "start-1": "failed", "start-2": "failed", "start-3": "ok"}
