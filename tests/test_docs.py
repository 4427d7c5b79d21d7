"""README.md: the generated sections match the code; the examples in it are valid."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from illhub.registry import Defaults, ManualEntry, SourceBase, parse_registry
from tests.conftest import ROOT
from tools import docs

README = ROOT / "README.md"


def test_readme_generated_sections_are_up_to_date():
    text = README.read_text(encoding="utf-8")
    assert docs.missing_sections(text) == []
    stale = docs.stale_sections(text)
    assert stale == [], f"README.md is out of date in {stale}: run 'python -m tools.docs' (make docs)"


def test_check_mode_reports_a_stale_readme(tmp_path, capsys):
    text = README.read_text(encoding="utf-8")
    stale = tmp_path / "README.md"
    stale.write_text(text.replace("| `max_items` |", "| `max_itemz` |"), encoding="utf-8")
    assert docs.main(["--check", "--readme", str(stale)]) == 1
    assert "registry-fields" in capsys.readouterr().err
    assert docs.main(["--readme", str(stale)]) == 0  # regenerating fixes it ...
    assert stale.read_text(encoding="utf-8") == text  # ... and touches nothing else
    assert docs.main(["--check", "--readme", str(stale)]) == 0


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


@pytest.mark.parametrize("model", [SourceBase, Defaults, ManualEntry, *[
    m for k, m in docs.load_kinds().items() if k in ("feed", "youtube", "manual")]])
def test_every_core_registry_field_is_documented(model):
    undocumented = [name for name in model.model_fields
                    if not docs.field_description(model, name) and not SourceBase.model_fields.get(name)]
    undocumented += [name for name in model.model_fields
                     if name in SourceBase.model_fields and not docs.field_description(SourceBase, name)]
    assert undocumented == [], f"{model.__name__}: add a docstring under {undocumented}"


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
