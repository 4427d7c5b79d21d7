"""`illhub add-source`: discovery against loopback sites shaped like the real platforms, and
a registry that is appended to, or left byte-for-byte untouched."""

from __future__ import annotations

import json
import re
import shutil
import socket
import sqlite3

import pytest
from ruamel.yaml import YAML

from harvesters.discover import NothingHarvestable, apply_probe, discover, section_of
from harvesters.kinds import KINDS
from illhub.add_source import AddSourceError, insert_entry, prepare, render_entry
from illhub.registry import load_registry
from pipeline.taxonomy import default_taxonomy
from pipeline.urls import loose_url_key as url_key
from tests.conftest import ROOT, run_cli
from tests.server import StubServer

FIXTURES_YT = ROOT / "tests" / "fixtures" / "youtube"

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
  <title>Lakeside Resource Sharing Blog</title>
  <link>{base}/blog/</link>
  <description>Interlibrary loan news and copyright tips from the Lakeside consortium</description>
  <item><title>Copyright and the rule of five, explained</title><link>{base}/blog/rule-of-five</link></item>
  <item><title>Fair use questions from the borrowing desk</title><link>{base}/blog/fair-use</link></item>
  <item><title>CONTU reporting at the end of the year</title><link>{base}/blog/contu</link></item>
  <item><title>Holiday closing</title><link>{base}/blog/holiday</link></item>
</channel></rss>"""

PAGE = """<!doctype html><html lang="en"><head><title>{title}</title>{head}</head>
<body><h1>{title}</h1><p>{text}</p><a href="{base}/other">More</a></body></html>"""


def page(title, text="Interlibrary loan resources.", head="", base=""):
    return PAGE.format(title=title, text=text, head=head, base=base)


@pytest.fixture
def site():
    s = StubServer()
    s.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    with s:
        yield s


@pytest.fixture
def registry_file(tmp_path):
    path = tmp_path / "registry.yaml"
    shutil.copy(ROOT / "registry.yaml", path)
    return path


def add(registry_file, url, *args):
    return run_cli("add-source", url, "--registry", str(registry_file), "--delay", "0.01", "--timeout", "5", *args)


def last_source(path):
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))["sources"][-1]


# -- end to end, through the CLI ------------------------------------------------------------

def test_feed_url_is_added_as_feed_keeping_the_file(site, registry_file):
    site.add("/blog/feed.xml", RSS, "application/rss+xml")
    before = registry_file.read_text(encoding="utf-8")
    result = add(registry_file, f"{site.base}/blog/feed.xml")
    assert result.returncode == 0, result.stderr
    after = registry_file.read_text(encoding="utf-8")
    assert after.startswith(before)  # every existing byte, comments included, kept in place
    added = after[len(before):]
    assert added.lstrip("\n").startswith("  # Lakeside Resource Sharing Blog: the URL is a feed (rss20, 4 entries).")
    assert "  - id: lakeside-resource-sharing-blog\n    name: Lakeside Resource Sharing Blog\n    kind: feed\n" in added
    # description: copyright, consortium, news: proposed in a comment, not given to every item of the source
    assert "    # topics: [copyright, committees, news]\n" in added and "\n    topics:" not in added
    assert "topics" not in last_source(registry_file)
    assert added.lstrip("\n") in result.stdout  # the printed entry is the appended one
    entry = last_source(registry_file)
    assert entry["url"] == f"{site.base}/blog/feed.xml"
    assert load_registry(registry_file).get("lakeside-resource-sharing-blog").kind == "feed"
    assert 'topic copyright: keyword "copyright" in description' in result.stderr
    # adding the same URL again is refused before any request, and changes nothing
    hits = len(site.targets())
    again = add(registry_file, f"{site.base}/blog/feed.xml/")
    assert again.returncode == 2 and "already harvests" in again.stderr and "lakeside-resource-sharing-blog" in again.stderr
    assert registry_file.read_text(encoding="utf-8") == after and len(site.targets()) == hits


BROAD_RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
  <title>State Library of Testland News</title>
  <link>{base}/news/</link>
  <description>What is happening at the State Library</description>
  <item><title>Summer reading kicks off with a parade</title><link>{base}/news/summer</link></item>
  <item><title>New statewide interlibrary loan courier schedule</title><link>{base}/news/courier</link></item>
  <item><title>Genealogy open house in the reading room</title><link>{base}/news/genealogy</link></item>
  <item><title>Our building closes early on Friday</title><link>{base}/news/closing</link></item>
  <item><title>Tipasa training for member libraries</title><link>{base}/news/tipasa</link></item>
</channel></rss>"""


def test_a_feed_mostly_about_other_things_keeps_only_items_on_topic(site, registry_file):
    """A state library's news feed, three of five items about nothing ILL: the entry is
    proposed with on_topic_only, and its comment says why; a harvest then keeps the two."""
    site.add("/news/feed.xml", BROAD_RSS, "application/rss+xml")
    result = add(registry_file, f"{site.base}/news/feed.xml", "--id", "testland-news")
    assert result.returncode == 0, result.stderr
    assert last_source(registry_file)["on_topic_only"] is True
    assert "3 of the 5 items sampled are about nothing in the vocabulary" in " ".join(
        line.strip("# ") for line in result.stdout.splitlines())
    db = registry_file.parent / "c.db"
    harvest = run_cli("harvest", "--registry", str(registry_file), "--db", str(db), "--source", "testland-news",
                      "--allow-private-network", "--delay", "0.01", "--quiet")
    assert harvest.returncode == 0, harvest.stderr
    titles = sorted(r[0] for r in sqlite3.connect(db).execute("select title from resources"))
    assert titles == ["New statewide interlibrary loan courier schedule", "Tipasa training for member libraries"]


def test_a_feed_on_topic_is_added_whole(site, registry_file):
    site.add("/blog/feed.xml", RSS, "application/rss+xml")  # one of four items off topic
    assert add(registry_file, f"{site.base}/blog/feed.xml").returncode == 0
    assert "on_topic_only" not in last_source(registry_file)


def test_html_page_with_alternate_feed_link(site, registry_file):
    head = ('<meta property="og:site_name" content="Lakeside Library Consortium">'
            '<meta name="description" content="Resource sharing for the Lakeside libraries.">'
            '<link rel="alternate" type="application/rss+xml" title="Comments Feed" href="/blog/comments/feed/">'
            '<link rel="alternate" type="application/rss+xml" title="Lakeside blog" href="/blog/feed.xml">')
    site.add("/blog/", page("Lakeside blog", head=head))
    site.add("/blog/feed.xml", RSS, "application/rss+xml")
    result = add(registry_file, f"{site.base}/blog/", "--id", "lakeside-blog", "--topics", "lending,news")
    assert result.returncode == 0, result.stderr
    entry = last_source(registry_file)
    assert entry == {"id": "lakeside-blog", "name": "Lakeside Library Consortium: Lakeside blog", "kind": "feed",
                     "url": f"{site.base}/blog/feed.xml", "organization": "Lakeside Library Consortium",
                     "topics": ["lending", "news"]}
    assert "the page links its feed (Lakeside blog) (4 entries)" in " ".join(result.stdout.replace("#", "").split())
    assert "/blog/comments/feed/" not in site.targets()  # the comments feed is never considered


def test_wordpress_site(site, registry_file):
    head = ('<link rel="https://api.w.org/" href="{base}/next/wp-json/">'
            '<meta name="generator" content="WordPress 6.6.2">'
            '<link rel="alternate" type="application/rss+xml" title="Feed" href="{base}/next/feed/">')
    site.add("/next/", page("OCLC Next-like blog", head=head, base=site.base))
    site.add("/next/wp-json/wp/v2/posts?per_page=1", json.dumps([{"id": 1, "title": {"rendered": "Hello"}}]),
             "application/json", headers={"X-WP-Total": "212", "X-WP-TotalPages": "212"})
    before = registry_file.read_bytes()
    result = add(registry_file, f"{site.base}/next/")
    if "wordpress" in KINDS:
        assert result.returncode == 0, result.stderr
        entry = last_source(registry_file)
        assert entry["kind"] == "wordpress" and entry["url"] == f"{site.base}/next/"
        assert "212 posts" in " ".join(result.stdout.replace("#", "").split())
    else:  # the wordpress kind has not landed: a clear refusal, and nothing written
        assert result.returncode == 2
        assert "proposes kind 'wordpress'" in result.stderr and "has no 'wordpress' kind yet" in result.stderr
        assert "--kind" in result.stderr and "Nothing was written" in result.stderr
        assert registry_file.read_bytes() == before
    assert "/next/wp-json/wp/v2/posts?per_page=1" in site.targets()


def test_zendesk_help_center(site, registry_file):
    head = '<script src="https://static.zdassets.com/hc/assets/hc_enduser.js"></script>'
    site.add("/hc/en-us", page("Atlas-like Support", head=head))
    site.add("/api/v2/help_center/en-us/articles.json?per_page=1",
             json.dumps({"articles": [{"id": 1}], "count": 57, "next_page": None}), "application/json")
    before = registry_file.read_bytes()
    result = add(registry_file, f"{site.base}/hc/en-us", "--dry-run")
    assert "/api/v2/help_center/en-us/articles.json?per_page=1" in site.targets()
    if "zendesk" in KINDS:
        assert result.returncode == 0, result.stderr
        assert "kind: zendesk" in result.stdout and "locale: en-us" in result.stdout
        assert "57 public articles" in " ".join(result.stdout.replace("#", "").split())
        assert "dry run" in result.stderr
    else:
        assert result.returncode == 2 and "has no 'zendesk' kind yet" in result.stderr
    assert registry_file.read_bytes() == before  # --dry-run (or a refusal) never writes


def test_sitemap_from_robots_txt(site, registry_file):
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\nSitemap: {base}/sitemap.xml\n", "text/plain")
    site.add("/docs/illiad/", page("ILLiad documentation"))
    site.add("/sitemap.xml", '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             "<url><loc>{base}/docs/illiad/addons</loc></url></urlset>", "application/xml")
    result = add(registry_file, f"{site.base}/docs/illiad/", "--dry-run")
    assert "/sitemap.xml" in site.targets()
    if "sitemap" in KINDS:
        assert result.returncode == 0, result.stderr
        entry = YAML(typ="safe").load("sources:\n" + result.stdout)["sources"][0]
        assert entry["kind"] == "sitemap" and entry["url"] == f"{site.base}/sitemap.xml"
        assert entry["include"] == ["^" + re.escape(f"{site.base}/docs/illiad/")]
    else:
        assert result.returncode == 2 and "has no 'sitemap' kind yet" in result.stderr


def test_plain_page_is_crawled(site, registry_file):
    site.add("/guides/ill-basics", page("Interlibrary loan basics", text="Borrowing 101 for new staff."))
    before = registry_file.read_bytes()
    result = add(registry_file, f"{site.base}/guides/ill-basics")
    assert "/robots.txt" in site.targets()  # looked for a sitemap first
    if "crawl" in KINDS:
        assert result.returncode == 0, result.stderr
        entry = last_source(registry_file)
        assert entry["kind"] == "crawl" and entry["url"] == f"{site.base}/guides/ill-basics"
        assert "topics" not in entry and "    # topics: [basics" in registry_file.read_text(encoding="utf-8")
    else:
        assert result.returncode == 2 and "has no 'crawl' kind yet" in result.stderr
        assert registry_file.read_bytes() == before


def test_youtube_handle_page(demo_server, registry_file):
    result = add(registry_file, f"{demo_server.base}/@prairiestatelibrarydemo", "--id", "prairie-youtube")
    assert result.returncode == 0, result.stderr
    entry = last_source(registry_file)
    assert entry["kind"] == "youtube"
    assert entry["url"] == f"{demo_server.base}/feeds/videos.xml?channel_id=UCdemoPrairieStateLib001"
    assert load_registry(registry_file).get("prairie-youtube").kind == "youtube"


def test_a_youtube_shaped_feed_served_elsewhere_is_added_as_a_feed(site, registry_file):
    """A channel's feed copied to another path (a mirror, a feed proxy): the youtube kind only
    takes YouTube's /feeds/videos.xml, so it is proposed as a feed, and the entry validates (it
    was proposed as youtube and then refused, with advice that could not fix it)."""
    feed = (FIXTURES_YT / "youtube-channel.xml").read_text(encoding="utf-8")
    site.add("/mirror/statelibrary.xml", feed, "application/atom+xml")
    result = add(registry_file, f"{site.base}/mirror/statelibrary.xml", "--id", "statelibrary-videos")
    assert result.returncode == 0, result.stderr
    assert last_source(registry_file)["kind"] == "feed"


def test_a_url_the_chosen_kind_refuses_is_answered_with_what_fixes_it(site, registry_file):
    """--kind youtube for a blog's feed: the entry cannot validate, and the message says what
    can fix a URL (another kind or another URL), not --id or --name."""
    site.add("/blog/feed.xml", RSS, "application/rss+xml")
    before = registry_file.read_text(encoding="utf-8")
    result = add(registry_file, f"{site.base}/blog/feed.xml", "--kind", "youtube")
    assert result.returncode == 2, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    assert "field 'url'" in said and "Fix it with --kind (another kind takes this URL) or another URL" in said
    assert registry_file.read_text(encoding="utf-8") == before


def test_unreachable_and_failing_urls_leave_the_registry_untouched(site, registry_file):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    before = registry_file.read_bytes()
    result = add(registry_file, f"http://127.0.0.1:{dead_port}/feed/")
    assert result.returncode == 1
    assert result.stderr.count("\n") <= 3 and "could not add" in result.stderr
    assert "unreachable" in result.stderr or "refused" in result.stderr
    assert "Nothing was written" in result.stderr
    assert registry_file.read_bytes() == before
    # a page that is neither HTML nor a feed
    site.add("/report.pdf", b"%PDF-1.7 ...", "application/pdf")
    pdf = add(registry_file, f"{site.base}/report.pdf")
    assert pdf.returncode == 1 and "neither a web page nor a feed (it serves application/pdf)" in pdf.stderr
    assert registry_file.read_bytes() == before


# -- the pure parts ---------------------------------------------------------------------------

def test_discover_pure_feed_and_topics():
    body = RSS.replace("{base}", "https://lakeside.example.org").encode()
    p = discover(body, "https://lakeside.example.org/blog/feed.xml", {b"Content-Type": [b"application/rss+xml"]},
                 taxonomy=default_taxonomy())
    assert p.kind == "feed" and p.fields == {"url": "https://lakeside.example.org/blog/feed.xml"}
    assert p.topics == ["copyright", "committees", "news"]  # from the description (and 3 of 4 items: copyright)
    assert p.topic_reasons["copyright"] == 'keyword "copyright" in description'


def test_a_third_of_the_items_off_topic_proposes_on_topic_only():
    """A state library's channel, 3 of 7 videos on ILL: proposed (at a half it was missed); an
    ILL blog with one holiday notice in four is not."""
    from harvesters.discover import Proposal

    channel = Proposal(url="https://www.youtube.com/@statelibrary", items=[
        "Summer reading kickoff", "Census records for family historians", "Statewide courier schedule for ILL",
        "Tipasa training webinar for member libraries", "Our new interlibrary loan request form",
        "Building closed for Independence Day", "Storytime with the bookmobile"])
    channel.guess_topics(default_taxonomy())
    assert channel.off_topic_items >= 3 and channel.mostly_off_topic
    blog = Proposal(url="https://lakeside.example.org/blog/feed.xml", items=[
        "Copyright and the rule of five, explained", "Fair use questions from the borrowing desk",
        "CONTU reporting at the end of the year", "Holiday closing"])
    blog.guess_topics(default_taxonomy())
    assert blog.off_topic_items == 1 and not blog.mostly_off_topic


def test_discover_pure_probe_sequence_falls_back():
    html = page("Help", head='<link rel="alternate" type="application/atom+xml" href="/atom.xml">').encode()
    p = discover(html, "https://help.example.org/Resource_Sharing/Tipasa", {"Content-Type": "text/html"})
    assert [c.kind for c in p.candidates] == ["feed", "sitemap", "crawl"]
    assert p.next_probe().probe == "https://help.example.org/atom.xml"
    apply_probe(p, 200, b"<html>an error page</html>", {"Content-Type": "text/html"})
    assert p.next_probe().probe == "https://help.example.org/robots.txt"
    apply_probe(p, 200, b"User-agent: *\nSitemap: https://help.example.org/sitemap.xml\n"
                        b"Sitemap: https://elsewhere.example.com/sitemap.xml\n")
    assert p.next_probe().probe == "https://help.example.org/sitemap.xml"
    apply_probe(p, None, b"", error="timed out")
    assert p.kind == "crawl" and p.fields == {"url": "https://help.example.org/Resource_Sharing/Tipasa"}
    assert any("not an RSS or Atom feed" in t for t in p.tried) and any("timed out" in t for t in p.tried)


def test_discover_pure_forced_kind_and_gzip_sitemap():
    import gzip

    html = page("Docs").encode()
    p = discover(html, "https://docs.example.org/docs/illiad/", {"Content-Type": "text/html"})
    p.restrict("sitemap")
    apply_probe(p, 200, b"Sitemap: https://docs.example.org/sitemap.xml.gz\n")
    apply_probe(p, 200, gzip.compress(b'<?xml version="1.0"?><sitemapindex></sitemapindex>'))
    assert p.kind == "sitemap"
    assert p.fields == {"url": "https://docs.example.org/sitemap.xml.gz",
                        "include": [r"^https://docs\.example\.org/docs/illiad/"]}
    assert "sitemap index" in p.evidence
    forced = discover(html, "https://docs.example.org/docs/illiad/", {"Content-Type": "text/html"})
    forced.restrict("wordpress")
    assert forced.next_probe() is None and forced.kind == "wordpress"
    assert "not confirmed" in forced.evidence


def test_discover_refuses_empty_and_binary():
    with pytest.raises(NothingHarvestable, match="empty page"):
        discover(b"<html><head><title></title></head><body></body></html>", "https://e.org/", {})
    with pytest.raises(NothingHarvestable, match="image/png"):
        discover(b"\x89PNG...", "https://e.org/logo.png", {"Content-Type": "image/png"})


def test_section_and_url_key():
    assert section_of("https://h.org/a/b/page.html") == "https://h.org/a/b/"
    assert section_of("https://h.org/Resource_Sharing/Tipasa") == "https://h.org/Resource_Sharing/Tipasa"
    assert section_of("https://h.org") == "https://h.org/"
    assert url_key("https://www.Example.org/feed/") == url_key("http://example.org/feed")


REG_WITH_DEFAULTS_LAST = """\
# top comment
sources:
    # indented four
    - id: one
      name: One
      kind: feed
      url: https://one.example.org/feed   # trailing comment

# defaults come last here
defaults:
  schedule: weekly
"""


def test_insert_entry_before_a_later_key_keeps_every_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(REG_WITH_DEFAULTS_LAST, encoding="utf-8")
    from harvesters.discover import Candidate, Proposal

    p = Proposal(url="https://two.example.org/feed", name="Two", topics=["news"])
    p.accept(Candidate("feed", {"url": "https://two.example.org/feed"}, "the URL is a feed"))
    entry, text = prepare(path, p)
    assert text.startswith(REG_WITH_DEFAULTS_LAST.split("\n# defaults")[0])
    assert "    # Two: the URL is a feed." in text and "    - id: two\n      name: Two\n" in text
    assert text.endswith("# defaults come last here\ndefaults:\n  schedule: weekly\n")
    data = YAML(typ="safe").load(text)
    assert [s["id"] for s in data["sources"]] == ["one", "two"] and data["defaults"] == {"schedule": "weekly"}
    assert path.read_text(encoding="utf-8") == REG_WITH_DEFAULTS_LAST  # prepare never writes


def test_insert_into_an_empty_sources_list():
    text = "defaults:\n  schedule: nightly\nsources: []\n"
    out = insert_entry(text, {"id": "x", "name": "X", "kind": "feed", "url": "https://x.org/feed"}, ["X"])
    assert YAML(typ="safe").load(out)["sources"][0]["id"] == "x"
    assert out.startswith("defaults:\n  schedule: nightly\nsources:\n  # X\n  - id: x\n")


def test_render_entry_quotes_what_needs_quoting():
    block = render_entry({"id": "a", "name": "RUSA: STARS # news", "kind": "feed", "url": "https://a.org/?a=1#x",
                          "topics": ["news"]}, ["what it is"])
    data = YAML(typ="safe").load("sources:\n" + block)
    assert data["sources"][0]["name"] == "RUSA: STARS # news" and data["sources"][0]["topics"] == ["news"]


def test_prepare_refuses_duplicates_by_normalized_url(tmp_path):
    path = tmp_path / "r.yaml"
    shutil.copy(ROOT / "registry.yaml", path)
    from harvesters.discover import Candidate, Proposal

    p = Proposal(url="http://www.hangingtogether.org/feed", name="HT")
    p.accept(Candidate("feed", {"url": "http://www.hangingtogether.org/feed"}, "feed"))
    with pytest.raises(AddSourceError, match="'hanging-together' .* already harvests"):
        prepare(path, p)
    assert url_key("https://hangingtogether.org/feed/") == "hangingtogether.org/feed"
    # a duplicate id, and a topic the taxonomy does not have, are refused the same way
    p2 = Proposal(url="https://new.example.org/feed", name="New")
    p2.accept(Candidate("feed", {"url": "https://new.example.org/feed"}, "feed"))
    with pytest.raises(AddSourceError, match="already has a source with id 'hanging-together'"):
        prepare(path, p2, source_id="hanging-together")
    with pytest.raises(AddSourceError, match="'gardening' is not a topic in data/taxonomy.yaml"):
        prepare(path, p2, topics=["copyright", "gardening"])
    with pytest.raises(AddSourceError, match="--id 'Bad Id' is not a slug"):
        prepare(path, p2, source_id="Bad Id")
    assert path.read_bytes() == (ROOT / "registry.yaml").read_bytes()


def test_suggested_next_command_works_as_given(site, tmp_path):
    """Outside the tests' loopback mode, a loopback site needs --allow-private-network: the
    command add-source suggests says so (and names the registry), and runs as printed."""
    import shlex

    site.add("/blog/feed.xml", RSS, "application/rss+xml")
    registry = tmp_path / "my registry.yaml"
    registry.write_text("sources: []\n", encoding="utf-8")
    env = {"ILLHUB_NETWORK": ""}
    refused = run_cli("add-source", f"{site.base}/blog/feed.xml", "--registry", str(registry), env=env)
    assert refused.returncode == 1 and "--allow-private-network" in refused.stderr
    result = run_cli("add-source", f"{site.base}/blog/feed.xml", "--registry", str(registry), "--id", "lakeside",
                     "--allow-private-network", "--delay", "0.01", env=env)
    assert result.returncode == 0, result.stderr
    suggested = result.stderr.rsplit("try it with: ", 1)[1].strip()
    assert suggested == f"illhub harvest --source lakeside --registry '{registry}' --allow-private-network"
    words = shlex.split(suggested)
    assert words[0] == "illhub"
    done = run_cli(*words[1:], "--db", str(tmp_path / "c.db"), "--quiet", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lakeside" in done.stdout and "ok" in done.stdout
