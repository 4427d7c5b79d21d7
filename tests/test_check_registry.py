"""`illhub check-registry`: one loopback site answering like the real platforms (a feed, a
YouTube channel page and feed, WordPress with an open and a closed API, a Zendesk Help
Center, sitemaps, MindTouch and listing pages, a program page, a Sched calendar) and the
ways they go wrong; every source gets one verdict, failures say what to do, and one dead
host stops nothing."""

from __future__ import annotations

import json
import socket

import pytest

from harvesters.registry_check import SourceCheck
from illhub.registry import parse_registry
from tests.conftest import ROOT, run_cli
from tests.server import StubServer

FIX = ROOT / "tests" / "fixtures"
CHANNEL = "UCdEmOlAkEsIdE0000000001"

LISTING = """
    selectors:
      item: "table.mt-responsive-table tbody tr"
      title: "td:nth-child(1)"
      url: ".//a[contains(., 'Recording')]/@href"
"""


def registry_text(base: str, dead: str) -> str:
    sources = [
        ("news-feed", "feed", f"url: {base}/news/feed.xml"),
        ("news-page-as-feed", "feed", f"url: {base}/news/"),
        ("gone-feed", "feed", f"url: {base}/gone.xml"),
        ("dead-host-feed", "feed", f"url: {dead}/feed.xml"),
        ("channel-handle", "youtube", f"url: {base}/@lakesidersdemo"),
        ("channel-feed", "youtube", f"url: {base}/feeds/videos.xml?channel_id={CHANNEL}"),
        ("not-a-channel", "youtube", f"url: {base}/@gone"),
        ("wp-open", "wordpress", f"url: {base}/wp/"),
        ("wp-closed", "wordpress", f"url: {base}/closed/"),
        ("help-center", "zendesk", f"url: {base}/hc/en-us"),
        ("docs-sitemap", "sitemap", f"url: {base}/sitemaps/docs-1.xml\n    include: ['^{base}/docs/illiad/']"),
        ("robots-sitemap", "sitemap", f"url: {base}/robots.txt"),
        ("sitemap-nothing-wanted", "sitemap", f"url: {base}/sitemaps/docs-copy.xml\n    include: ['/no-such-section/']"),
        ("help-tree", "crawl", f"url: {base}/Resource_Sharing/Lakeside_ILL"),
        ("training-listing", "crawl", f"url: {base}/Training/Lakeside_ILL_self-paced_training\n    max_depth: 0"
                                      + LISTING),
        ("stale-selectors", "crawl", f"url: {base}/Resource_Sharing/Lakeside_ILL_copy\n    max_depth: 0" + LISTING),
        ("program", "conference", f"url: {base}/2020-conference-program\n    year: 2020"),
        ("sched", "ical", f"url: {base}/all.ics"),
    ]
    lines = ["sources:"]
    for sid, kind, rest in sources:
        lines += [f"  - id: {sid}", f"    name: {sid}", f"    kind: {kind}", f"    {rest}"]
    lines += ["  - id: curated", "    name: curated", "    kind: manual", "    entries:",
              "      - url: https://www.copyright.gov/circs/circ21.pdf", "        title: Circular 21"]
    return "\n".join(lines) + "\n"


def serve(srv: StubServer) -> None:
    srv.add_file("/robots.txt", FIX / "sitemap" / "robots.txt", "text/plain")
    srv.add_file("/news/feed.xml", FIX / "feed" / "rss2.rss", "application/rss+xml")
    srv.add_file("/news/", FIX / "check_registry" / "blog-home.html")
    srv.add_file("/@lakesidersdemo", FIX / "check_registry" / "youtube-channel-page.html")
    srv.add_file("/@gone", FIX / "check_registry" / "not-a-channel.html")
    srv.add_file("/feeds/videos.xml", FIX / "youtube" / "youtube-channel.xml", "application/atom+xml")
    srv.add_file("/wp/wp-json/wp/v2/posts", FIX / "wordpress" / "posts.json", "application/json",
                 headers={"X-WP-Total": "3", "X-WP-TotalPages": "3"})
    srv.add("/closed/wp-json/wp/v2/posts", '{"code":"rest_forbidden","message":"Sorry","data":{"status":401}}',
            "application/json", status=401)
    srv.add_file("/closed/feed/", FIX / "wordpress" / "closed-feed-1.xml", "application/rss+xml")
    srv.add_file("/api/v2/help_center/en-us/articles.json", FIX / "zendesk" / "articles.json", "application/json")
    srv.add_file("/sitemaps/docs-1.xml", FIX / "sitemap" / "docs-1.xml", "application/xml")
    srv.add_file("/sitemaps/docs-copy.xml", FIX / "sitemap" / "docs-1.xml", "application/xml")
    srv.add_file("/sitemap_index.xml", FIX / "sitemap" / "sitemap_index.xml", "application/xml")
    srv.add_file("/Resource_Sharing/Lakeside_ILL", FIX / "crawl" / "mindtouch" / "lakeside-ill.html")
    srv.add_file("/Resource_Sharing/Lakeside_ILL_copy", FIX / "crawl" / "mindtouch" / "lakeside-ill.html")
    srv.add_file("/Training/Lakeside_ILL_self-paced_training", FIX / "crawl" / "listing" / "training.html")
    srv.add_file("/2020-conference-program", FIX / "conference" / "nwill-style-program.html")
    srv.add_file("/all.ics", FIX / "ical" / "sched-style.ics", "text/calendar; charset=utf-8")


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    with StubServer() as srv:
        serve(srv)
        path = tmp_path_factory.mktemp("check") / "registry.yaml"
        path.write_text(registry_text(srv.base, closed_port()), encoding="utf-8")
        result = run_cli("check-registry", "--registry", str(path), "--json", "--delay", "0.01", "--timeout", "5")
        hits = srv.targets()
    rows = {r["source"]: r for r in json.loads(result.stdout)} if result.stdout.strip() else {}
    return {"result": result, "rows": rows, "hits": hits, "base": srv.base, "path": path}


def test_every_source_gets_one_verdict_and_a_failure_exits_1(checked):
    result, rows = checked["result"], checked["rows"]
    assert result.returncode == 1, result.stderr
    assert {sid: r["status"] for sid, r in rows.items()} == {
        "news-feed": "ok", "news-page-as-feed": "fail", "gone-feed": "fail", "dead-host-feed": "fail",
        "channel-handle": "ok", "channel-feed": "ok", "not-a-channel": "fail",
        "wp-open": "ok", "wp-closed": "warn", "help-center": "ok",
        "docs-sitemap": "ok", "robots-sitemap": "ok", "sitemap-nothing-wanted": "fail",
        "help-tree": "ok", "training-listing": "ok", "stale-selectors": "fail",
        "program": "ok", "sched": "ok", "curated": "skipped",
    }
    # progress on stderr: a line per source as it finishes
    assert result.stderr.count("] ") >= len(rows) and f"[{len(rows)}/{len(rows)}]" in result.stderr


def test_what_each_ok_check_found(checked):
    rows = checked["rows"]
    assert rows["news-feed"]["detail"].startswith("a feed (") and "entries)" in rows["news-feed"]["detail"]
    assert rows["channel-handle"]["detail"] == f"a channel page: channel {CHANNEL}"
    assert rows["channel-handle"]["action"] == f"optional: set channel_id: {CHANNEL} (saves the page fetch)"
    assert rows["channel-feed"]["detail"].startswith("a YouTube feed")
    assert rows["wp-open"]["detail"] == "the WordPress REST API; 3 posts"
    assert rows["help-center"]["detail"].startswith("the Help Center API")
    assert rows["docs-sitemap"]["detail"] == "a sitemap: 5 URLs, 3 wanted"
    assert rows["robots-sitemap"]["detail"].startswith("a sitemap index of ")
    assert "links to follow" in rows["help-tree"]["detail"]
    assert "selectors matched 3 items" in rows["training-listing"]["detail"]
    assert rows["program"]["detail"].startswith("a program page: ") and "sessions" in rows["program"]["detail"]
    assert rows["sched"]["detail"].startswith("a calendar: ") and "events" in rows["sched"]["detail"]


def test_failures_say_what_to_do(checked):
    rows, base = checked["rows"], checked["base"]
    assert rows["news-page-as-feed"]["action"] == f"the URL answers with a web page that links a feed: set url: " \
                                                  f"{base}/news/feed.xml"
    assert rows["gone-feed"]["http_status"] == 404 and rows["gone-feed"]["action"].startswith("the address is gone")
    assert "connection refused" in rows["dead-host-feed"]["detail"].lower()
    assert rows["dead-host-feed"]["action"].startswith("the site could not be reached")
    assert "no channel feed" in rows["not-a-channel"]["detail"]
    assert rows["not-a-channel"]["action"].startswith("set channel_id")
    assert "none of the 5 URLs listed passes include/exclude" in rows["sitemap-nothing-wanted"]["detail"]
    assert "matched no item" in rows["stale-selectors"]["detail"]
    assert rows["stale-selectors"]["action"].startswith("view the live page's source and rewrite selectors")
    assert "REST API failed" in rows["wp-closed"]["detail"] and "HTTP 401" in rows["wp-closed"]["detail"]
    assert rows["wp-closed"]["action"].startswith("the harvest reads the feed instead")


def test_one_request_per_check(checked):
    hits = checked["hits"]
    for path in ("/news/feed.xml", "/news/", "/@lakesidersdemo", "/feeds/videos.xml", "/all.ics",
                 "/Resource_Sharing/Lakeside_ILL", "/Resource_Sharing/Lakeside_ILL_copy", "/sitemaps/docs-copy.xml",
                 "/2020-conference-program", "/Training/Lakeside_ILL_self-paced_training", "/sitemap_index.xml",
                 "/closed/feed/", "/api/v2/help_center/en-us/articles.json"):
        assert sum(1 for h in hits if h.split("?", 1)[0] == path) == 1, (path, hits)
    # one post asked of the WordPress API, never a page of 50
    wp = [h for h in hits if h.startswith("/wp/wp-json/wp/v2/posts")]
    assert len(wp) == 1 and "per_page=1" in wp[0]
    # robots.txt: once for the host (the robots policy) and once as the robots-sitemap source's own document
    assert hits.count("/robots.txt") <= 2
    # the crawl check follows no link and the sitemap check fetches no listed page
    assert not any(h.startswith("/docs/") for h in hits)


def test_table_lists_failures_first_and_counts(checked):
    result = run_cli("check-registry", "--registry", str(checked["path"]), "--source", "news-feed", "--source",
                     "curated", "--delay", "0.01", "--timeout", "5")
    # the server is gone now: news-feed fails (connection refused), the manual source is skipped
    assert result.returncode == 1
    assert "what to do" in result.stdout and "1 fail, 1 skipped" in result.stdout
    assert result.stdout.index("news-feed") < result.stdout.index("curated")


def test_unknown_source_is_refused(checked):
    result = run_cli("check-registry", "--registry", str(checked["path"]), "--source", "no-such")
    assert result.returncode == 2 and "no source 'no-such'" in result.stderr


def test_a_reader_that_raises_fails_only_its_source(monkeypatch):
    registry = parse_registry({"sources": [{"id": "odd-feed", "name": "odd", "kind": "ical",
                                            "url": "https://example.org/all.ics"}]})
    check = SourceCheck(registry.sources[0])

    def boom(*args, **kwargs):
        raise RuntimeError("unexpected shape")

    from harvesters.kinds import KINDS

    monkeypatch.setattr(KINDS["ical"].handler, "read_check", boom)
    check.read(200, b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", {"Content-Type": "text/calendar"})
    result = check.result()
    assert result.status == "fail" and "RuntimeError: unexpected shape" in result.detail
