"""The shortcuts of the feed path give exactly what the general code gives: the registry and
the taxonomy read through libyaml's events (pipeline.safeyaml) against ruamel.yaml alone."""

from __future__ import annotations

import random
from pathlib import Path


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
