"""The parsed-YAML cache (pipeline/yamlcache.py): the same data as parsing, parsed once per
text, and never in the way (errors, odd values, an unwritable directory)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from illhub.registry import RegistryError, load_registry, load_yaml
from pipeline import yamlcache
from pipeline.taxonomy import TAXONOMY_PATH, load_taxonomy

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ILLHUB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "yaml"


class CountingParser:
    def __init__(self):
        self.calls = 0

    def __call__(self, text):
        self.calls += 1
        return YAML(typ="safe", pure=True).load(text)


def test_the_real_registry_and_taxonomy_come_back_identical_and_parsed_once(cache):
    for path in (ROOT / "registry.yaml", TAXONOMY_PATH):
        text = path.read_text(encoding="utf-8")
        parse = CountingParser()
        first = yamlcache.load(text, parse, "t")
        second = yamlcache.load(text, parse, "t")
        assert parse.calls == 1
        assert second == first == YAML(typ="safe", pure=True).load(text)
        assert second is not first
    assert len(list(cache.glob("*.json"))) == 2


def test_an_edit_parses_afresh(cache):
    parse = CountingParser()
    assert yamlcache.load("a: 1\n", parse) == {"a": 1}
    assert yamlcache.load("a: 2\n", parse) == {"a": 2}
    assert yamlcache.load("a: 1\n", parse) == {"a": 1}
    assert parse.calls == 2


def test_dates_and_plain_values_round_trip(cache):
    text = "d: 2024-03-05\nf: 1.5\nn: null\nb: true\ni: 12345678901234567890\nl: [x, {y: 'z'}]\nu: \"caf\\u00e9 \\U0001F4DA\"\n"
    parse = CountingParser()
    yamlcache.load(text, parse)
    got = yamlcache.load(text, parse)
    assert parse.calls == 1
    assert got == YAML(typ="safe", pure=True).load(text)
    assert type(got["d"]) is dt.date and isinstance(got["b"], bool) and isinstance(got["i"], int)


@pytest.mark.parametrize("text", [
    "t: 2024-03-05T10:00:00Z\n",  # a timestamp keeps its tzinfo only through the parser
    "1: one\n",  # a non-string key
    "b: !!binary aGVsbG8=\n",
    "s: !!set {a, b}\n",
])
def test_values_json_cannot_hold_exactly_are_parsed_every_time(cache, text):
    parse = CountingParser()
    first = yamlcache.load(text, parse)
    assert yamlcache.load(text, parse) == first
    assert parse.calls == 2
    assert not (cache.exists() and list(cache.glob("*.json")))


def test_a_parse_error_is_the_parsers_and_nothing_is_stored(cache, tmp_path):
    bad = tmp_path / "registry.yaml"
    bad.write_text("sources:\n  - id: a\n   name: b\n")
    for _ in range(2):
        with pytest.raises(RegistryError) as e:
            load_yaml(bad)
        assert "registry.yaml:3: not valid YAML" in str(e.value.problems[0])
    assert not cache.exists() or not list(cache.glob("*.json"))


def test_a_cached_registry_is_validated_on_every_load(cache, tmp_path):
    """The cache keeps parsed YAML, not the verdict: the same text against a taxonomy that no
    longer has the source's topic fails the second time."""
    reg = tmp_path / "registry.yaml"
    reg.write_text(
        "sources:\n  - id: blog\n    name: A blog\n    kind: feed\n    url: https://example.org/feed\n"
        "    organization: Example\n    topics: [copyright]\n")
    assert load_registry(reg).sources[0].topics == ["copyright"]
    assert list(cache.glob("*.json"))
    taxonomy_file = tmp_path / "taxonomy.yaml"
    data = YAML(typ="safe", pure=True).load(TAXONOMY_PATH.read_text(encoding="utf-8"))
    data["topics"] = [t for t in data["topics"] if t["id"] != "copyright"]
    import io
    buf = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, buf)
    taxonomy_file.write_text(buf.getvalue())
    with pytest.raises(RegistryError) as e:
        load_registry(reg, load_taxonomy(taxonomy_file))
    assert "copyright" in " ".join(e.value.problems)


def test_a_corrupt_entry_is_parsed_over(cache):
    parse = CountingParser()
    yamlcache.load("a: 1\n", parse)
    (entry,) = cache.glob("*.json")
    entry.write_text("{not json")
    assert yamlcache.load("a: 1\n", parse) == {"a": 1}
    assert parse.calls == 2
    assert yamlcache.load("a: 1\n", parse) == {"a": 1}
    assert parse.calls == 2


def test_an_unwritable_directory_or_off_only_costs_the_parse(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("ILLHUB_CACHE_DIR", str(blocker))  # a file: no directory can be made in it
    parse = CountingParser()
    assert yamlcache.load("a: 1\n", parse) == {"a": 1}
    assert yamlcache.load("a: 1\n", parse) == {"a": 1}
    assert parse.calls == 2
    monkeypatch.setenv("ILLHUB_CACHE_DIR", "off")
    assert yamlcache.cache_dir() is None
    assert yamlcache.load("a: 1\n", parse) == {"a": 1}
    assert parse.calls == 3


def test_the_default_place_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("ILLHUB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert yamlcache.cache_dir() == tmp_path / "illhub" / "yaml"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert yamlcache.cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "illhub" / "yaml"


def test_old_entries_are_pruned(cache, monkeypatch):
    monkeypatch.setattr(yamlcache, "KEEP", 3)
    for i in range(6):
        yamlcache.load(f"a: {i}\n", CountingParser())
    assert len(list(cache.glob("*.json"))) == 3


def test_text_no_file_can_hold_is_parsed_every_time(cache):
    """A lone surrogate (a valid YAML escape) cannot be written as UTF-8: no entry, no crash."""
    parse = CountingParser()
    text = 'name: "\\ud800"\n'
    first = yamlcache.load(text, parse)
    assert yamlcache.load(text, parse) == first == {"name": "\ud800"}
    assert parse.calls == 2


def test_entries_in_use_outlive_unused_ones(cache, monkeypatch):
    monkeypatch.setattr(yamlcache, "KEEP", 2)
    parse = CountingParser()
    yamlcache.load("a: 0\n", parse)
    (used,) = cache.glob("*.json")
    yamlcache.load("a: 1\n", parse)
    (unused,) = set(cache.glob("*.json")) - {used}
    os.utime(used, (1, 1))  # both written long ago
    os.utime(unused, (2, 2))
    yamlcache.load("a: 0\n", parse)  # the older one is used again
    yamlcache.load("a: 2\n", parse)  # a third entry: one must go
    assert used.exists() and not unused.exists() and parse.calls == 3
