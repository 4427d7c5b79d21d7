"""Pure parsers of the web kinds: sitemaps, listings, WordPress and Zendesk JSON; and the
registry's validation of the web kinds' fields."""

from __future__ import annotations

import gzip
import json

import pytest

from harvesters.kinds.crawl import start_folder
from harvesters.parsers.crawl import duration_seconds, parse_listing
from harvesters.parsers.sitemap import NotASitemap, parse_sitemap
from harvesters.parsers.wordpress import APIClosed, collection_url, feed_url, parse_posts
from harvesters.parsers.zendesk import articles_url, locale_from_url, parse_articles
from illhub.registry import RegistryError, parse_registry

URLSET = b"""<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc> https://docs.demo.example.org/a </loc><lastmod>2025-10-01</lastmod></url>
<url><loc>/relative/b</loc></url><url><lastmod>2025-01-01</lastmod></url>
<url><loc>javascript:alert(1)</loc></url></urlset>"""


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


LISTING = """<table><tbody>
<tr><td>Intro</td><td><a href="/v/1">Watch</a> <a href="/s/1.pdf">Slides</a></td><td>2025-03-04</td></tr>
<tr><td>No link</td><td></td><td></td></tr>
</tbody></table>"""


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


def test_start_folder():
    assert start_folder("https://h/a/b/page.html") == "https://h/a/b/"
    assert start_folder("https://h/Resource_Sharing/Tipasa") == "https://h/Resource_Sharing/Tipasa"
    assert start_folder("https://h/c.php?g=1&p=2") == "https://h/"


def test_registry_reports_every_web_field_problem_at_once():
    data = {"sources": [
        {"id": "c", "name": "C", "kind": "crawl", "url": "https://h.example.org/", "max_depth": 11,
         "follow": ["(unclosed"], "selectors": {"item": "tr[", "links": {"slides": "./a[@"}}},
        {"id": "s", "name": "S", "kind": "sitemap", "url": "https://h.example.org/sitemap.xml", "max_pages": 0,
         "exclude": ["*.pdf"]},
        {"id": "w", "name": "W", "kind": "wordpress", "url": "https://w.example.org/", "per_page": 500},
        {"id": "z", "name": "Z", "kind": "zendesk", "url": "https://z.example.org/hc/en-us", "locale": "en us"},
        {"id": "z2", "name": "Z2", "kind": "zendesk"},
    ]}
    with pytest.raises(RegistryError) as e:
        parse_registry(data)
    text = "\n".join(e.value.problems)
    for expected in ("source 'c' (#1): field 'max_depth'", "source 'c' (#1): field 'follow'",
                     "is not a valid CSS selector", "links.slides: './a[@' is not a valid XPath selector",
                     "source 's' (#2): field 'max_pages'", "source 's' (#2): field 'exclude': '*.pdf' is not a valid "
                     "regular expression", "source 'w' (#3): field 'per_page'", "source 'z' (#4): field 'locale'",
                     "source 'z2' (#5): field 'url': is required"):
        assert expected in text, expected
    assert len(e.value.problems) == 8
