"""The shortcuts of the feed path give exactly what the general code gives: canonical URLs of
the common kind (pipeline.urls._canonical_plain) against w3lib's canonicalization, simple
markup against the HTML parser, JSON encoded once set up against json.dumps, and the registry
and the taxonomy read through libyaml's events (pipeline.safeyaml) against ruamel.yaml alone."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import pipeline.urls as urls

FIXTURES = Path(__file__).parent / "fixtures"

def _slow(url: str, base: str | None = None) -> str | None:
    """_canonical without its shortcut."""
    plain, urls._canonical_plain = urls._canonical_plain, lambda u: None
    try:
        return urls._canonical(url, base)
    finally:
        urls._canonical_plain = plain


def _same(url: str, base: str | None = None) -> bool:
    """Assert the shortcut agrees with w3lib; say whether it read the URL."""
    assert urls._canonical(url, base) == _slow(url, base), url
    absolute = urls.absolute_url(url, base)
    return absolute is not None and urls._canonical_plain(absolute) is not None


HOSTS = ["example.org", "Example.ORG", "bench0.example.org", "a-b.c-d.example", "xn--bcher-kva.example", "ab--cd.org",
         "127.0.0.1", "0x7f.1", "host.123", "host.0x1f", "a..b", "-a.org", "a-.org", "a" * 64 + ".org", "www.example.org.",
         "b\u00fccher.de", "example.org:80", "example.org:443", "example.org:8080", "example.org:080", "example.org:99999",
         "user@example.org", "[::1]", "EXAMPLE.org:8000", "sub.example.co.uk"]
PATH_PIECES = ["", "/", "/a", "/posts/0/", "/a/./b", "/a/../b", "/.", "/..", "/a/.b", "/%7Euser", "/a%2fb", "/caf\u00e9",
               "/a;b", "/a;b/c", "/a b", "/a|b", "/a[b]", "//x", "/a:b@c", "/(x)!$&'*+,=", "/~_-.", "/A/B", "/index.html",
               "/a\\b", "/a\tb"]
QUERY_PIECES = ["", "?", "?a=1", "?b=2&a=1", "?a=1&a=0", "?utm_source=rss", "?id=3&utm_medium=x&id=4", "?x", "?x=&&y=1",
                "?x=a=b", "?q=a+b", "?q=a%20b", "?q=caf\u00e9", "?fbclid=z&p=2", "?UTM_Source=x&k=v", "?a=1;b=2", "?=v",
                "?k=v&k=v", "?p=~._-", "?a=/b", "?gclid=1", "?a=1&", "?&a=1"]
FRAGMENTS = ["", "#", "#top", "#a b", "#caf\u00e9", "#x?y=1", "#/path"]


def test_canonical_urls_of_every_shape_agree_with_w3lib():
    rng = random.Random(7)
    read = 0
    for i in range(8000):
        common = i % 2  # half of them made of the common pieces only (the first of each list)
        pick = (lambda pieces, n: rng.choice(pieces[:n])) if common else (lambda pieces, n: rng.choice(pieces))
        url = (f"{pick(['http', 'https', 'HTTP', 'Https'], 2)}://{pick(HOSTS, 5)}{pick(PATH_PIECES, 6)}"
               f"{pick(QUERY_PIECES, 10)}{pick(FRAGMENTS, 3)}")
        read += _same(url)
    assert read > 1200  # the shortcut does read the common kind


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aZ09-._~!$&'()*+,=:@/?#%;[]|\\ é")), max_size=30),
       st.sampled_from(["https://example.org", "http://a.b:8080", "https://x-y.example.com"]))
def test_canonical_urls_of_random_text_agree_with_w3lib(tail, prefix):
    _same(prefix + "/" + tail)
    _same(tail, prefix + "/dir/page")


def test_canonical_urls_of_the_fixtures_agree_with_w3lib():
    found = set()
    for path in FIXTURES.rglob("*"):
        if path.is_file() and path.stat().st_size < 2_000_000:
            found.update(re.findall(r"""https?://[^\s"'<>]+""", path.read_text("utf-8", "replace")))
    assert len(found) > 200
    assert sum(_same(url) for url in sorted(found)) > 50


def test_simple_markup_reads_as_the_html_parser_reads_it():
    from pipeline import normalize

    def slow(html: str) -> str:
        return normalize._HTMLText().text(html) if ("<" in html or "&" in html) else html

    pieces = ["<p>", "</p>", "<P>", "<br>", "<br/>", "<br />", "</br>", "<p/>", "<b>", "</B>", "<em >", "</em >",
              "<h2>", "</h6>", "<li>", "<blockquote>", "text", " ", "\n", "\t", "a > b", "x", "é", "<", "< p>", "</ p>",
              "<p class=x>", "<script>", "</script>", "<style>", "<!-- c -->", "&amp;", "&lt;b&gt;", "<p\u00a0>", "<br\f>",
              "<span>", "<img src=x>", ">", "<b", "</"]
    rng = random.Random(3)
    fast = 0
    for _ in range(20000):
        html = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        assert normalize.html_to_text(html) == slow(html), html
        fast += "&" not in html and "<" not in normalize._PLAIN_TAG.sub("", html)
    assert fast > 1000



@settings(max_examples=400, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                    max_leaves=20))
def test_json_encoded_once_set_up_is_json_dumps(value):
    from pipeline.store import _encode, _json_encoder

    assert _encode(value) == json.dumps(value, ensure_ascii=False, sort_keys=True)
    assert _json_encoder()(value) == json.dumps(value)


def test_json_encoded_once_set_up_keeps_json_dumps_refusals_and_specials():
    from pipeline.store import _encode

    assert _encode([math.inf, -math.inf, 1e300, 0.1]) == json.dumps([math.inf, -math.inf, 1e300, 0.1], sort_keys=True)
    assert "NaN" in _encode(math.nan)
    for bad in ({1: "a", "b": 2}, {"x": object()}, b"bytes"):
        try:
            json.dumps(bad, ensure_ascii=False, sort_keys=True)
        except TypeError as e:
            expected = type(e)
        try:
            _encode(bad)
        except TypeError as e:
            assert type(e) is expected
        else:
            raise AssertionError(bad)


def test_fast_reader_entries_give_feedparser_enclosures():
    """A plain-dict entry (harvesters.parsers.fastrss) has the enclosures feedparser's class derives."""
    import feedparser

    from harvesters.parsers.feed import entry_enclosures

    for path in sorted((FIXTURES).rglob("*.xml")) + sorted((FIXTURES).rglob("*.rss")):
        for entry in feedparser.parse(path.read_bytes()).entries:
            assert entry_enclosures(dict(entry)) == entry.get("enclosures", []), path
            assert entry_enclosures(entry) == entry.get("enclosures", [])



def _ruamel_only(text: str):
    from ruamel.yaml import YAML

    from pipeline import safeyaml

    yaml = YAML(typ="safe", pure=True)
    yaml.Composer = safeyaml._PlainComposer
    return yaml.load(text)


def _outcome(parse, text: str):
    try:
        return ("data", parse(text))
    except Exception as e:  # noqa: BLE001 - the error's type and text are the outcome
        return ("error", type(e).__name__, str(e))


def _same_yaml(text: str) -> bool:
    """Assert libyaml's events give what ruamel.yaml alone gives; say whether they were used."""
    from pipeline import safeyaml

    fast = _outcome(safeyaml.parse, text)
    assert fast == _outcome(_ruamel_only, text), text
    if fast[0] == "data":
        assert repr(fast[1]) == repr(_ruamel_only(text))  # the same types too (1 is not 1.0, True is not 1)
    return safeyaml._libyaml_events(text) is not None


def test_yaml_files_read_the_same_through_libyaml():
    root = Path(__file__).parent.parent
    files = [p for pattern in ("*.yaml", "*.yml") for p in root.rglob(pattern)
             if ".venv" not in p.parts and "node_modules" not in p.parts]
    assert len(files) >= 5
    used = sum(_same_yaml(p.read_text("utf-8", "replace")) for p in files)
    assert used >= 4


SCALARS = ["plain", "two words", "'single'", '"double"', '"esc \\" \\n \\u00e9"', "'it''s'", "1", "-2", "0o17", "017", "0x1F",
           "1.5", "1e3", "1.0e+3", ".inf", "-.Inf", ".nan", "true", "False", "TRUE", "yes", "no", "on", "off", "y", "n",
           "null", "~", "", "Null", "2026-01-02", "2026-01-02 03:04:05", "2026-01-02T03:04:05Z", "12:30", "1_000",
           "+1", "0b101", "a: b", "'a: b'", "x #not comment", "x # comment", "https://example.org/a?b=c#d", "[a, b]",
           "[]", "{a: 1}", "{}", "- item", "? q", "!!str 1", "&a x", "*a", "|\n    block\n    text", ">\n    folded\n    text",
           "\"multi\n    line\"", "plain\n    continued", "@at", "`tick", "%pct", "é", "\u00a0nbsp", "a\\b", "'", '"', ":",
           "-", "key: [x, y, {z: 1}]", "<<: {m: 1}", "=", "0", "00", "1.", ".5", "-0", "+.5", "1:2:3"]


def test_generated_documents_read_the_same_through_libyaml():
    rng = random.Random(11)
    keys = ["id", "name", "url", "topics", "n", "k k", "'q'", "1", "true", "~", "notes", "a-b", "x.y"]

    def value(depth: int, indent: str) -> str:
        r = rng.random()
        if depth < 3 and r < 0.15:
            return "\n" + "\n".join(f"{indent}  - {rng.choice(SCALARS)}" for _ in range(rng.randint(1, 3)))
        if depth < 3 and r < 0.3:
            return "\n" + mapping(depth + 1, indent + "  ")
        if r < 0.4:
            return "[" + ", ".join(rng.choice(["a", "'b c'", "1", "true", "", '"d"', "x y"]) for _ in range(3)) + "]"
        return rng.choice(SCALARS).replace("\n", "\n" + indent)

    def mapping(depth: int, indent: str) -> str:
        return "\n".join(f"{indent}{rng.choice(keys)}: {value(depth, indent)}" + rng.choice(["", "", "  # c"])
                         for _ in range(rng.randint(1, 5)))

    used = 0
    for i in range(2500):
        text = mapping(0, "") if i % 3 else "sources:\n" + "\n".join(
            "  - " + mapping(1, "    ").lstrip() for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.2:  # and now and then something broken or unusual
            at = rng.randint(0, len(text))
            text = text[:at] + rng.choice(["\n\t", ": ", "- ", "#", "'", '"', "\n---\n", "&a ", "*a", "!!str ", "\n  ", "[",
                                           "\u2028", "%YAML 1.1\n"]) + text[at:]
        used += _same_yaml(text + rng.choice(["\n", "", "\n\n"]))
    assert used > 600


def test_a_registry_reads_the_same_through_libyaml():
    from benchmarks.content import registry_yaml

    text = registry_yaml([f"https://example.org/feeds/{i}.rss" for i in range(300)])
    assert _same_yaml(text)
    for bad in ("sources:\n  - id: a\n    id: b\n", "a: &x 1\nb: *x\n", "a:\n\t- b\n", "- " * 40 + "x\n", "a: b\n---\nc: d\n"):
        _same_yaml(bad)


def test_download_handler_imported_cheaply_gives_the_same_module_names():
    """Scrapy's deprecated TLS aliases name their modules as they would with the stack walk."""
    import subprocess
    import sys

    code = ("from harvesters.quickstart import import_download_handler; import_download_handler(); "
            "import scrapy.core.downloader.tls as t, scrapy.core.downloader.contextfactory as c; "
            "print(t.ScrapyClientTLSOptions.__module__, c.ScrapyClientContextFactory.__module__, "
            "c.AcceptableProtocolsContextFactory.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["scrapy.core.downloader.tls", "scrapy.core.downloader.contextfactory",
                   "scrapy.core.downloader.contextfactory"]


def test_harvest_settings_leave_out_only_the_cookie_middleware():
    from scrapy.settings import default_settings

    from harvesters.settings import UNUSED_DOWNLOADER_MIDDLEWARES, harvest_settings

    base = harvest_settings()["DOWNLOADER_MIDDLEWARES_BASE"]
    assert set(default_settings.DOWNLOADER_MIDDLEWARES_BASE) - set(base) == UNUSED_DOWNLOADER_MIDDLEWARES
    assert all(base[k] == v for k, v in default_settings.DOWNLOADER_MIDDLEWARES_BASE.items() if k in base)
