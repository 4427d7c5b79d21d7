"""Registry validation: strict, once, every problem reported together with source id and field."""

from __future__ import annotations

import textwrap

import pytest
from ruamel.yaml import YAML

from harvesters.kinds.feed import FeedSource
from harvesters.kinds.manual import ManualSource
from harvesters.kinds.youtube import YouTubeSource
from illhub.registry import RegistryError, load_registry, parse_registry
from tests.conftest import ROOT, one_problem, problems_for, run_cli

GOOD = {"id": "good-feed", "name": "A good feed", "kind": "feed", "url": "https://example.org/feed/"}


def test_valid_registry_of_every_kind():
    reg = parse_registry({"sources": [
        {**GOOD, "topics": ["copyright", "lending"], "schedule": "0 3 * * 1", "enabled": False, "notes": "n",
         "organization": "Org", "content_type": "documentation", "max_items": 50},
        {"id": "yt-chan", "name": "Chan", "kind": "youtube", "channel_id": "UC" + "a" * 22},
        {"id": "yt-list", "name": "List", "kind": "youtube", "playlist_id": "PL" + "b" * 16},
        {"id": "yt-handle", "name": "Handle", "kind": "youtube", "url": "https://www.youtube.com/@someone"},
        {"id": "curated", "name": "Curated", "kind": "manual",
         "entries": [{"url": "https://example.org/a", "title": "A", "published": "2026-01-02"}]},
    ]}, "reg.yaml")
    kinds = [type(s) for s in reg.sources]
    assert kinds == [FeedSource, YouTubeSource, YouTubeSource, YouTubeSource, ManualSource]
    feed = reg.get("good-feed")
    assert feed.enabled is False and feed.resource_type == "documentation" and feed.max_items == 50
    assert [s.id for s in reg.enabled()] == ["yt-chan", "yt-list", "yt-handle", "curated"]
    assert reg.get("yt-chan").config() == {"channel_id": "UC" + "a" * 22}
    assert reg.defaults.schedule == "nightly"


def test_the_shipped_registries_are_valid():
    load_registry(ROOT / "registry.yaml")
    text = (ROOT / "data" / "demo" / "registry.yaml").read_text(encoding="utf-8").replace("{base}", "http://127.0.0.1:1")
    parse_registry(YAML(typ="safe").load(text), "demo")


def test_unknown_key():
    p = one_problem({**GOOD, "colour": "blue"})
    assert p.startswith("reg.yaml: source 'good-feed' (#1): field 'colour': is not a known field")


def test_unknown_top_level_key():
    problems = problems_for(GOOD, source=[])
    assert problems == ["reg.yaml: top-level field 'source' is not known (expected 'sources' and optional 'defaults'); "
                        "did you mean 'sources'?"]


def test_duplicate_id_reported_even_when_the_first_has_other_problems():
    problems = problems_for({**GOOD, "colour": "x"}, {**GOOD, "url": "https://example.org/other/"})
    assert "reg.yaml: source 'good-feed' (#2): field 'id': 'good-feed' is already used by source #1" in problems
    assert len(problems) == 2


def test_duplicate_url():
    p = problems_for(GOOD, {**GOOD, "id": "again"})
    assert p == ["reg.yaml: source 'again' (#2): field 'url': same URL as source 'good-feed'"]


@pytest.mark.parametrize("bad", ["Bad_Slug", "UPPER", "a--b", "-lead", "trail-", "sp ace", "ümlaut"])
def test_bad_slug(bad):
    p = one_problem({**GOOD, "id": bad})
    assert f"field 'id': {bad!r} is not a slug" in p


def test_bad_topic_slug():
    assert "field 'topics': 'Not A Slug' is not a slug" in one_problem({**GOOD, "topics": ["Not A Slug"]})


@pytest.mark.parametrize("url,scheme", [
    ("ftp://example.org/feed", "ftp"), ("file:///etc/passwd", "file"), ("data:text/xml,<rss/>", "data"),
    ("javascript:alert(1)", "javascript"), ("gopher://example.org/", "gopher"),
])
def test_non_http_url(url, scheme):
    p = one_problem({**GOOD, "url": url})
    assert f"field 'url': must be an http:// or https:// URL, not {scheme}: URL" in p


def test_relative_and_hostless_urls():
    assert "not a relative: URL" in one_problem({**GOOD, "url": "/feed/"})
    assert "has no host name" in one_problem({**GOOD, "url": "https:///feed"})
    assert "must not contain spaces" in one_problem({**GOOD, "url": "https://example.org/a feed"})


@pytest.mark.parametrize("url", ["https://user:secret@example.org/feed", "https://token@example.org/feed"])
def test_credentials_in_url(url):
    assert "field 'url': must not contain a user name or password" in one_problem({**GOOD, "url": url})


def test_unknown_topic():
    p = one_problem({**GOOD, "topics": ["no-such-topic"]})
    assert p.startswith(
        "reg.yaml: source 'good-feed' (#1): field 'topics': 'no-such-topic' is not a topic in data/taxonomy.yaml "
        "(known: basics, borrowing, lending, copyright,")


def test_unknown_kind_and_missing_kind():
    from harvesters.kinds import KINDS

    known = ", ".join(sorted(KINDS))
    assert {"feed", "manual", "youtube"} <= set(KINDS)
    assert f"field 'kind': 'podcast' is not a known kind (one of {known})" in one_problem({**GOOD, "kind": "podcast"})
    src = dict(GOOD)
    del src["kind"]
    assert f"field 'kind': is required (one of {known})" in one_problem(src)


def test_missing_required_fields():
    problems = problems_for({"id": "f", "kind": "feed"})
    assert "reg.yaml: source 'f' (#1): field 'name': is required" in problems
    assert "reg.yaml: source 'f' (#1): field 'url': is required" in problems


YT = {"id": "yt", "name": "YT", "kind": "youtube"}


@pytest.mark.parametrize("bad", ["every tuesday", "61 * * * *", "* * * *"])
def test_bad_schedule(bad):
    p = one_problem({**GOOD, "schedule": bad})
    assert f"field 'schedule': {bad!r} is neither one of hourly, daily, nightly, weekly nor a 5-field cron" in p


def test_bad_defaults():
    problems = problems_for(GOOD, defaults={"schedule": "sometimes", "colour": 1})
    assert any(p.startswith("reg.yaml: defaults.schedule: 'sometimes' is neither") for p in problems)
    assert any(p.startswith("reg.yaml: defaults.colour: is not a known field") for p in problems)


def test_every_problem_reported_together():
    problems = problems_for(
        {**GOOD, "colour": 1},
        {**GOOD, "id": "Bad_Slug", "url": "https://example.org/2"},
        {**GOOD, "id": "ftp", "url": "ftp://example.org/"},
        {**GOOD, "id": "topic", "url": "https://example.org/3", "topics": ["nope"]},
        {**YT, "channel_id": "UCx"},
        {"id": "m", "name": "M", "kind": "manual"},
        "not a mapping",
    )
    assert len(problems) == 7, problems
    for needle in ("'good-feed' (#1): field 'colour'", "'Bad_Slug' (#2): field 'id'", "'ftp' (#3): field 'url'",
                   "'topic' (#4): field 'topics'", "'yt' (#5): field 'channel_id'", "'m' (#6): field 'entries'",
                   "source #7: must be a mapping"):
        assert sum(needle in p for p in problems) == 1, (needle, problems)


def test_top_level_shapes():
    with pytest.raises(RegistryError, match="the top level must be a mapping"):
        parse_registry(["x"], "reg.yaml")
    with pytest.raises(RegistryError, match="'sources' must be a list"):
        parse_registry({"sources": {"a": 1}}, "reg.yaml")


def write(tmp_path, text: str):
    path = tmp_path / "registry.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, """\
        sources:
          - id: a
            name: [unclosed
            kind: feed
        """)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:")
    line = int(problem.split(":")[1])
    assert 3 <= line <= 5, problem
    assert "not valid YAML" in problem


def test_python_tags_are_rejected_by_the_safe_loader(tmp_path):
    path = write(tmp_path, """\
        sources:
          - !!python/object/apply:os.system ["echo pwned > pwned.txt"]
        """)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    [problem] = info.value.problems
    assert f"{path}:2: not valid YAML" in problem and "python/object" in problem
    assert not (tmp_path / "pwned.txt").exists()


def test_missing_file(tmp_path):
    with pytest.raises(RegistryError, match="file not found"):
        load_registry(tmp_path / "nope.yaml")


def test_validate_command_exit_codes(tmp_path):
    good = write(tmp_path, """\
        sources:
          - id: good-feed
            name: Good
            kind: feed
            url: https://example.org/feed/
          - id: curated
            name: Curated
            kind: manual
            entries:
              - {url: "https://example.org/a", title: A}
        """)
    result = run_cli("validate", "--registry", str(good))
    assert result.returncode == 0, result.stderr
    assert "2 sources OK (1 feed, 1 manual)" in result.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  - id: Bad_Slug\n    name: x\n    kind: feed\n    url: ftp://example.org/\n"
                   "  - id: m\n    name: M\n    kind: manual\n", encoding="utf-8")
    result = run_cli("validate", "--registry", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert any("source 'Bad_Slug' (#1): field 'id'" in line for line in lines)
    assert any("source 'Bad_Slug' (#1): field 'url'" in line for line in lines)
    assert any("source 'm' (#2): field 'entries': is required" in line for line in lines)
    assert lines[-1] == f"3 problem(s) in {bad}; fix them and run 'illhub validate'."
    assert "Traceback" not in result.stderr


def test_every_kind_is_one_module_holding_its_model_and_its_handler():
    """The recipe of docs/development.md ("Adding a kind"), held for every kind: one module
    holding its model and handler, its parser (a kind that fetches nothing has none), its
    fixture folder and its test file, all of one name."""
    from harvesters.kinds import KINDS

    assert len(KINDS) == 9
    for name, k in KINDS.items():
        assert k.model.kind_name == name
        assert k.model.__module__ == f"harvesters.kinds.{name}"
        assert type(k.handler).__module__ == f"harvesters.kinds.{name}"
        assert (ROOT / "harvesters" / "parsers" / f"{name}.py").is_file() == k.model.uses_network, name
        assert (ROOT / "tests" / "fixtures" / name).is_dir(), name
        assert (ROOT / "tests" / f"test_{name}.py").is_file(), name


def test_registry_reports_every_web_field_problem_at_once():
    data = {"sources": [
        {"id": "c", "name": "C", "kind": "crawl", "url": "https://h.example.org/", "max_depth": 11,
         "follow": ["(unclosed"], "selectors": {"item": "tr[", "links": {"slides": "./a[@"}}},
        {"id": "s", "name": "S", "kind": "sitemap", "url": "https://h.example.org/sitemap.xml", "max_pages": 0,
         "exclude": ["*.pdf"]},
        {"id": "w", "name": "W", "kind": "wordpress", "url": "https://w.example.org/", "per_page": 500},
        {"id": "z", "name": "Z", "kind": "zendesk", "url": "https://z.example.org/hc/en-us", "locale": "en us"},
        {"id": "z2", "name": "Z2", "kind": "zendesk"},
    ]}
    with pytest.raises(RegistryError) as e:
        parse_registry(data)
    text = "\n".join(e.value.problems)
    for expected in ("source 'c' (#1): field 'max_depth'", "source 'c' (#1): field 'follow'",
                     "is not a valid CSS selector", "links.slides: './a[@' is not a valid XPath selector",
                     "source 's' (#2): field 'max_pages'", "source 's' (#2): field 'exclude': '*.pdf' is not a valid "
                     "regular expression", "source 'w' (#3): field 'per_page'", "source 'z' (#4): field 'locale'",
                     "source 'z2' (#5): field 'url': is required"):
        assert expected in text, expected
    assert len(e.value.problems) == 8
