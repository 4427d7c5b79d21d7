"""The lxml reader of plain RSS 2.0 (harvesters/parsers/fastrss.py) stores exactly what
feedparser's path stores, and leaves everything else to feedparser.

Each document is read twice by :func:`harvesters.parsers.feed.parse_feed`, once as a harvest
reads it and once with the fast reader switched off, then both are prepared for storage
(normalize, classify, encode): the stored records must be equal field by field (the raw
record included), and so must the warnings, the feed's title and its link."""

from __future__ import annotations

import random
from pathlib import Path
from unittest import mock

import pytest

import harvesters.parsers.feed as feedmod
from benchmarks.content import rss_feed
from harvesters.parsers.fastrss import parse_plain_rss
from harvesters.parsers.feed import NotAFeed, parse_feed
from pipeline.resource import Batch
from pipeline.store import prepare_batch

ROOT = Path(__file__).resolve().parent.parent
FEED_FILES = sorted(
    p for d in (ROOT / "tests" / "fixtures", ROOT / "data" / "demo" / "site") for p in d.rglob("*")
    if p.suffix in (".rss", ".xml", ".atom", ".rdf")
)
URL = "https://feeds.example.org/blog/feed/"
CONTENT_TYPES = ["application/rss+xml", "application/xml", "text/xml", "text/xml; charset=UTF-8",
                 "application/rss+xml; charset=utf-8", None, "text/html"]


def _stored(body: bytes, content_type: str | None) -> tuple:
    """What a harvest stores of this document: every prepared record, the warnings, the
    feed's title and site; or the refusal."""
    try:
        parsed = parse_feed(body, URL, source_id="s", http_content_type=content_type)
    except NotAFeed as e:
        return ("not a feed", str(e))
    prepared, result = prepare_batch(Batch("s", parsed.resources, url=URL))
    records = {rid: (r.to_dict(), raw, reasons, encoded) for rid, (r, raw, reasons, encoded) in prepared.items()}
    return records, dict(result), parsed.warnings, parsed.title, parsed.link, parsed.version


def _feedparser_only(body: bytes, content_type: str | None) -> tuple:
    with mock.patch.object(feedmod, "parse_plain_rss", lambda *args: None):
        return _stored(body, content_type)


def _same(body: bytes, content_type: str | None = "application/rss+xml") -> bool:
    """Assert both paths store the same; say whether the fast reader read the document."""
    fast = parse_plain_rss(body, feedmod.xml_content_type(content_type)) is not None
    assert _stored(body, content_type) == _feedparser_only(body, content_type)
    return fast


@pytest.mark.parametrize("path", FEED_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_feed_fixture_stores_the_same(path: Path) -> None:
    body = path.read_bytes()
    for content_type in CONTENT_TYPES:
        _same(body, content_type)


def test_the_fixtures_exercise_the_fast_reader() -> None:
    read = {p.name for p in FEED_FILES if parse_plain_rss(p.read_bytes(), "application/rss+xml") is not None}
    assert {"rss2.rss", "hostile.rss", "northwind-ill-blog.rss"} <= read


def test_benchmark_feeds_store_the_same_through_the_fast_reader() -> None:
    for n in range(12):
        assert _same(rss_feed(n))


# -- generated feeds: every element the fast reader knows, in any order, with awkward values --

TEXTS = ["Plain title", "  spaced  ", "Caf\u00e9 &amp; cr\u00e8me", "Caf\u00c3\u00a9 mojibake", "smart \u0093quotes\u0094",
         "&lt;b&gt;escaped&lt;/b&gt; html", "<![CDATA[<p>cdata <b>html</b></p>]]>", "", "Interlibrary loan &amp; ILLiad",
         "\u65e5\u672c\u8a9e\u306e\u984c", "a &#x2014; dash", "&#147;cp1252 refs&#148;", "emoji \U0001F4DA"]
LINKS = ["https://ex.org/a?x=1&amp;y=2", "/relative/post", "http:///triple/slash", "  https://ex.org/b  ",
         "https://ex.org/c?a=1&amp;b;=2", "https://ex.org/d?a=1&amp;amp;b=2", "", "javascript:alert(1)", "https://ex.org/doc.pdf",
         "https://ex.org/caf\u00e9", "mailto:x@example.org"]
DATES = ["Tue, 10 Nov 2026 14:00:00 -0500", "2026-11-10T14:00:00Z", "2026-13-45", "10 Nov 2026", "yesterday", "",
         "Mon, 02 Nov 2026 09:00:00 GMT", "2026-11-02"]
AUTHORS = ["Pat Lender", "pat@example.org (Pat Lender)", "Pat &lt;pat@example.org&gt;", "", "x@y.zz"]


def _element(rng: random.Random, name: str) -> str:
    pick = rng.choice
    if name == "enclosure":
        attrs = [f'url="{pick(LINKS[:4] + ["https://ex.org/ep.mp3"])}"']
        if rng.random() < 0.7:
            attrs.append(f'type="{pick(["audio/mpeg", "AUDIO/MP3", "application/pdf", "image/png", ""])}"')
        if rng.random() < 0.7:
            attrs.append(f'length="{pick(["123", "0", "x", ""])}"')
        rng.shuffle(attrs)
        return f"<enclosure {' '.join(attrs)}/>"
    if name == "guid":
        attr = pick(["", ' isPermaLink="false"', ' isPermaLink="true"', ' isPermaLink="False"'])
        return f"<guid{attr}>{pick(LINKS + ['tag:ex.org,2026:1', 'p=12'])}</guid>"
    if name == "category":
        attr = pick(["", "", ' domain="https://ex.org/cat"'])
        return f"<category{attr}>{pick(['ILL', 'Borrowing', '', ' Copyright ', 'ILL'])}</category>"
    tag, values = {
        "title": ("title", TEXTS), "link": ("link", LINKS), "description": ("description", TEXTS),
        "pubDate": ("pubDate", DATES), "comments": ("comments", LINKS), "creator": ("dc:creator", AUTHORS),
        "encoded": ("content:encoded", TEXTS), "commentRss": ("wfw:commentRss", LINKS),
        "slash": ("slash:comments", ["0", "12", ""]),
    }[name]
    return f"<{tag}>{pick(values)}</{tag}>"


def _generated_feed(rng: random.Random) -> bytes:
    names = ["title", "link", "description", "guid", "pubDate", "comments", "creator", "encoded", "commentRss",
             "slash", "enclosure"]
    items = []
    for _ in range(rng.randint(0, 6)):
        chosen = [n for n in names if rng.random() < 0.6] + ["category"] * rng.randint(0, 3)
        rng.shuffle(chosen)
        items.append("<item>" + "".join(_element(rng, n) for n in chosen) + "</item>")
    channel = [f"<title>{rng.choice(TEXTS)}</title>", f"<link>{rng.choice(LINKS)}</link>",
               "<description>d</description>"]
    if rng.random() < 0.5:
        channel.append(f"<language>{rng.choice(['en-US', 'fr', ''])}</language>")
    if rng.random() < 0.5:
        channel.append('<atom:link href="https://ex.org/feed" rel="self" type="application/rss+xml"/>')
    if rng.random() < 0.3:
        channel.append("<image><url>https://ex.org/i.png</url><title>Logo</title><link>https://ex.org/other</link></image>")
    rng.shuffle(channel)
    declaration = rng.choice(['<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0"?>', ""])
    return (f'{declaration}<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" '
            'xmlns:wfw="http://wellformedweb.org/CommentAPI/" xmlns:slash="http://purl.org/rss/1.0/modules/slash/">'
            f"<channel>{''.join(channel[:2])}{''.join(items)}{''.join(channel[2:])}</channel></rss>").encode()


def test_generated_feeds_store_the_same() -> None:
    rng = random.Random(22)
    fast = 0
    for _ in range(400):
        body = _generated_feed(rng)
        if rng.random() < 0.05:
            body = body.replace(b"</item>", b"<title>A & B</title></item>", 1)  # malformed: feedparser's
        fast += _same(body)
    assert fast > 300  # most are read by the fast reader; the malformed ones by feedparser


# -- what the fast reader leaves to feedparser --

PLAIN = (b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>T</title>'
         b"<link>https://ex.org/</link><item><title>One</title><link>https://ex.org/1</link>"
         b"<description>ILL news</description></item>%s</channel></rss>")

DECLINED = {
    "malformed (unescaped ampersand)": PLAIN % b"<item><title>A & B</title><link>https://ex.org/2</link></item>",
    "unclosed element": PLAIN.replace(b"</channel></rss>", b"") % b"",
    "html markup in a title": PLAIN % b"<item><title>A <b>bold</b> move</title><link>https://ex.org/2</link></item>",
    "xml:base": PLAIN.replace(b"<channel>", b'<channel xml:base="https://ex.org/blog/">') % b"",
    "xml:lang": PLAIN.replace(b"<channel>", b'<channel xml:lang="fr">') % b"",
    "media namespace": PLAIN.replace(b'<rss version="2.0">',
                                     b'<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">')
    % b'<item><link>https://ex.org/v</link><media:thumbnail url="https://ex.org/t.jpg"/></item>',
    "namespace declared on an item": PLAIN % b'<item xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
                                             b"<link>https://ex.org/p</link><itunes:duration>1</itunes:duration></item>",
    "latin-1": PLAIN.replace(b"UTF-8", b"ISO-8859-1").replace(b"ILL news", b"caf\xe9"),
    "doctype with an entity": PLAIN.replace(b"<rss", b'<!DOCTYPE rss [<!ENTITY e "ILL">]><rss') % b"",
    "rss 0.91": PLAIN.replace(b'version="2.0"', b'version="0.91"') % b"",
    "unknown element": PLAIN % b"<item><link>https://ex.org/2</link><source url='https://ex.org'>S</source></item>",
    "a title twice": PLAIN % b"<item><title>A</title><title>B</title><link>https://ex.org/2</link></item>",
    "comment inside an item": PLAIN % b"<item><!-- c --><link>https://ex.org/2</link></item>",
    "author with an address": PLAIN % b"<item><author>a@ex.org (A)</author><link>https://ex.org/2</link></item>",
}


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_what_the_fast_reader_declines_goes_through_feedparser(name: str) -> None:
    body = DECLINED[name]
    assert parse_plain_rss(body, "application/rss+xml") is None
    with mock.patch.object(feedmod, "parse_feed_bytes", wraps=feedmod.parse_feed_bytes) as slow:
        stored = _stored(body, "application/rss+xml")
    assert slow.called, "a document the fast reader declines must be read by feedparser"
    assert stored == _feedparser_only(body, "application/rss+xml")


def test_a_plain_feed_does_not_go_through_feedparser() -> None:
    body = PLAIN % b""
    with mock.patch.object(feedmod, "parse_feed_bytes", side_effect=AssertionError("feedparser was used")):
        parsed = parse_feed(body, URL, source_id="s", http_content_type="application/rss+xml")
    assert [r.url for r in parsed.resources] == ["https://ex.org/1"]


def test_malformed_feed_is_recovered_by_feedparser() -> None:
    """The recovery is feedparser's: remove the fallback and this feed loses its entries."""
    body = DECLINED["malformed (unescaped ampersand)"]
    parsed = parse_feed(body, URL, source_id="s", http_content_type="application/rss+xml")
    assert [r.title for r in parsed.resources] == ["One", "A & B"]
    assert any("malformed feed" in w for w in parsed.warnings)


def test_server_content_type_decides_like_feedparser() -> None:
    """No content type, or a non-XML one, makes feedparser warn or not: both left to it."""
    body = PLAIN % b""
    assert parse_plain_rss(body, None) is None
    assert parse_plain_rss(body, "text/html") is None
    assert parse_plain_rss(body, "application/rss+xml; charset=ISO-8859-1") is None
    assert parse_plain_rss(body, "application/rss+xml; charset=utf-8") is not None
    for content_type in CONTENT_TYPES:
        _same(body, content_type)
