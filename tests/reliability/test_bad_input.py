"""Bad input: what a hostile or broken source can send, read by the pure parsers and then
through a whole harvest.

The parser tests run in-process on bytes (fast, exact); the harvest test serves the same
shapes (plus the bodies too large to hand to a parser: hundreds of MiB, a gzip bomb) from
the fault server after a first, good harvest, and checks the run log and that nothing
stored before was lost.
"""

from __future__ import annotations

import sqlite3
import time
import tracemalloc

import pytest

from harvesters.offload import DEFAULT_PARSE_CPU_LIMIT
from harvesters.parsers.feed import NotAFeed, parse_feed
from pipeline.normalize import DESCRIPTION_MAX, TITLE_MAX, normalize_resource, parse_date
from pipeline.resource import Batch
from pipeline.store import open_db, store_batch
from tests.reliability.helpers import feed_source, harvest, items_for, rss, runs, snapshot, write_registry
from tests.server import MiB, StubServer, gzip_bomb, ok, stream

URL = "http://127.0.0.1:9/feed.xml"
TEXT = "Café – naïve “quotes” résumé"
JAPANESE = "図書館間相互貸借のご案内"
CONTROL = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r") + "\x7f"


def one(title: str, link: str = "http://127.0.0.1:9/post", **more: str) -> list[dict[str, str]]:
    return [{"title": title, "link": link, **more}]


def titles(body: bytes, content_type: str | None = None, **kw) -> tuple[list[str], list[str]]:
    parsed = parse_feed(body, URL, http_content_type=content_type, **kw)
    return [normalize_resource(r).title for r in parsed.resources], parsed.warnings


# -- encodings -----------------------------------------------------------------------


def test_declared_utf8_really_cp1252():
    got, warnings = titles(rss(one(TEXT), encoding="cp1252", declared="utf-8"))
    assert got == [TEXT]
    assert any("declared character encoding was wrong" in w and "windows-1252" in w for w in warnings)


def test_declared_utf8_really_shift_jis():
    got, warnings = titles(rss(one(JAPANESE), encoding="shift_jis", declared="utf-8"))
    assert got == [JAPANESE]
    assert any("is not UTF-8" in w and "cp932" in w for w in warnings)


def test_declared_utf8_really_utf16_with_bom():
    body = rss(one(TEXT), encoding="utf-16", declared="utf-8")
    assert body.startswith(b"\xff\xfe")
    got, warnings = titles(body, "application/rss+xml; charset=utf-8")
    assert got == [TEXT] and any("utf-16" in w for w in warnings)


def test_invalid_utf8_bytes_keep_the_rest_of_the_text():
    body = rss(one(TEXT)).replace("naïve".encode(), b"na\xff\xfeve")
    got, warnings = titles(body)
    assert got == ["Café – na\ufffd\ufffdve “quotes” résumé"]
    assert any("2 invalid byte sequence(s)" in w for w in warnings)


def test_nul_and_control_characters_never_stored():
    body = rss(one("x")).replace(b">x<", f">Interlibrary{CONTROL}loan<".encode())
    got, warnings = titles(body)
    assert got == ["Interlibraryloan"] or got == ["Interlibrary loan"]
    assert warnings and "malformed feed" in warnings[0]


# -- malformed and mislabelled -----------------------------------------------------------


def test_malformed_xml_recovers_and_warns():
    body = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
            b"<item><title>One & two <b>bold</title><link>http://127.0.0.1:9/m1</link></item>"
            b"<item><title>Second</title><link>http://127.0.0.1:9/m2</link></item>")  # unescaped &, unclosed tags
    got, warnings = titles(body)
    assert got == ["One & two bold", "Second"]
    assert warnings == ["malformed feed (<unknown>:1:100: not well-formed (invalid token)); recovered 2 entries"]


def test_feed_served_as_text_html_is_read_with_a_warning():
    got, warnings = titles(rss(one(TEXT)), "text/html; charset=utf-8")
    assert got == [TEXT]
    assert any("non-XML content type" in w for w in warnings)


def test_html_where_a_feed_was_expected():
    with pytest.raises(NotAFeed, match="got an HTML page, not a feed"):
        parse_feed(b"<!DOCTYPE html><html><head><title>Blog</title></head><body><p>hi</p></body></html>", URL,
                   http_content_type="text/html")


@pytest.mark.parametrize("value", [
    "Mon, 30 Feb 2026 10:00:00 GMT", "2026-13-45T99:99:99Z", "0000-00-00", "", "   ", "not a date",
    "Fri, 01 Jan 9999 00:00:00 GMT", "2999-01-01T00:00:00Z", "1066-10-14", "99999999999999999999",
])
def test_impossible_empty_and_far_future_dates_are_dropped_not_fatal(value):
    parsed = parse_feed(rss(one("Dated", pubDate=value)), URL)
    assert len(parsed.resources) == 1
    assert parsed.resources[0].published is None
    assert parse_date(value) is None


# -- entity attacks: nothing expands, nothing is fetched or read ------------------------------


CPU_LIMIT = DEFAULT_PARSE_CPU_LIMIT


def _bounded_parse(body: bytes):
    """The parse, the CPU seconds it took and its peak memory. The CPU bound the tests hold it
    to is the one a harvest holds every document to (--parse-cpu-limit's default): a document
    that needs more fails its source, so these must parse well within it."""
    tracemalloc.start()
    start = time.process_time()
    try:
        parsed = parse_feed(body, URL)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return parsed, time.process_time() - start, peak


BILLION_LAUGHS = '<!DOCTYPE rss [\n<!ENTITY lol "lol">\n' + "".join(
    f'<!ENTITY lol{i} "{(f"&lol{i - 1};" if i > 1 else "&lol;") * 10}">\n' for i in range(1, 10)) + "]>\n"


def test_billion_laughs_is_not_expanded():
    body = rss([], doctype=BILLION_LAUGHS, raw_items="<item><title>&lol9;</title><link>http://127.0.0.1:9/b</link></item>")
    parsed, seconds, peak = _bounded_parse(body)
    assert seconds < CPU_LIMIT / 4 and peak < 64 * MiB
    assert all("lollol" not in (r.title + r.description) for r in parsed.resources)


@pytest.mark.parametrize("entity_size", [1000, 100_000])
def test_quadratic_blowup_is_not_expanded(entity_size):
    doctype = f'<!DOCTYPE rss [<!ENTITY a "{"x" * entity_size}">]>\n'
    body = rss([], doctype=doctype, raw_items="<item><title>" + "&a;" * 50_000 + "</title>"
               "<link>http://127.0.0.1:9/q</link></item>")
    parsed, seconds, peak = _bounded_parse(body)
    assert seconds < CPU_LIMIT / 4 and peak < 128 * MiB, (seconds, peak)
    assert all("x" * (entity_size + 1) not in r.title for r in parsed.resources)
    for r in parsed.resources:
        assert len(normalize_resource(r).title) <= TITLE_MAX


def test_xxe_reads_no_file_and_fetches_no_url(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-LOCAL-FILE", encoding="utf-8")
    with StubServer() as canary:
        doctype = (f'<!DOCTYPE rss [<!ENTITY file SYSTEM "file://{secret}">'
                   f'<!ENTITY canary SYSTEM "{canary.url("/canary")}">'
                   f'<!ENTITY % remote SYSTEM "{canary.url("/dtd")}"> %remote;]>\n')
        body = rss([], doctype=doctype, raw_items="<item><title>&file;</title><description>&canary;</description>"
                   "<link>http://127.0.0.1:9/x</link></item>")
        parsed, seconds, _ = _bounded_parse(body)
        assert canary.hits() == []  # zero canary hits
    assert seconds < CPU_LIMIT / 4
    for r in parsed.resources:
        assert "TOP-SECRET" not in repr(r.raw) + r.title + r.description


# -- size ------------------------------------------------------------------------------


def test_ten_megabyte_title_is_capped_quickly():
    huge = "A" * (10 * MiB)
    start = time.monotonic()
    parsed = parse_feed(rss(one(huge, description=huge)), URL)
    r = normalize_resource(parsed.resources[0])
    assert time.monotonic() - start < 10
    assert len(r.title) == TITLE_MAX and len(r.description) == DESCRIPTION_MAX
    assert max(len(v) for v in parsed.resources[0].raw.values() if isinstance(v, str)) <= 100_000


def test_hundred_thousand_entries_stop_at_max_items():
    items = "".join(f"<item><link>http://127.0.0.1:9/e{i}</link></item>" for i in range(100_000))
    body = rss([], raw_items=items)
    start = time.monotonic()
    parsed = parse_feed(body, URL, max_items=250)
    assert time.monotonic() - start < 5  # the document is cut before feedparser reads it
    assert [r.url for r in parsed.resources] == [f"http://127.0.0.1:9/e{i}" for i in range(250)]
    assert "feed has 100000 entries; kept the first 250 (max_items)" in parsed.warnings


# -- links -------------------------------------------------------------------------------

DANGEROUS_LINKS = [
    "javascript:alert(document.cookie)", " JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "vbscript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "file:///etc/passwd", "file://localhost/etc/passwd", "//evil.example/phish", "\\\\evil.example\\share",
    "http://user:pass@127.0.0.1:9/creds", "mailto:ill@example.org",
]


def test_dangerous_links_are_never_stored_as_links():
    items = [{"title": f"Link {i}", "link": link} for i, link in enumerate(DANGEROUS_LINKS)]
    items.append({"title": "Fine", "link": "http://127.0.0.1:9/fine"})
    parsed = parse_feed(rss(items), URL)
    db = open_db(":memory:")
    db["sources"].insert({"id": "links", "name": "links", "kind": "feed"})
    result = store_batch(db, Batch("links", parsed.resources, url=URL))
    stored = [row[0] for row in db.execute("select url from resources")]
    assert stored == ["http://127.0.0.1:9/fine"]
    assert result["new"] == 1
    # the mailto: link is not dangerous, but not a resource either: all but the last are refused
    assert f"{len(DANGEROUS_LINKS)} entries had a link that is not a plain http(s) URL" in parsed.warnings[0]


# -- the same through a harvest -------------------------------------------------------------

CASES = {
    # source id → (phase-two behaviour, expected run status, text the warning or error must contain)
    "malformed": (lambda c: ok(b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>'
                               b"One & two</title><link>" + c.url("/m/1").encode() + b"</link></item>"),
                  "warning", "malformed feed"),
    "served-as-html": (lambda c: ok(rss(one(TEXT, c.url("/h/1"))), "text/html; charset=utf-8"),
                       "warning", "non-XML content type"),
    "html-page": (lambda c: ok("<!DOCTYPE html><html><body><a href='/feed'>feed</a></body></html>", "text/html"),
                  "failed", "got an HTML page, not a feed"),
    "cp1252": (lambda c: ok(rss(one(TEXT, c.url("/c/1")), encoding="cp1252")), "warning", "windows-1252"),
    "shift-jis": (lambda c: ok(rss(one(JAPANESE, c.url("/j/1")), encoding="shift_jis")), "warning", "cp932"),
    "utf16": (lambda c: ok(rss(one(TEXT, c.url("/u/1")), encoding="utf-16")), "warning", "utf-16"),
    "controls": (lambda c: ok(rss(one("x", c.url("/n/1"))).replace(b">x<", f">NUL{CONTROL}here<".encode())),
                 "warning", "malformed feed"),
    "bad-dates": (lambda c: ok(rss([{"title": "d", "link": c.url("/d/1"), "pubDate": "2026-02-30T10:00:00Z"},
                                    {"title": "e", "link": c.url("/d/2"), "pubDate": ""},
                                    {"title": "f", "link": c.url("/d/3"), "pubDate": "Fri, 01 Jan 9999 00:00:00 GMT"}])),
                  "ok", None),
    "entity-bombs": (lambda c: ok(rss([], doctype=BILLION_LAUGHS, raw_items="<item><title>&lol9;</title><link>"
                                      + c.url("/b/1") + "</link></item>")), "warning", "malformed feed"),
    "xxe": (lambda c: ok(rss([], doctype=f'<!DOCTYPE rss [<!ENTITY f SYSTEM "file:///etc/passwd">'
                                         f'<!ENTITY c SYSTEM "{c.canary}">]>\n',
                             raw_items=f"<item><title>&f;</title><description>&c;</description><link>"
                                       f"{c.url('/x/1')}</link></item>")), "warning", "malformed feed"),
    "huge-declared": (lambda c: stream(400 * MiB), "failed", "is larger than the size cap (5 MiB)"),
    "gzip-bomb": (lambda c: gzip_bomb(512 * MiB), "failed", "expands (decompressed) beyond the size cap (5 MiB)"),
    "big-title": (lambda c: ok(rss(one("T" * (4 * MiB), c.url("/t/1")))), "ok", None),
    "many-entries": (lambda c: ok(rss([], raw_items="".join(f"<item><link>{c.url('/e/')}{i}</link></item>"
                                                           for i in range(60_000)))),
                     "warning", "feed has 60000 entries; kept the first 100 (max_items)"),
    "bad-links": (lambda c: ok(rss([{"title": f"L{i}", "link": link} for i, link in enumerate(DANGEROUS_LINKS)]
                                   + one("Fine", c.url("/l/ok")))),
                  "warning", f"{len(DANGEROUS_LINKS)} entries had a link that is not a plain http(s) URL"),
}


class _Ctx:
    def __init__(self, server: StubServer, canary: str):
        self.server, self.canary = server, canary

    def url(self, path: str) -> str:
        return self.server.url(path)


@pytest.fixture(scope="module")
def bad_world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad-input")
    server = StubServer("127.0.0.21").start()
    big = StubServer("127.0.0.22").start()  # the bodies too large to parse, on a host of their own
    canary = StubServer("127.0.0.23").start()
    sources = []
    for sid in CASES:
        host = big if sid in ("huge-declared", "gzip-bomb") else server
        host.route(f"/{sid}", ok(rss(items_for(sid, 2, base=server.url("/old/")))))
        sources.append(feed_source(sid, host.url(f"/{sid}"), max_items=100))
    registry = write_registry(tmp / "registry.yaml", sources)
    db = tmp / "catalog.db"
    first = harvest(registry, db)
    assert first.returncode == 0, first.stdout + first.stderr
    before = {sid: snapshot(db, sid) for sid in CASES}
    ctx = _Ctx(server, canary.url("/canary"))
    for sid, (behaviour, _, _) in CASES.items():
        (big if sid in ("huge-declared", "gzip-bomb") else server).route(f"/{sid}", behaviour(ctx))
    for s in (server, big, canary):
        s.clear()
    second = harvest(registry, db, "--timeout", "10")
    yield {"db": db, "before": before, "second": second, "canary": canary, "big": big, "server": server}
    for s in (server, big, canary):
        s.stop()


@pytest.mark.parametrize("sid", sorted(CASES))
def test_harvest_of_bad_input(bad_world, sid):
    _, expected, text = CASES[sid]
    run = runs(bad_world["db"])[sid]
    assert run["status"] == expected, (run["error"], run["warning"])
    if text:
        assert text in ((run["warning"] or "") + (run["error"] or ""))
    before = bad_world["before"][sid]
    assert len(before) == 2
    now = {row[0]: row for row in snapshot(bad_world["db"], sid)}
    for row in before:  # everything stored before is still there, unchanged
        assert now[row[0]] == row


def test_harvest_of_bad_input_stores_clean_values(bad_world):
    conn = sqlite3.connect(bad_world["db"])
    by_source = {}
    for sid, url, title, published in conn.execute(
            "select source_id, url, title, published from resources where url not like '%/old/%'"):
        by_source.setdefault(sid, []).append((url, title, published))
    assert [t for _, t, _ in by_source["cp1252"]] == [TEXT]
    assert [t for _, t, _ in by_source["shift-jis"]] == [JAPANESE]
    assert [t for _, t, _ in by_source["utf16"]] == [TEXT]
    assert [t for _, t, _ in by_source["controls"]] == ["NULhere"]
    assert [p for _, _, p in by_source["bad-dates"]] == [None, None, None]
    assert len(by_source["many-entries"]) == 100
    assert [len(t) for _, t, _ in by_source["big-title"]] == [TITLE_MAX]
    assert [u for u, _, _ in by_source["bad-links"]] == [bad_world["server"].url("/l/ok")]
    everything = "\n".join(str(v) for row in conn.execute("select * from resources") for v in row)
    everything += "\n".join(str(v) for row in conn.execute("select * from raw_entries") for v in row)
    assert "root:" not in everything and "lollol" not in everything
    assert not any(chr(c) in everything for c in range(0x20) if chr(c) not in "\t\n\r")
    for scheme in ("javascript:", "data:", "file:", "vbscript:"):
        assert conn.execute("select count(*) from resources where lower(url) like ?", [f"%{scheme}%"]).fetchone()[0] == 0


def test_harvest_of_bad_input_is_bounded(bad_world):
    second = bad_world["second"]
    assert bad_world["canary"].hits() == []  # the XXE canary was never fetched
    assert bad_world["big"].sent("/huge-declared") < 32 * MiB
    assert second.max_rss_mb < 300, second.max_rss_mb  # 400 MiB body and a 512 MiB bomb: never held
    assert second.seconds < 30
    assert "Traceback" not in second.stderr
