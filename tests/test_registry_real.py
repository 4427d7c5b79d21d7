"""The real registry.yaml: valid, and every source says what it is."""

from __future__ import annotations

import re

from illhub.registry import load_registry
from tests.conftest import ROOT


def test_real_registry_validates():
    registry = load_registry(ROOT / "registry.yaml")
    assert len(registry.sources) >= 7


def test_every_source_has_a_comment_saying_what_it_is():
    lines = (ROOT / "registry.yaml").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*- id: ", line) and line.startswith("  - "):
            above = lines[i - 1].strip()
            assert above.startswith("#") and len(above) > 10, f"registry.yaml:{i + 1}: add a comment above {line.strip()}"
