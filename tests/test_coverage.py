"""`illhub sources --coverage` on a small registry: counts per topic, system and kind, curated
entries counted with their source's topics, disabled sources left out, thin ones flagged."""

from __future__ import annotations

import json

from illhub.coverage import coverage
from illhub.registry import parse_registry
from pipeline.taxonomy import default_taxonomy
from tests.conftest import run_cli

SMALL = {
    "sources": [
        {"id": "a-feed", "name": "A", "kind": "feed", "url": "https://a.example.org/feed/",
         "topics": ["copyright", "news"], "systems": ["illiad"]},
        {"id": "b-crawl", "name": "B", "kind": "crawl", "url": "https://b.example.org/docs/",
         "topics": ["copyright"], "systems": ["illiad", "odyssey"]},
        {"id": "c-off", "name": "C", "kind": "feed", "url": "https://c.example.org/feed/", "enabled": False,
         "topics": ["copyright", "careers"], "systems": ["tipasa"]},
        {"id": "d-curated", "name": "D", "kind": "manual", "topics": ["careers"], "entries": [
            {"url": "https://d.example.org/1", "title": "one", "topics": ["copyright"]},
            {"url": "https://d.example.org/2", "title": "two", "systems": ["tipasa"]},
            {"url": "https://d.example.org/3", "title": "three", "topics": ["careers"]},
        ]},
    ]
}


def test_counts_per_topic_system_and_kind():
    cov = coverage(parse_registry(SMALL), default_taxonomy())
    topics = {r.id: r for r in cov.topics}
    systems = {r.id: r for r in cov.systems}
    kinds = {r.id: r for r in cov.kinds}
    assert (cov.sources, cov.harvested, cov.entries) == (3, 2, 3)  # c-off is disabled
    assert topics["copyright"].sources == ["a-feed", "b-crawl"] and topics["copyright"].entries == 1
    assert topics["copyright"].total == 3 and not topics["copyright"].thin
    # every entry of d-curated counts for careers (its source's topic), once each
    assert topics["careers"].sources == [] and topics["careers"].entries == 3 and not topics["careers"].thin
    assert topics["news"].total == 1 and topics["news"].thin
    assert topics["searching"].total == 0 and topics["searching"].thin
    assert systems["illiad"].total == 2 and not systems["illiad"].thin
    assert systems["odyssey"].total == 1 and systems["odyssey"].thin
    assert systems["tipasa"].total == 1 and systems["tipasa"].thin  # the disabled source does not count
    assert {k: (len(r.sources), r.entries) for k, r in kinds.items()} == {"crawl": (1, 0), "feed": (1, 0),
                                                                          "manual": (1, 3)}
    assert {r.id for r in cov.thin} >= {"news", "searching", "odyssey", "tipasa"}
    assert "copyright" not in {r.id for r in cov.thin}


def test_floors_can_be_raised():
    cov = coverage(parse_registry(SMALL), default_taxonomy(), topic_floor=4, system_floor=3)
    thin = {r.id for r in cov.thin}
    assert "copyright" in thin and "illiad" in thin


def test_cli_coverage_table_json_and_exit_code(tmp_path):
    from ruamel.yaml import YAML

    path = tmp_path / "registry.yaml"
    with path.open("w", encoding="utf-8") as f:
        YAML().dump(SMALL, f)
    table = run_cli("sources", "--coverage", "--registry", str(path))
    assert table.returncode == 1  # thin topics and systems
    assert "3 enabled sources (2 harvested, 1 curated lists with 3 entries)" in table.stdout
    line = next(line for line in table.stdout.splitlines() if " copyright " in line)
    assert [w for w in line.split() if w.isdigit()] == ["2", "1", "3"]  # sources, curated, total
    assert "thin (< 3)" in table.stdout and "thin (< 2)" in table.stdout
    data = json.loads(run_cli("sources", "--coverage", "--json", "--registry", str(path)).stdout)
    copyright_row = next(r for r in data["topics"] if r["id"] == "copyright")
    assert copyright_row == {"id": "copyright", "label": copyright_row["label"], "sources": 2, "curated_entries": 1,
                             "total": 3, "floor": 3, "thin": False, "source_ids": ["a-feed", "b-crawl"]}
    assert "searching" in data["thin"] and "copyright" not in data["thin"]
