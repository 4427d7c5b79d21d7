"""README.md and docs/*.md: the generated sections match the code, the relative links lead
somewhere, and the examples in them are valid."""

from __future__ import annotations

import shutil

import pytest
from ruamel.yaml import YAML

from harvesters.source import SourceBase
from illhub.registry import Defaults, parse_registry
from tests.conftest import ROOT
from tools import docs, links

README = ROOT / "README.md"
PAGES = docs.doc_files(ROOT)


def test_generated_sections_are_up_to_date():
    texts = {path: path.read_text(encoding="utf-8") for path in PAGES}
    assert docs.placement_problems(texts) == []
    assert not any(docs.missing_sections("".join(texts.values())))
    stale = {path.name: docs.stale_sections(text) for path, text in texts.items() if docs.stale_sections(text)}
    assert stale == {}, f"out of date: {stale}: run 'python -m tools.docs' (make docs)"


def _copy_pages(tmp_path):
    (tmp_path / "docs").mkdir()
    for path in PAGES:
        shutil.copy(path, tmp_path / path.relative_to(ROOT))
    return {path.relative_to(ROOT): path.read_text(encoding="utf-8") for path in PAGES}


def test_check_mode_reports_a_stale_page(tmp_path, capsys):
    texts = _copy_pages(tmp_path)
    stale = tmp_path / "docs" / "registry.md"
    stale.write_text(stale.read_text(encoding="utf-8").replace("| `max_items` |", "| `max_itemz` |"), encoding="utf-8")
    assert docs.main(["--check", "--root", str(tmp_path)]) == 1
    assert "registry-fields" in capsys.readouterr().err
    assert docs.main(["--root", str(tmp_path)]) == 0  # regenerating fixes it ...
    for rel, text in texts.items():  # ... and touches nothing else
        assert (tmp_path / rel).read_text(encoding="utf-8") == text
    assert docs.main(["--check", "--root", str(tmp_path)]) == 0
    # a section with no page, or with two, is refused
    cli = tmp_path / "docs" / "cli.md"
    cli.write_text(texts[cli.relative_to(tmp_path)].replace("<!-- BEGIN cli -->", "<!-- BEGIN clx -->")
                   .replace("<!-- END cli -->", "<!-- END clx -->"), encoding="utf-8")
    assert docs.main(["--check", "--root", str(tmp_path)]) == 1
    assert "no page has markers for cli" in capsys.readouterr().err
    (tmp_path / "docs" / "extra.md").write_text("<!-- BEGIN schema -->\n<!-- END schema -->\n", encoding="utf-8")
    assert any("schema is generated in more than one page" in p for p in docs.placement_problems(
        {path: path.read_text(encoding="utf-8") for path in docs.doc_files(tmp_path)}))


def test_relative_links_lead_somewhere():
    broken = [line for path in PAGES for line in links.broken_links(path)]
    assert broken == [], "fix these links (python -m tools.links lists them)"


def test_broken_links_are_found(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A `code` heading: yes\n", encoding="utf-8")
    page.write_text("# Page\n\n[ok](other.md#a-code-heading-yes) [self](#page) [web](https://example.org/x)\n"
                    "[gone](missing.md) [no anchor](other.md#nope) [not here](#nowhere) `[code](missing.md)`\n"
                    "```\n[fenced](missing.md)\n```\n", encoding="utf-8")
    assert links.broken_links(page) == ["page.md: missing.md (no such file)", "page.md: other.md#nope (no such heading)",
                                        "page.md: #nowhere (no such heading)"]


def test_markers_of_other_sections_are_left_alone():
    text = "intro\n<!-- BEGIN someone-else -->\nkept\n<!-- END someone-else -->\n<!-- BEGIN content-types -->\nold\n<!-- END content-types -->\n"
    out = docs.render(text)
    assert "<!-- BEGIN someone-else -->\nkept\n<!-- END someone-else -->" in out
    assert "| `video` |" in out and "\nold\n" not in out


def test_quick_start_is_the_two_make_commands():
    text = README.read_text(encoding="utf-8")
    quick = text[text.index("## Quick start"):]
    quick = quick[: quick.index("\n## ", 5)]
    assert "    make demo\n    make test\n" in quick


def _registry_models() -> list:
    """Every model whose fields the registry reads: the common base, the defaults, every kind
    and the models nested in them (a manual entry, selectors)."""
    found = [SourceBase, Defaults]
    stack = list(docs.load_kinds().values())
    while stack:
        model = stack.pop()
        if model in found:
            continue
        found.append(model)
        for field in model.model_fields.values():
            stack += [m for m in docs.submodels(field.annotation) if m not in found]
    return found


@pytest.mark.parametrize("model", _registry_models(), ids=lambda m: m.__name__)
def test_every_registry_field_is_documented(model):
    undocumented = [name for name in model.model_fields
                    if not docs.field_description(model, name) and not SourceBase.model_fields.get(name)]
    undocumented += [name for name in model.model_fields
                     if name in SourceBase.model_fields and not docs.field_description(SourceBase, name)]
    assert undocumented == [], f"{model.__name__}: add a docstring under {undocumented}"


def test_no_generated_field_row_is_empty():
    section = docs.registry_section()
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) > 80
    assert [r for r in rows if r.rstrip().endswith("|  |") or r.rstrip().endswith("| |")] == []


def test_field_descriptions_are_the_docstrings_under_the_fields():
    """tools.docs reads the docstring under each field (as pydantic's use_attribute_docstrings
    would), the nearest declaration winning, and Field(description=...) first."""
    from pydantic import BaseModel, Field

    class Base(BaseModel):
        a: int = 1
        """The a.

        Second paragraph."""
        b: int = 2
        c: int = Field(2, description="explicit")

    class Sub(Base):
        b: int = 3  # redeclared without a docstring
        d: int = 4
        """The d."""

    assert docs.field_description(Sub, "a") == "The a.\n\nSecond paragraph."
    assert docs.field_description(Sub, "b") is None
    assert docs.field_description(Sub, "c") == "explicit"
    assert docs.field_description(Sub, "d") == "The d."
    assert docs.field_description(SourceBase, "id").startswith("Unique slug naming the source")


def test_examples_in_the_registry_models_are_valid():
    examples = {k: m.example for k, m in docs.load_kinds().items() if isinstance(getattr(m, "example", None), str)}
    assert {"feed", "youtube", "manual"} <= set(examples)
    for kind, example in examples.items():
        sources = YAML(typ="safe").load(example)
        registry = parse_registry({"sources": sources}, f"example of {kind}")
        assert {s.kind for s in registry.sources} == {kind}


def test_schema_section_lists_every_table():
    section = docs.schema_section()
    for table in ("resources", "resource_sources", "sources", "harvest_runs", "raw_entries"):
        assert f"#### `{table}`" in section
    assert "| `last_changed` | text (not null) | Last time its content changed (UTC) |" in section
