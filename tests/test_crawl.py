"""The crawl kind: `illhub harvest` (a subprocess) against a MindTouch-like help tree, LibGuides
pages and a listing page read with selectors, on loopback (tests/fixtures/crawl/); requests are
counted at the servers. And its pure parts: the listing parser and the start folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harvesters.kinds.crawl import start_folder
from harvesters.parsers.crawl import duration_seconds, parse_listing
from tests.conftest import run_cli
from tests.harvesting import harvest_sites, paths, rows, urls_of
from tests.server import StubServer

FIXTURES = Path(__file__).parent / "fixtures" / "crawl"
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


def mindtouch_server() -> StubServer:
    srv = StubServer().start()
    srv.add("/robots.txt", MINDTOUCH_ROBOTS, "text/plain")
    for path, name in MINDTOUCH_PAGES.items():
        srv.add_file(path, FIXTURES / "mindtouch" / name)
    srv.add("/@api/deki/files/5/getting-started.pdf", b"%PDF-1.4 demo", "application/pdf")
    return srv


def libguides_server() -> StubServer:
    srv = StubServer().start()
    srv.add("/robots.txt", "User-agent: *\nDisallow: /srch.php\nDisallow: /ld.php\n", "text/plain")
    srv.add_file("/c.php?g=123&p=456", FIXTURES / "libguides" / "toolbox.html")
    srv.add_file("/c.php?g=123&p=457", FIXTURES / "libguides" / "glossary.html")
    srv.add_file("/ILL-Resources/glossary", FIXTURES / "libguides" / "glossary.html")
    return srv


def listing_server() -> StubServer:
    srv = StubServer().start()
    srv.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    srv.add_file("/Training/Lakeside_ILL_self-paced_training", FIXTURES / "listing" / "training.html")
    return srv


LISTING = """<table><tbody>
<tr><td>Intro</td><td><a href="/v/1">Watch</a> <a href="/s/1.pdf">Slides</a></td><td>2025-03-04</td></tr>
<tr><td>No link</td><td></td><td></td></tr>
</tbody></table>"""


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
"""


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """One harvest of every crawl source for the module (a subprocess costs a couple of seconds)."""
    servers = {"mt": mindtouch_server(), "mt2": mindtouch_server(), "lg": libguides_server(),
               "listing": listing_server()}
    yield harvest_sites(tmp_path_factory.mktemp("crawl"), servers, registry_text(servers))
    for srv in servers.values():
        srv.stop()


def test_every_crawl_source_succeeds(web):
    assert web["result"].returncode == 0, web["result"].stdout + web["result"].stderr
    status = dict(rows(web["db"], "select source_id, status from harvest_runs"))
    # mt-capped's budget (4) leaves pages for later runs: it says so (issue 16: it used to end `ok`)
    assert status == {"mt-help": "ok", "mt-capped": "warning", "lg-toolbox": "ok", "training-listing": "warning"}, status
    warnings = dict(rows(web["db"], "select source_id, warning from harvest_runs where warning is not null"))
    assert "1 listing item(s) had no link" in warnings["training-listing"]
    assert warnings["mt-capped"].startswith("max_pages (4) reached: 3 more page(s) left for later runs")


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


def test_second_crawl_of_unchanged_pages_keeps_the_cap_and_fetches_each_page_once(web):
    """Unchanged pages are not parsed again (the fetch cache); the links they gave last time
    are replayed through the crawl's own checks, so the cap and the deduplication still hold.
    Issue 16: the budget now rotates. The second run spends it on the pages the first left
    for later (remembered in web_frontier), not on the same four again; the third on the
    pages fetched longest ago."""
    mt2 = web["servers"]["mt2"]

    def again() -> list[str]:
        mt2.clear()
        result = run_cli("harvest", "--registry", str(web["registry"]), "--db", str(web["db"]), "--delay", "0.005",
                         "--quiet", "--source", "mt-capped")
        assert result.returncode == 0, result.stdout + result.stderr
        return [h for h in mt2.targets() if h != "/robots.txt"]

    hits = again()
    assert sorted(hits) == sorted(["/Resource_Sharing/Lakeside_ILL",  # the start page, every run
                                   "/Resource_Sharing/Lakeside_ILL/Borrowing/Borrowing_requests/Advanced_search",
                                   "/Resource_Sharing/Lakeside_ILL/Lending/Lending_workflow?mt-learningpath=lending&ref=menu",
                                   "/Resource_Sharing/Lakeside_ILL/Lending/Pull_slips"])
    status, seen = rows(web["db"], "select status, items_seen from harvest_runs where source_id = 'mt-capped' "
                                   "order by id desc limit 1")[0]
    assert status == "warning" and seen == 4  # the start page seen again, three new pages
    assert len(urls_of(web, "mt-capped")) == 7  # the whole tree (less the excluded page) in two runs
    assert sorted(again()) == sorted(["/Resource_Sharing/Lakeside_ILL", "/Resource_Sharing/Lakeside_ILL/Borrowing",
                                      "/Resource_Sharing/Lakeside_ILL/Lending",
                                      "/Resource_Sharing/Lakeside_ILL/Borrowing/Borrowing_requests"])


def test_robots_txt_holds_for_every_request_that_waited_for_it(tmp_path):
    """Several sources start on one host at once: every request that waited for the host's
    robots.txt is checked against it (not only the first), so disallowed pages get no hit."""
    with StubServer() as srv:
        srv.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
        for n in range(4):
            srv.add_file(f"/private/page-{n}", FIXTURES / "mindtouch" / "internal.html")
            srv.add_file(f"/public/page-{n}", FIXTURES / "mindtouch" / "pull-slips.html")
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


def test_listing_with_default_url_and_xpath_fields():
    resources, warnings = parse_listing(LISTING, "http://127.0.0.1:9/list", {
        "item": "//tbody/tr", "title": "./td[1]", "date": "xpath:./td[3]/text()",
        "links": {"slides": "a[href$='.pdf']::attr(href)"}})
    assert [(r.url, r.title, r.published, r.content_type) for r in resources] == [
        ("http://127.0.0.1:9/v/1", "Intro", "2025-03-04T00:00:00Z", "page")]
    assert resources[0].extra["links"] == {"slides": "http://127.0.0.1:9/s/1.pdf"}
    assert warnings == ["http://127.0.0.1:9/list: 1 listing item(s) had no link and were skipped"]


@pytest.mark.parametrize("text, seconds", [("12:30", 750), ("1:05:00", 3900), ("45 min", 2700), ("1 hr 5 min", 3900),
                                           ("1h05m", 3900), ("90 minutes", 5400), ("soon", None), ("", None)])
def test_duration_seconds(text, seconds):
    assert duration_seconds(text) == seconds


def test_start_folder():
    assert start_folder("https://h/a/b/page.html") == "https://h/a/b/"
    assert start_folder("https://h/Resource_Sharing/Tipasa") == "https://h/Resource_Sharing/Tipasa"
    assert start_folder("https://h/c.php?g=1&p=2") == "https://h/"


# -- rotation and non-page links (issue 16) ----------------------------------------------------

NEWS = ["Courier schedule for the holidays", "New request form", "Rapido pilot results", "Copyright clinic recap",
        "Lending statistics for 2026", "Meet the ILL team", "Scanning station upgrade", "Reciprocal borrowing signup",
        "Shared print retention", "Winter closure dates"]


def news_server() -> StubServer:
    srv = StubServer().start()
    srv.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    posts = "\n".join(f'<li><a href="/news/{i + 1:02d}-{t.lower().replace(" ", "-")}">{t}</a></li>'
                      for i, t in enumerate(NEWS))
    srv.add("/news/", (FIXTURES / "news" / "index.html").read_text(encoding="utf-8").replace("{posts}", posts))
    template = (FIXTURES / "news" / "post.html").read_text(encoding="utf-8")
    for i, t in enumerate(NEWS):
        srv.add(f"/news/{i + 1:02d}-{t.lower().replace(' ', '-')}", template.replace("{title}", t)
                .replace("{n}", str(i + 1)))
    # what the links point at is not a page: served anyway, to show nothing asks for them
    srv.add("/news/assets/courier-van.png", b"\x89PNG\r\n\x1a\n", "image/png")
    srv.add("/news/tools/export-requests.sh", "#!/bin/sh\necho export\n", "text/x-sh")
    srv.add("/news/sitemap.xml", "<urlset/>", "application/xml")
    srv.add("/news/feed/", '<?xml version="1.0"?><rss version="2.0"><channel><title>ILL news</title></channel></rss>',
            "application/rss+xml")
    return srv


def harvest_news(tmp_path, srv: StubServer, max_pages: int) -> dict:
    registry = (f"sources:\n  - {{id: news, name: ILL news, kind: crawl, url: '{srv.base}/news/', max_depth: 1, "
                f"max_pages: {max_pages}}}\n")
    web = harvest_sites(tmp_path, {"news": srv}, registry)
    assert web["result"].returncode == 0, web["result"].stdout + web["result"].stderr
    return web


def test_crawl_skips_non_page_links_and_a_non_html_response_is_not_a_warning(tmp_path):
    srv = news_server()
    try:
        web = harvest_news(tmp_path, srv, 30)
        hits = web["hits"]["news"]
        for never in ("/news/assets/", "/news/tools/", "/news/sitemap.xml"):
            assert not any(h.startswith(never) for h in hits), (never, hits)
        # the feed has no extension: asked for once, found not to be HTML, not followed, no warning
        assert hits.count("/news/feed/") == 1
        assert rows(web["db"], "select status, warning from harvest_runs") == [("ok", None)]
        assert len(urls_of(web, "news")) == 11  # the index and its ten posts
    finally:
        srv.stop()


def test_a_crawl_larger_than_max_pages_is_covered_over_several_runs(tmp_path):
    """12 pages (the index, ten posts, the feed), max_pages 4: the index each run, and three
    pages no run asked for before (the rest is remembered in web_frontier): 4 runs cover them
    all, the slot left over going to a page fetched in the first run."""
    srv = news_server()
    try:
        web = harvest_news(tmp_path, srv, 4)
        runs = [[h for h in web["hits"]["news"] if h != "/robots.txt"]]
        for _ in range(3):
            srv.clear()
            result = run_cli("harvest", "--registry", str(web["registry"]), "--db", str(web["db"]), "--delay",
                             "0.005", "--quiet")
            assert result.returncode == 0, result.stdout + result.stderr
            runs.append([h for h in srv.targets() if h != "/robots.txt"])
        assert all(r[0] == "/news/" and len(r) == 4 for r in runs), runs
        others = [h for r in runs for h in r[1:]]
        assert len(set(others[:9])) == 9 and len(set(others)) == 11  # ten posts and the feed
        assert others[-1] in runs[0]  # the twelfth slot: a page fetched longest ago
        assert runs[0][1:] == ["/news/01-courier-schedule-for-the-holidays", "/news/02-new-request-form",
                               "/news/03-rapido-pilot-results"]  # the links in page order
        statuses = rows(web["db"], "select status, warning from harvest_runs order by id")
        assert [s for s, _ in statuses] == ["warning"] * 4  # the site is larger than the budget, every run
        assert statuses[0][1].startswith("max_pages (4) reached: 8 more page(s) left for later runs")
        assert rows(web["db"], "select count(*) from web_frontier") == [(0,)]
        assert len(urls_of(web, "news")) == 11
    finally:
        srv.stop()
