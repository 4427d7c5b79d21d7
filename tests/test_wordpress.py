"""The wordpress kind: its parser and URLs, and `illhub harvest` (a subprocess) of a WordPress REST
API paged through every post and page, and of a closed one that falls back to the paged feed
(tests/fixtures/wordpress/), on loopback."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harvesters.parsers.wordpress import APIClosed, collection_url, feed_url, parse_posts
from illhub.loopback import Request
from tests.harvesting import harvest_sites, paths, rows, urls_of
from tests.server import StubServer

FIXTURES = Path(__file__).parent / "fixtures" / "wordpress"


def wordpress_server() -> StubServer:
    srv = StubServer().start()
    srv.add("/robots.txt", "User-agent: *\nDisallow: /blog/wp-admin/\n", "text/plain")
    posts = json.loads((FIXTURES / "posts.json").read_text(encoding="utf-8").replace("{base}", srv.base))
    pages = json.loads((FIXTURES / "pages.json").read_text(encoding="utf-8").replace("{base}", srv.base))

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
    srv.add_file("/closed/feed/", FIXTURES / "closed-feed-1.xml", "application/rss+xml; charset=UTF-8")
    srv.add_file("/closed/feed/?paged=2", FIXTURES / "closed-feed-2.xml", "application/rss+xml; charset=UTF-8")
    return srv


def registry_text(s: dict[str, StubServer]) -> str:
    return f"""
sources:
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
"""


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """One harvest of every WordPress source for the module."""
    servers = {"wp": wordpress_server()}
    yield harvest_sites(tmp_path_factory.mktemp("wordpress"), servers, registry_text(servers))
    for srv in servers.values():
        srv.stop()


def test_every_wordpress_source_succeeds(web):
    assert web["result"].returncode == 0, web["result"].stdout + web["result"].stderr
    status = dict(rows(web["db"], "select source_id, status from harvest_runs"))
    assert status == {"wp-blog": "ok", "wp-closed": "warning"}, status
    warnings = dict(rows(web["db"], "select source_id, warning from harvest_runs where warning is not null"))
    assert "rest_cannot_access" in warnings["wp-closed"] and "feed instead" in warnings["wp-closed"]


def test_wordpress_urls():
    assert collection_url("https://h.example.org/blog/wp-json/wp/v2/", "posts", 2, 50).startswith(
        "https://h.example.org/blog/wp-json/wp/v2/posts?per_page=50&page=2&_embed=author%2Cwp%3Aterm")
    assert feed_url("https://h.example.org/blog") == "https://h.example.org/blog/feed/"
    assert feed_url("https://h.example.org/blog/", 3) == "https://h.example.org/blog/feed/?paged=3"


@pytest.mark.parametrize("status, body", [
    (401, b'{"code":"rest_cannot_access","message":"Only authenticated users"}'),
    (404, b'{"code":"rest_no_route","message":"No route was found"}'),
    (200, b'{"code":"rest_disabled","message":"The REST API is disabled on this site."}'),
    (200, b"<!DOCTYPE html><html><body>Home page</body></html>"),
    (403, b"Forbidden"),
])
def test_wordpress_closed_api_is_recognised(status, body):
    with pytest.raises(APIClosed):
        parse_posts(body, "https://h.example.org/wp-json/wp/v2/posts", status=status)


def test_wordpress_posts_parse():
    body = json.dumps([{"id": 1, "link": "https://h.example.org/p/1/", "title": {"rendered": "A &amp; B"},
                        "excerpt": {"rendered": "<p>Short.</p>"}, "date_gmt": "2025-01-02T03:04:05",
                        "modified_gmt": "2025-02-02T03:04:05", "type": "post"},
                       {"id": 2, "link": "javascript:x"}]).encode()
    parsed = parse_posts(body, "https://h.example.org/wp-json/wp/v2/posts", total_pages_header="4")
    assert parsed.total_pages == 4
    [r] = parsed.resources
    assert (r.url, r.title, r.published, r.updated, r.excerpt) == (
        "https://h.example.org/p/1/", "A &amp; B", "2025-01-02T03:04:05Z", "2025-02-02T03:04:05Z", "Short.")


def test_wordpress_api_pages_through_every_post_and_page(web):
    base = web["servers"]["wp"].base
    posts = json.loads((FIXTURES / "posts.json").read_text(encoding="utf-8").replace("{base}", base))
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


def test_posts_with_an_empty_title_are_titled_from_their_text():
    """Status posts and asides have an empty title.rendered: the first sentence of the excerpt,
    not the URL; a post with no text at all keeps the URL as its title (normalize's fallback)."""
    from pipeline.normalize import normalize_resource

    parsed = parse_posts((FIXTURES / "status-posts.json").read_bytes(), "https://demo-northwind.example.edu/ill/wp-json/wp/v2/posts")
    titles = [normalize_resource(r).title for r in parsed.resources]
    assert titles == ["The request system will be down for maintenance Saturday from 8 to 10 am.",
                      "https://demo-northwind.example.edu/ill/2026/11/29/4102/",
                      "Lending desk hours over the break"]
