"""`illhub validate` reports every problem of a registry in one run, each with the line of the
source (or field) in the file, a suggestion for misspelled names, and a hint for YAML errors."""

from __future__ import annotations

import textwrap

import pytest

from illhub.registry import RegistryError, load_registry
from tests.conftest import run_cli

# Three sources, ten different mistakes (the numbered comments), as a volunteer might make them.
MISTAKES = """\
    defaults:
      schedule: nightly
    sources:
      - id: consortium-news
        name: Consortium news
        kind: podcast                           # 1 an unknown kind
        url: htp://news.example.org/feed/       # 2 a bad URL (checked although the kind is unknown)
        tpoics: [copyright]                     # 3 a misspelled field
        topics: [copyrite]                      # 4 an unknown topic
        schedule: every tuesday                 # 5 a bad schedule

      - id: Help_Center                         # 6 not a slug
        name: Help center
        kind: zendesk
        url: https://help.example.org/hc/en-us
        systems: [tipasa, ilisaid]              # 7 an unknown system
        max_itmes: 20                           # 8 a misspelled field of the kind

      - id: training-videos
        kind: youtube                           # 9 no name
        channel_id: UCxyz                       # 10 a bad channel id
        organisation: Example Consortium        # 11 British spelling of a field
    """


def test_every_mistake_in_one_run_with_lines(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(textwrap.dedent(MISTAKES), encoding="utf-8")
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    problems = info.value.problems
    text = "\n".join(problems)
    expected = [
        (6, "source 'consortium-news' (#1): field 'kind': 'podcast' is not a known kind (one of "),
        (7, "source 'consortium-news' (#1): field 'url': must be an http:// or https:// URL"),
        (8, "source 'consortium-news' (#1): field 'tpoics': is not a known field; did you mean 'topics'?"),
        (9, "source 'consortium-news' (#1): field 'topics': 'copyrite' is not a topic in data/taxonomy.yaml"),
        (10, "source 'consortium-news' (#1): field 'schedule': 'every tuesday' is neither"),
        (12, "source 'Help_Center' (#2): field 'id': 'Help_Center' is not a slug"),
        (16, "source 'Help_Center' (#2): field 'systems': 'ilisaid' is not a system in data/taxonomy.yaml"),
        (17, "source 'Help_Center' (#2): field 'max_itmes': is not a known field; did you mean 'max_items'?"),
        (19, "source 'training-videos' (#3): field 'name': is required"),
        (21, "source 'training-videos' (#3): field 'channel_id'"),
        (22, "source 'training-videos' (#3): field 'organisation': is not a known field; did you mean "
             "'organization'?"),
    ]
    for line, needle in expected:
        assert sum(p.startswith(f"{path}:{line}: {needle}") for p in problems) == 1, (line, needle, text)
    assert "did you mean 'copyright'?" in text and "did you mean 'illiad'?" in text
    assert len(problems) == len(expected), text


def test_validate_command_lists_them_all(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(textwrap.dedent(MISTAKES), encoding="utf-8")
    result = run_cli("validate", "--registry", str(path))
    assert result.returncode == 2
    lines = [x for x in result.stderr.splitlines() if x.startswith(f"{path}:")]
    assert len(lines) == 11, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("text", "line", "column", "hint"), [
    # an unquoted ': ' in a value
    ("sources:\n  - id: a\n    name: ILL: the basics\n    kind: feed\n", 3, 14, "must be quoted"),
    # a tab used to indent
    ("sources:\n  - id: a\n\tname: A\n", 3, 1, "spaces, never tabs"),
    # a field indented less than the others of its source
    ("sources:\n  - id: a\n    name: A\n   kind: feed\n", 4, 4, "check the indentation"),
    # a list not closed
    ("sources:\n  - id: a\n    topics: [lending, copyright\n    kind: feed\n", 4, None, "not closed"),
])
def test_yaml_errors_name_line_column_and_hint(tmp_path, text, line, column, hint):
    path = tmp_path / "registry.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:"), problem
    assert "not valid YAML" in problem and "(hint: " in problem and hint in problem.split("(hint: ")[1], problem
    if column is not None:
        assert problem.startswith(f"{path}:{line}: not valid YAML at column {column}:"), problem


def test_unknown_kind_lists_fields_of_no_kind(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text("sources:\n  - id: a\n    name: A\n    kind: rss\n    url: https://a.example/feed\n"
                    "    colour: blue\n", encoding="utf-8")
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert info.value.problems == [
        f"{path}:4: source 'a' (#1): field 'kind': 'rss' is not a known kind (one of "
        + ", ".join(sorted(__import__("harvesters.kinds", fromlist=["KINDS"]).KINDS)) + ")",
        f"{path}:6: source 'a' (#1): field 'colour': is not a known field (see docs/registry.md for each kind's "
        "fields)",
    ]


def test_a_field_of_another_kind_is_named_as_such():
    from tests.conftest import one_problem

    p = one_problem({"id": "f", "name": "F", "kind": "feed", "url": "https://a.example/feed", "max_depth": 2})
    assert "field 'max_depth': is not a known field of a feed source (it is a field of crawl" in p
