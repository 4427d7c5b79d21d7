"""The feed kind: its parser on saved feeds (tests/fixtures/feed/), bytes in, Resource records out."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvesters.parsers.feed import NotAFeed, parse_feed
from pipeline.normalize import normalize_resource

FIXTURES = Path(__file__).parent / "fixtures" / "feed"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def feed(name: str, url: str, ctype: str | None = "application/rss+xml", **kw):
    return parse_feed(fixture(name), url, source_id="s", http_content_type=ctype, **kw)


def normalized(parsed, base):
    return [normalize_resource(r, base_url=base) for r in parsed.resources]


TITLE = "“Rule of five” explained — naïve questions answered"


def test_rss2():
    url = "https://test-valley.example.edu/ill/feed/"
    parsed = feed("rss2.rss", url)
    assert parsed.version == "rss20" and parsed.title == "Test Valley Library — ILL blog"
    assert parsed.warnings == ["1 entries had no link and were skipped"]
    post, pdf, guid_only = normalized(parsed, url)
    assert post.url == "https://test-valley.example.edu/ill/2026/11/rule-of-five/"
    assert post.title == "Rule of five & CONTU, explained"
    assert post.description == "How the suggestion of five works for borrowing requests."
    assert post.published == "2026-11-10T19:00:00Z" and post.author == "Pat Lender"
    assert post.content_type == "article" and post.language == "en-US"
    assert post.extra["tags"] == ["Copyright", "Borrowing"]
    # a relative link is made absolute; a PDF becomes a document; content:encoded stands in for a description
    assert pdf.url == "https://test-valley.example.edu/ill/files/annual-report-2026.pdf"
    assert pdf.content_type == "document" and pdf.description == "Our ILL statistics for the year."
    assert guid_only.url == "https://test-valley.example.edu/ill/only-guid"
    # the raw entry is kept (JSON-friendly) for reprocessing without the network
    assert parsed.resources[0].raw["title"] == "Rule of five & CONTU, explained"


def test_atom():
    url = "https://test-consortium.example.org/news/atom.xml"
    parsed = feed("atom.atom", url, "application/atom+xml")
    assert parsed.version == "atom10" and parsed.warnings == []
    courier, webinar = normalized(parsed, url)
    assert courier.url == "https://test-consortium.example.org/news/2026/courier-december"
    assert courier.title == "Courier schedule for December"
    assert courier.description == "Delivery days change over the holidays."
    assert courier.published == "2026-11-20T09:00:00Z" and courier.updated == "2026-11-21T07:00:00Z"
    assert courier.author == "Sam Courier"
    # the alternate link, not the enclosure; xhtml content as description; updated stands in for published
    assert webinar.url == "https://test-consortium.example.org/news/2026/iso-18626"
    assert webinar.description == "Peer-to-peer interoperability."
    assert webinar.published == "2026-10-01T12:00:00Z"


def test_rdf():
    url = "https://test-state.example.gov/ill/newsletter.rdf"
    parsed = feed("rdf.rdf", url, "application/rdf+xml")
    assert parsed.version == "rss10" and parsed.warnings == []
    nov, octo = normalized(parsed, url)
    assert nov.title == "November: statewide delivery statistics"
    assert nov.published == "2026-11-03T14:00:00Z"
    assert octo.published == "2026-10-02T00:00:00Z" and octo.description == ""


def test_malformed_feed_recovered_with_a_warning():
    parsed = feed("malformed.xml", "https://test-broken.example.org/feed")
    assert any(w.startswith("malformed feed (") and "recovered" in w for w in parsed.warnings)
    [first] = [r for r in parsed.resources if r.url.endswith("/news/1")]
    assert first.title == "First & only good item" and first.published is None


@pytest.mark.parametrize("body,message", [
    (fixture("not-a-feed.html"), "got an HTML page, not a feed"),
    (b"", "got an empty response"),
    (b"   \n", "got an empty response"),
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not an RSS or Atom feed"),
    (b'{"json": true}', "not an RSS or Atom feed"),
])
def test_not_a_feed(body, message):
    with pytest.raises(NotAFeed, match=message):
        parse_feed(body, "https://test.example.org/feed", http_content_type="text/html")


def test_max_items():
    parsed = feed("rss2.rss", "https://test-valley.example.edu/ill/feed/", max_items=1)
    assert len(parsed.resources) == 1
    assert "feed has 4 entries; kept the first 1 (max_items)" in parsed.warnings


def test_cp1252_bytes_in_a_feed_declared_utf8():
    raw = fixture("cp1252-declared-utf8.rss")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the fixture really is broken
    parsed = feed("cp1252-declared-utf8.rss", "https://test-cafe.example.org/feed", "application/rss+xml")
    [r] = parsed.resources
    assert r.title == TITLE and parsed.title == "Café Library ILL News (TEST)"
    assert r.description == "Café staff ’s guide to copyright"
    assert r.published == "2026-11-10T19:00:00Z"  # an RFC 822 'EST' date
    assert any("declared character encoding was wrong" in w for w in parsed.warnings)


def test_iso_8859_1_declared_feed():
    parsed = feed("iso-8859-1.rss", "https://test-cafe.example.org/feed", "application/rss+xml")
    [r] = parsed.resources
    assert r.title == '"Rule of five" explained - naïve questions answered'
    assert parsed.title == "Café Library ILL News (TEST)" and parsed.warnings == []


def test_utf16_with_bom():
    assert fixture("utf16-bom.rss")[:2] in (b"\xff\xfe", b"\xfe\xff")
    parsed = feed("utf16-bom.rss", "https://test-cafe.example.org/feed", "application/rss+xml")
    [r] = parsed.resources
    assert r.title == TITLE and parsed.warnings == []


def test_http_charset_header_overrides_nothing_when_bytes_are_utf8():
    parsed = feed("rss2.rss", "https://test-valley.example.edu/ill/feed/", "application/rss+xml; charset=utf-8")
    assert parsed.title == "Test Valley Library — ILL blog"


def test_rss_items_have_no_invented_update_time():
    parsed = feed("rss2.rss", "https://test-valley.example.edu/ill/feed/")
    assert all(r.updated is None for r in parsed.resources)
    assert parsed.resources[0].published == "2026-11-10T19:00:00Z"


def test_content_type_warnings():
    url = "https://test-valley.example.edu/ill/feed/"
    assert feed("rss2.rss", url, ctype=None).warnings == ["1 entries had no link and were skipped"]
    html = feed("rss2.rss", url, ctype="text/html; charset=utf-8")
    assert any("non-XML content type" in w for w in html.warnings) and len(html.resources) == 3


# -- real-world feeds: bare text/xml, enclosures, title-less entries, JSON Feed -----------------


@pytest.mark.parametrize("ctype", ["text/xml", "text/xml ", "text/rss+xml"])
def test_utf8_feed_served_as_bare_text_xml_is_read_without_a_warning(ctype):
    """Many servers send any XML as text/xml without a charset (RFC 3023: US-ASCII); feed
    readers follow the XML declaration instead, and so does illhub: no warning."""
    parsed = feed("rss2.rss", "https://test-valley.example.edu/ill/feed/", ctype)
    assert parsed.title == "Test Valley Library — ILL blog"
    assert parsed.warnings == ["1 entries had no link and were skipped"]
    latin = feed("iso-8859-1.rss", "https://test-cafe.example.org/feed", ctype)
    assert latin.resources[0].title == '"Rule of five" explained - naïve questions answered' and latin.warnings == []


def test_text_xml_feed_whose_bytes_contradict_its_declaration_is_still_reported():
    parsed = feed("cp1252-declared-utf8.rss", "https://test-cafe.example.org/feed", "text/xml")
    assert parsed.resources[0].title == TITLE
    assert any("declared character encoding was wrong" in w for w in parsed.warnings)


def test_podcast_items_known_only_by_their_enclosure():
    url = "https://feeds.demo-podhost.example.com/between-the-stacks.rss"
    parsed = feed("podcast-enclosures.rss", url)
    got = {r.title: r for r in parsed.resources}
    audio = got["Episode 12: Lending Returnables Across State Lines"]
    assert audio.url == ("https://media.demo-podhost.example.com/between-the-stacks/ep12-lending-returnables.mp3"
                         "?from=rss")
    assert audio.content_type == "video" and audio.extra["media"] == "audio"  # a recording
    assert audio.extra["enclosure"] == {"url": audio.url, "type": "audio/mpeg", "length": 38514221}
    video = got["Episode 11 (video): A Tour of a Shared Print Warehouse"]
    assert (video.content_type, video.extra["media"]) == ("video", "video")
    notes = got["Show notes and transcript, episodes 1–10"]
    assert (notes.content_type, notes.extra["media"]) == ("document", "document")  # by MIME type, no .pdf suffix
    # an entry with a page of its own keeps it; its enclosure is kept beside it
    page = got["Episode 10: Copyright Clinic"]
    assert page.url == "https://stacks-podcast.demo.example.org/episodes/10-copyright-clinic/"
    assert page.content_type == "article" and page.extra["media"] == "audio"
    assert len(parsed.resources) == 4 and parsed.warnings == ["1 entries had no link and were skipped"]  # the trailer


def test_entries_without_a_title_are_titled_from_their_text():
    url = "https://social.demo-libraries.example.org/@ill.rss"
    parsed = feed("mastodon-style.rss", url)
    first, second, image_only = normalized(parsed, url)
    assert first.title == "Holiday courier schedule: no deliveries between Dec 24 and Jan 2."
    assert second.title == ("Our new interlibrary loan request form is live, and it remembers your library card "
                            "number this time!")  # the bare link before it is not a title
    # no text at all: the URL is the only title there is
    assert image_only.title == "https://social.demo-libraries.example.org/@ill/113590000000000000"
    assert parsed.warnings == []


def test_json_feed_1_1():
    url = "https://notes.northwind-demo.example.edu/feed.json"
    parsed = feed("jsonfeed-1.1.json", url, "application/feed+json")
    assert (parsed.version, parsed.title, parsed.link) == (
        "json11", "Northwind ILL Notes (DEMO)", "https://notes.northwind-demo.example.edu/")
    pilot, reminder, code, audio = normalized(parsed, url)
    assert pilot.url == "https://notes.northwind-demo.example.edu/2026/12/03/iso-18626-pilot.html"
    assert pilot.title == "Our ISO 18626 pilot, three months in"
    assert pilot.description == "What worked and what did not in our peer-to-peer pilot."
    assert (pilot.published, pilot.updated) == ("2026-12-03T16:15:00Z", "2026-12-04T14:00:00Z")
    assert pilot.author == "Avery Quinn" and pilot.language == "en-US" and pilot.extra["tags"] == ["ISO 18626",
                                                                                                   "peer-to-peer"]
    assert pilot.thumbnail == "https://notes.northwind-demo.example.edu/images/iso-pilot.png"
    assert reminder.title == "Reminder: article requests placed after Friday noon are filled on Monday."
    assert reminder.author == "Northwind ILL Office"  # the feed's author
    assert code.url == "https://ala-demo.example.org/rusa/stars/ill-code-2026"  # external_url
    assert audio.url == "https://media.northwind-demo.example.edu/audio/scanning-tips.m4a"
    assert audio.content_type == "video" and audio.extra["media"] == "audio"
    assert parsed.warnings == ["1 entries had no link and were skipped"]


def test_json_feed_1_and_json_that_is_not_a_feed():
    parsed = feed("jsonfeed-1.json", "https://log.sharedprint-demo.example.org/feed.json", "application/json")
    [r] = normalized(parsed, "https://log.sharedprint-demo.example.org/feed.json")
    assert parsed.version == "json1" and r.author == "Jordan Rivera" and r.published == "2026-11-12T16:00:00Z"
    with pytest.raises(NotAFeed, match="nor a JSON Feed"):
        parse_feed(b'{"items": []}', "https://x.example.org/feed.json", http_content_type="application/feed+json")
    with pytest.raises(NotAFeed, match="JSON that cannot be read"):
        parse_feed(b'{"version": ', "https://x.example.org/feed.json")
    assert len(feed("jsonfeed-1.1.json", "https://n.example/feed.json", max_items=2).resources) == 2


def test_harvest_reads_text_xml_and_json_feeds(tmp_path):
    """`illhub harvest` over loopback: a UTF-8 feed served as bare text/xml ends `ok` (it used to
    end `warning`: "declared as us-ascii"), a JSON Feed served as application/feed+json is read."""
    from tests.harvesting import harvest_sites, rows
    from tests.server import StubServer

    with StubServer() as srv:
        srv.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
        srv.add("/atom.xml", fixture("atom.atom"), "text/xml")
        srv.add("/feed.json", fixture("jsonfeed-1.json"), "application/feed+json")
        registry = (f"sources:\n  - {{id: plain-xml, name: Atom as text/xml, kind: feed, url: '{srv.base}/atom.xml'}}\n"
                    f"  - {{id: json, name: A JSON Feed, kind: feed, url: '{srv.base}/feed.json'}}\n")
        web = harvest_sites(tmp_path, {"srv": srv}, registry)
    assert web["result"].returncode == 0, web["result"].stdout + web["result"].stderr
    assert sorted(rows(web["db"], "select source_id, status, warning, items_new from harvest_runs")) == [
        ("json", "ok", None, 1), ("plain-xml", "ok", None, 2)]
    assert rows(web["db"], "select title from resources where source_id = 'json'") == [
        ("Retention commitments, explained",)]


def test_atom_text_fields_are_text_and_derived_titles_decoded_once():
    """An Atom type="text" title or summary is text as it stands (its "&lt;" is those four
    characters, its "<nick>" is kept); HTML fields and titles derived from them are decoded
    exactly once."""
    body = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><title type="text">Entities: &amp;lt;b&amp;gt; and &amp;amp;</title>
<summary type="text">Write to &lt;nick&gt; at the desk</summary><link href="https://e.example.org/a"/></entry>
<entry><summary type="html">&lt;p&gt;Tom &amp;amp;amp; Jerry &amp;amp;lt;3 the library, and visit it again soon.&lt;/p&gt;</summary>
<link href="https://e.example.org/b"/></entry></feed>"""
    a, b = [normalize_resource(r) for r in parse_feed(body, "https://e.example.org/feed", source_id="s").resources]
    assert a.title == "Entities: &lt;b&gt; and &amp;"
    assert a.description == "Write to \u2039nick> at the desk"
    assert b.title == b.description == "Tom &amp; Jerry &lt;3 the library, and visit it again soon."
