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
