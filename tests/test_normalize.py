"""Normalization (clean text, UTC dates) and URL canonicalization: pure functions."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipeline.normalize import DESCRIPTION_MAX, TITLE_MAX, clean_text, normalize_resource, parse_date
from pipeline.resource import Resource
from pipeline.urls import absolute_url, canonical_url, resource_id

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

# -- clean_text ------------------------------------------------------------------------


def test_clean_text_strips_html_and_scripts():
    html = '<p>Hello <b>ILL</b> <a href="x">world</a></p><script>alert("x")</script><style>p{}</style><!-- c -->'
    assert clean_text(html) == "Hello ILL world"


def test_clean_text_decodes_entities_once_and_keeps_escaped_markup_as_inert_text():
    """Escaped markup is text in the source: every character is kept, decoded once, but a '<'
    that would open a tag becomes '‹' (issue 21, item 4; the property test is in
    tests/reliability/test_plain_text.py)."""
    assert clean_text("Tom &amp; Jerry &ndash; caf&eacute; &#8220;q&#8221; &nbsp;x") == "Tom & Jerry – café “q” x"
    assert clean_text("&lt;b&gt;bold&lt;/b&gt; text") == "\u2039b>bold\u2039/b> text"
    assert clean_text("&lt;script&gt;alert(1)&lt;/script&gt;Tour") == "\u2039script>alert(1)\u2039/script>Tour"
    assert clean_text("if a &lt; b then") == "if a < b then"
    assert clean_text("&amp;lt;script&amp;gt;") == "&lt;script&gt;"  # decoded once, not twice
    assert clean_text("Reply to &lt;nick&gt; by e-mail") == "Reply to \u2039nick> by e-mail"  # not stripped


def test_clean_text_collapses_whitespace_and_drops_control_characters():
    assert clean_text("  a \t\n\n  b\x00c\x07d\u200be\ufeff  ") == "a bcde"
    assert clean_text(None) == "" and clean_text(42) == "42"


def test_clean_text_caps_length_at_a_word_boundary():
    text = " ".join(["interlibrary"] * 100)
    out = clean_text(text, 50)
    assert len(out) <= 50 and out.endswith("…") and "interlibrar…" not in out
    assert clean_text("short", 50) == "short"
    huge = "x" * 1_000_000
    assert len(clean_text(huge, TITLE_MAX)) == TITLE_MAX


# -- parse_date ------------------------------------------------------------------------


@pytest.mark.parametrize("value,expected", [
    ("Tue, 10 Nov 2026 14:00:00 GMT", "2026-11-10T14:00:00Z"),
    ("Tue, 10 Nov 2026 14:00:00 +0000", "2026-11-10T14:00:00Z"),
    ("Tue, 10 Nov 2026 14:00:00 -0500", "2026-11-10T19:00:00Z"),
    ("Tue, 10 Nov 2026 14:00:00 EST", "2026-11-10T19:00:00Z"),
    ("Tue, 10 Nov 2026 14:00:00 PDT", "2026-11-10T21:00:00Z"),
    ("10 Nov 2026 14:00 +0530", "2026-11-10T08:30:00Z"),
    ("2026-11-10T14:00:00Z", "2026-11-10T14:00:00Z"),
    ("2026-11-10T14:00:00+02:00", "2026-11-10T12:00:00Z"),
    ("2026-11-10T14:00:00.123456-08:00", "2026-11-10T22:00:00Z"),
    ("2026-11-10", "2026-11-10T00:00:00Z"),
    ("2026-11-10 09:30", "2026-11-10T09:30:00Z"),
    ("November 10, 2026", "2026-11-10T00:00:00Z"),
])
def test_parse_date_to_utc(value, expected):
    assert parse_date(value, now=NOW) == expected


def test_parse_date_other_types():
    assert parse_date(time.strptime("2026-11-10 14:00", "%Y-%m-%d %H:%M")) == "2026-11-10T14:00:00Z"
    assert parse_date(datetime(2026, 11, 10, 14, tzinfo=timezone(timedelta(hours=-5)))) == "2026-11-10T19:00:00Z"
    assert parse_date(datetime(2026, 11, 10, 14)) == "2026-11-10T14:00:00Z"
    assert parse_date(1_794_000_000) == "2026-11-06T21:20:00Z"


@pytest.mark.parametrize("value", [
    None, "", "   ", "not a date at all", "Tue, 31 Feb 2026 10:00:00 GMT", "2026-13-45", "x" * 500,
    "1800-01-01", "Mon, 01 Jan 2099 00:00:00 GMT", "9999-12-31T00:00:00Z", [], {"a": 1}, 10**20,
])
def test_parse_date_unreadable_far_future_or_ancient_is_none(value):
    assert parse_date(value, now=NOW) is None


def test_parse_date_allows_events_a_year_or_two_ahead():
    assert parse_date("2028-05-01", now=NOW) == "2028-05-01T00:00:00Z"


# -- URLs ------------------------------------------------------------------------------

BASE = "https://demo.example.org/blog/feed/"


@pytest.mark.parametrize("url,expected", [
    ("HTTPS://Demo.EXAMPLE.org/Path/", "https://demo.example.org/Path/"),
    ("https://demo.example.org/a#section-2", "https://demo.example.org/a"),
    ("https://demo.example.org/a?utm_source=x&utm_medium=rss&UTM_Campaign=c&id=7",
     "https://demo.example.org/a?id=7"),
    ("https://demo.example.org/a?fbclid=abc&gclid=d&mc_cid=e", "https://demo.example.org/a"),
    ("https://demo.example.org/a?b=2&a=1", "https://demo.example.org/a?a=1&b=2"),
    ("https://demo.example.org:443/a", "https://demo.example.org/a"),
    ("http://demo.example.org:80/a", "http://demo.example.org/a"),
    ("http://demo.example.org:8080/a", "http://demo.example.org:8080/a"),
    ("https://demo.example.org/a b", "https://demo.example.org/a%20b"),
    ("/2026/11/post/?utm_source=rss#comments", "https://demo.example.org/2026/11/post/"),
    ("post.html", "https://demo.example.org/blog/feed/post.html"),
    ("../about", "https://demo.example.org/blog/about"),
    ("  https://demo.example.org/x  ", "https://demo.example.org/x"),
])
def test_canonical_url(url, expected):
    assert canonical_url(url, BASE) == expected


@pytest.mark.parametrize("url", [
    "javascript:alert(document.cookie)", "JavaScript:alert(1)", "data:text/html,<b>x</b>", "file:///etc/passwd",
    "ftp://demo.example.org/x", "mailto:ill@demo.example.org", "//evil.example.com/x", "\\\\server\\share",
    "https://user:pw@demo.example.org/", "https:///no-host", "", None,
])
def test_canonical_url_rejects_unusable_links(url):
    assert canonical_url(url, BASE) is None


def test_relative_url_without_base_is_rejected():
    assert absolute_url("/a") is None
    assert absolute_url("/a", "https://h.example.org/feed") == "https://h.example.org/a"


def test_a_link_or_base_with_an_unclosed_ipv6_bracket_is_not_usable():
    """urlsplit raises on "http://[bad"; a feed entry, enclosure or page link like it is
    skipped, not a crash of its document."""
    assert absolute_url("http://[bad") is None and absolute_url("http://[bad/x", BASE) is None
    assert absolute_url("page.html", "http://[bad") is None and canonical_url("http://[bad", BASE) is None


def test_resource_id_is_stable_and_from_the_canonical_url():
    a = canonical_url("https://Demo.example.org/a?utm_source=x#top")
    b = canonical_url("https://demo.example.org/a")
    assert a == b and resource_id(a) == resource_id(b) == resource_id("https://demo.example.org/a")
    assert len(resource_id(a)) == 16 and resource_id(a) != resource_id("https://demo.example.org/b")


# -- normalize_resource ----------------------------------------------------------------


def test_normalize_resource():
    r = normalize_resource(Resource(
        url="/post?utm_source=feed#x", title="  <b>Rule</b> of   five ", description="<p>" + "word " * 1000 + "</p>",
        content_type="nonsense", published="Tue, 10 Nov 2026 14:00:00 EST", updated="garbage",
        topics=["copyright", "", "copyright"], thumbnail="/img/t.jpg", author=" <i>Ann</i> ",
    ), base_url="https://Demo.example.org/feed")
    assert r.url == "https://demo.example.org/post"
    assert r.title == "Rule of five"
    assert len(r.description) <= DESCRIPTION_MAX and r.description.endswith("…")
    assert r.content_type == "page"
    assert r.published == "2026-11-10T19:00:00Z" and r.updated is None
    assert r.topics == ["copyright"]
    assert r.thumbnail == "https://demo.example.org/img/t.jpg"
    assert r.author == "Ann"


def test_normalize_resource_without_usable_link_is_dropped_and_untitled_gets_its_url():
    assert normalize_resource(Resource(url="javascript:alert(1)", title="x")) is None
    r = normalize_resource(Resource(url="https://demo.example.org/x", title="  "))
    assert r.title == "https://demo.example.org/x"
