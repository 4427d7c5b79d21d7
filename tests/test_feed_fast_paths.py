"""The shortcuts of the feed path give exactly what the general code gives: canonical URLs of
the common kind (pipeline.urls._canonical_plain) against w3lib's canonicalization, batches
written as JSON arrays and sent from workers as strings (pipeline.packed) against the rows
written one by one (every table, the full-text index's own tables and the tag tables the
triggers keep), simple markup against the HTML parser, JSON encoded once set up against
json.dumps, and the registry
and the taxonomy read through libyaml's events (pipeline.safeyaml) against ruamel.yaml alone."""

from __future__ import annotations

import json
import math
import random
import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pipeline.urls as urls
from pipeline.packed import pack_prepared
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, prepare_batch, start_run, sync_sources, to_json, write_prepared

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


def _tables(db) -> dict[str, list[tuple]]:
    conn = db.conn
    out = {}
    for table in ("resources", "resource_sources", "raw_entries", "resource_tags", "tag_counts"):
        out[table] = conn.execute(f"SELECT rowid, * FROM {table} ORDER BY rowid").fetchall() \
            if table not in ("resource_tags",) else conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
    out["sites"] = conn.execute("SELECT id, site FROM sources ORDER BY id").fetchall()
    out["fts"] = conn.execute("SELECT rowid, title, description, excerpt, facets FROM resources_fts ORDER BY rowid").fetchall()
    # the index as the triggers wrote it (its content is read from a view): every token of every
    # row and column at its place, the facets column's tokens included (how FTS5 lays them out in
    # segments depends on when it flushes, not on what was indexed), and each row's sizes
    conn.execute("CREATE VIRTUAL TABLE temp.fts_words USING fts5vocab(main, resources_fts, instance)")
    out["fts_words"] = conn.execute("SELECT term, doc, col, offset FROM fts_words ORDER BY 1, 2, 3, 4").fetchall()
    assert any(col == "facets" for _t, _d, col, _o in out["fts_words"])
    for shadow in ("resources_fts_docsize", "sqlite_sequence"):
        out[shadow] = conn.execute(f"SELECT * FROM {shadow} ORDER BY 1, 2").fetchall()
    out["events"] = conn.execute("SELECT id, session_type, starts_at, event_name, event_year, presenters, slides_url "
                                 "FROM resources ORDER BY rowid").fetchall()
    conn.execute("INSERT INTO resources_fts(resources_fts, rank) VALUES ('integrity-check', 1)")
    return out


def _resources(seed: int, n: int) -> list[Resource]:
    rng = random.Random(seed)
    odd = ["plain", "quote \" and backslash \\", "caf\u00e9 \u2028 \U0001F600", "tab\there", "<b>bold</b> &amp; more",
           "interlibrary loan and copyright", "ILLiad webinar for new staff", ""]
    out = []
    for i in range(n):
        extra = {"tags": [rng.choice(odd)]} if rng.random() < 0.5 else {}
        if rng.random() < 0.1:  # an event: its columns are written too
            extra.update(session_type="session", starts_at="2026-05-01T14:00:00Z", event_name="Forum",
                         event_year=2026, presenters=[{"name": rng.choice(odd)}], location=None,
                         slides_url=f"https://example.org/slides/{i}", recording_url=None)
        out.append(Resource(url=f"https://{rng.choice(['a.example', 'b.example'])}/p/{rng.randint(0, n)}?x={i % 3}",
                            title=rng.choice(odd) or f"Item {i}", description=rng.choice(odd),
                            author=rng.choice([None, "Ann", "Zoë"]), published=rng.choice([None, "2026-01-02T03:04:05Z"]),
                            content_type=rng.choice(["article", "video", "event"]), extra=extra,
                            raw={"n": i, "text": rng.choice(odd)}))
    return out


@pytest.mark.parametrize("packed", [False, True])
def test_batches_written_as_json_give_the_rows_written_one_by_one(tmp_path, packed):
    """write_prepared (one statement a batch, packed entries or not) against the same batches
    inserted row by row, as it wrote them before, over new, repeated and shared resources."""
    from pipeline import packed

    def run(path, write):
        db = open_db(path)
        sync_sources(db, [{"id": s, "name": s, "kind": "feed", "url": f"https://{s}.example/feed"} for s in "abc"])
        runs = {s: start_run(db, s, "g", "2026-01-01T00:00:00Z") for s in "abc"}
        for k in range(12):
            sid = "abc"[k % 3]
            batch = Batch(sid, _resources(k % 5, 25), url=f"https://{sid}.example/feed", site=f"https://{sid}.example/")
            prepared, result = prepare_batch(batch, source_topics=["news"] if sid == "b" else [], organization="Org")
            with db.atomic():
                write(db, sid, prepared, batch, runs[sid], result)
        tables = _tables(db)
        db.close()
        return tables

    def new(db, sid, prepared, batch, run_id, result):
        write_prepared(db, sid, pack_prepared(prepared) if packed else prepared, base_url=batch.url, run_id=run_id,
                       now="2026-02-03T04:05:06Z", result=result, site=batch.site)

    def one_by_one(db, sid, prepared, batch, run_id, result):
        """The rows as executemany wrote them (the former statements)."""
        conn = db.conn
        real_execute = conn.execute

        class Rows:  # runs each JSON-array statement as the former one-row statements
            def __getattr__(self, name):
                return getattr(conn, name)

            def execute(self, sql, params=()):
                if sql is packed.INSERT_RESOURCES:
                    rows, now = json.loads(params[0]), params[1]
                    conn.executemany(
                        "INSERT INTO resources (id, url, title, description, content_type, organization, source_id, "
                        "published, updated, topics, systems, author, language, thumbnail, excerpt, extra, status, "
                        "content_hash, first_seen, last_seen, last_changed, classified_by) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'active',?,?,?,?,?)",
                        [[*r[:17], now, now, now, r[17]] for r in rows])
                    return None
                if sql is packed.UPSERT_ATTRIBUTION:
                    ids, source, now, run = params
                    conn.executemany(
                        "INSERT INTO resource_sources (resource_id, source_id, first_seen, last_seen, last_run_id) "
                        "VALUES (?,?,?,?,?) ON CONFLICT(resource_id, source_id) DO UPDATE SET "
                        "last_seen = excluded.last_seen, last_run_id = excluded.last_run_id, missed_runs = 0",
                        [[rid, source, now, now, run] for rid in json.loads(ids)])
                    return None
                if sql is packed.UPSERT_RAW:
                    pairs, source, base, now = params
                    conn.executemany(
                        "INSERT INTO raw_entries (resource_id, source_id, raw, base_url, fetched_at) VALUES (?,?,?,?,?) "
                        "ON CONFLICT(resource_id, source_id) DO UPDATE SET raw = excluded.raw, "
                        "base_url = excluded.base_url, fetched_at = excluded.fetched_at "
                        "WHERE raw_entries.raw != excluded.raw",
                        [[rid, source, raw, base, now] for rid, raw in json.loads(pairs)])
                    return None
                return real_execute(sql, params)

        db.conn = Rows()
        try:
            write_prepared(db, sid, prepared, base_url=batch.url, run_id=run_id, now="2026-02-03T04:05:06Z",
                           result=result, site=batch.site)
        finally:
            db.conn = conn

    assert run(tmp_path / "new.db", new) == run(tmp_path / "old.db", one_by_one)


def test_packed_entries_read_as_prepared_ones():
    batch = Batch("s", _resources(3, 30), url="https://s.example/feed")
    prepared, _result = prepare_batch(batch, source_topics=["news"])
    packed = pack_prepared(prepared)
    assert list(packed) == list(prepared)
    for rid, (r, raw, reasons, encoded) in prepared.items():
        r.raw = {}  # not sent: the raw record travels as its JSON
        assert packed[rid] == (r, raw, reasons, encoded)
        assert to_json(r.extra) == encoded[2]
    assert packed.items() == [(rid, packed[rid]) for rid in packed]
    import pickle

    assert pickle.loads(pickle.dumps(packed)) == packed and type(pickle.loads(pickle.dumps(packed))) is type(packed)


def test_sqlite_reads_json_strings_exactly():
    """The JSON-array statements hand SQLite every string as it is (what a bound parameter
    would be), whatever its characters."""
    conn = sqlite3.connect(":memory:")
    texts = ["", "a", "\"q\" \\ /", "\u00e9\u2028\u2029\U0001F600", "".join(chr(c) for c in range(1, 32)), "\x7f\x80",
             "{\"k\": [1, \"v\"]}", "\ufeffbom", "x" * 5000]
    from pipeline.packed import encode_row as _encode_row

    got = conn.execute("SELECT json_extract(value, '$[0]') FROM json_each(?) ORDER BY key",
                       [_encode_row([[t] for t in texts])]).fetchall()
    assert [g[0] for g in got] == texts


def test_a_nul_character_is_stored_as_a_bound_parameter_stores_it(tmp_path):
    """json_extract ends a string at NUL: such a batch goes in row by row (pipeline.packed.insert_rows)."""
    from pipeline.packed import encode_row, insert_rows

    conn = sqlite3.connect(":memory:")
    assert conn.execute("SELECT json_extract(?, '$[0]')", [encode_row(["a\x00b"])]).fetchone()[0] == "a"  # why
    db = open_db(tmp_path / "nul.db")
    sync_sources(db, [{"id": "s", "name": "s", "kind": "feed", "url": "https://s.example/feed"}])
    rows = [["id1", "https://s.example/1", "plain", "", "article", None, "s", None, None, "[]", "[]", None, None, None,
             None, "{}", "h1", "{}"],
            ["id2", "https://s.example/2", "a\x00b", "d\x00", "article", "O\x00rg", "s", None, None, '["news"]', "[]",
             "x\x00", None, None, None, "{}", "h2", "{}"]]
    with db.atomic():
        insert_rows(db.conn, [encode_row(r) for r in rows], "2026-01-01T00:00:00Z")
    got = db.conn.execute("SELECT id, title, description, organization, author FROM resources ORDER BY rowid").fetchall()
    assert got == [("id1", "plain", "", None, None), ("id2", "a\x00b", "d\x00", "O\x00rg", "x\x00")]


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
    from pipeline.packed import json_encoder as _json_encoder
    from pipeline.store import _encode

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


def test_documents_libyaml_accepts_and_ruamel_refuses_are_refused():
    """libyaml (YAML 1.1) takes a comment right after a block scalar's indicator and a second
    document end marker, and a block scalar whose first line holds only spaces (fewer than the
    text's); ruamel.yaml refuses them, and so must the registry's reader."""
    for text in ("notes: |#c\n  x\n", "a: >-#c\n  x\n", "- |#c\n- b\n", "a: 1\n...\n...\n", "x\n...\n...",
                 "notes: |\n  \n    x\n", "notes: >- # c\n \n   x\n"):
        assert _outcome(_ruamel_only, text)[0] == "error", text
        _same_yaml(text)


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
