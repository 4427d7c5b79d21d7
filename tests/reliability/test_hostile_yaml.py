"""Hostile YAML in the registry and the taxonomy (issue 21, items 1 and 13).

A registry of a few hundred bytes with nested aliases (nine levels of ten: a billion values)
exhausted memory in ``illhub validate`` and ``harvest``: the parsed-YAML cache encoded the
expanded aliases before validation ever ran, and ``illhub schedule``, which re-reads the
registry, went down with it. A thousand nested lists ended in a RecursionError traceback.
Both are refused while the YAML is composed, before anything walks the data, with one line
naming the file and the line. Every case runs in a subprocess with its address space capped,
so a regression fails fast instead of taking the machine.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from pipeline import yamlcache
from tests.conftest import ROOT
from tests.reliability.helpers import feed_source, illhub, write_registry

#: Address space of a checked process: ample for illhub (Scrapy imported), far too little for
#: what the bomb expands to.
MEMORY_LIMIT_MB = 2048


def alias_bomb(levels: int = 9, fan_out: int = 10, key: str = "sources") -> str:
    lines = ["a0: &a0 [" + ", ".join(["interlibrary loan"] * fan_out) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan_out) + "]")
    lines.append(f"{key}: *a{levels}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_registry_is_refused_before_any_other_work(tmp_path):
    bomb = tmp_path / "registry.yaml"
    bomb.write_text(alias_bomb(), encoding="utf-8")
    assert len(bomb.read_bytes()) < 1000
    cache = tmp_path / "cache"
    for command in (["validate", "--registry", str(bomb)],
                    ["harvest", "--registry", str(bomb), "--db", str(tmp_path / "catalog.db")]):
        result = illhub(*command, env={"ILLHUB_CACHE_DIR": str(cache)}, memory_limit_mb=MEMORY_LIMIT_MB)
        assert result.returncode == 2, result.stderr[-2000:]
        problems = result.stderr.splitlines()
        assert problems[0] == (f"{bomb}:2: YAML aliases are not allowed (found *a0); write the value out in full "
                               "instead of referring to an anchor"), result.stderr
        assert problems[1:] == [f"1 problem(s) in {bomb}; fix them and run 'illhub validate'."]
        assert result.max_rss_mb < 300, result.max_rss_mb  # a seven-level bomb took ~470 MB before
    assert not (tmp_path / "catalog.db").exists()
    # nothing stored for the refused file (a seven-level bomb left an 80 MB cache entry)
    entry = cache / "yaml" / f"{yamlcache._key(bomb.read_text(encoding='utf-8'), 'registry')}.json"
    assert not entry.exists()
    assert all(p.stat().st_size < 1_000_000 for p in (cache / "yaml").glob("*.json"))


def test_an_anchor_without_aliases_is_still_plain_yaml(tmp_path):
    registry = tmp_path / "registry.yaml"
    registry.write_text(textwrap.dedent("""\
        sources:
          - &first
            id: ill-news
            name: ILL news
            kind: feed
            url: http://127.0.0.1:9/feed.xml
        """), encoding="utf-8")
    result = illhub("validate", "--registry", str(registry))
    assert result.returncode == 0, result.stderr
    merged = tmp_path / "merged.yaml"
    merged.write_text(registry.read_text(encoding="utf-8")
                      + "  - <<: *first\n    id: ill-news-2\n    url: http://127.0.0.1:9/other.xml\n", encoding="utf-8")
    result = illhub("validate", "--registry", str(merged))
    assert result.returncode == 2 and f"{merged}:7: YAML aliases are not allowed (found *first)" in result.stderr


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Python code in a subprocess with the address space capped."""
    def cap() -> None:
        import resource

        limit = MEMORY_LIMIT_MB * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=cap)


def test_an_alias_bomb_taxonomy_is_refused(tmp_path):
    bomb = tmp_path / "taxonomy.yaml"
    bomb.write_text(alias_bomb(key="topics"), encoding="utf-8")
    result = run_python(textwrap.dedent(f"""\
        from pipeline.taxonomy import TaxonomyError, load_taxonomy
        try:
            load_taxonomy({str(bomb)!r})
        except TaxonomyError as e:
            print("\\n".join(e.problems))
        """))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [f"{bomb}:2: YAML aliases are not allowed (found *a0); write the value "
                                          "out in full instead of referring to an anchor"]


def test_the_scheduler_keeps_its_schedule_when_a_bomb_is_merged(tmp_path):
    """``illhub schedule`` re-reads the registry when it changes: a bomb is one problem
    logged, and the previous schedule goes on."""
    registry = write_registry(tmp_path / "registry.yaml", [feed_source("ill-news", "http://127.0.0.1:9/feed.xml")])
    result = run_python(textwrap.dedent(f"""\
        import logging, pathlib
        logging.basicConfig(level=logging.ERROR, format="%(message)s")
        from illhub.scheduler import HarvestScheduler
        hs = HarvestScheduler(pathlib.Path({str(registry)!r}), pathlib.Path({str(tmp_path / 'catalog.db')!r}))
        hs.load()
        pathlib.Path({str(registry)!r}).write_text({alias_bomb()!r})
        print(hs.check_registry(), [s.id for s in hs.registry.sources])
        """))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False ['ill-news']"
    assert f"{registry}:2: YAML aliases are not allowed (found *a0)" in result.stderr


def test_a_registry_nested_a_thousand_deep_is_one_line_not_a_traceback(tmp_path):
    deep = tmp_path / "registry.yaml"
    deep.write_text("sources:\n  - id: x\n    kind: feed\n    url: http://127.0.0.1:9/feed.xml\n    topics: "
                    + "[" * 1000 + "]" * 1000 + "\n", encoding="utf-8")
    result = illhub("validate", "--registry", str(deep), memory_limit_mb=MEMORY_LIMIT_MB)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.splitlines()[0] == (f"{deep}:5: nested more than 32 levels deep; illhub's files need "
                                             "only a few levels (a broken or hostile file?)")
    # the same limit holds for JSON (a registry may be written as JSON, which is YAML)
    deep.write_text('{"sources": ' + "[" * 1000 + "]" * 1000 + "}", encoding="utf-8")
    result = illhub("validate", "--registry", str(deep), memory_limit_mb=MEMORY_LIMIT_MB)
    assert result.returncode == 2 and "nested more than 32 levels deep" in result.stderr, result.stderr[-2000:]
