"""Classification measured on the hand-labelled set (tools/labelled.yaml), with floors.

The figures are in docs/topics.md ("How well it classifies"); `python -m tools.evaluate` prints them.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import pytest

from pipeline.keywords import Term
from pipeline.taxonomy import Taxonomy, default_taxonomy
from tools.evaluate import LABELLED_PATH, evaluate, evidence_kind, load_labelled, main

#: Floors: micro-averaged over every topic. The test split was never used to tune the taxonomy.
FLOORS = {"all": (0.85, 0.78), "test": (0.80, 0.72)}


@pytest.fixture(scope="module")
def items():
    return load_labelled(LABELLED_PATH)


def test_labelled_set_is_large_varied_and_valid(items):
    tax = default_taxonomy()
    assert len(items) >= 150
    assert sum(1 for i in items if i["split"] == "test") >= 50
    assert sum(1 for i in items if not i["topics"]) >= 15  # negatives
    assert len({i["title"] for i in items}) == len(items)
    labelled = {t for i in items for t in i["topics"]}
    assert labelled == set(tax.topics)  # every topic is measured
    for i in items:
        assert set(i) <= {"split", "title", "description", "topics", "systems"}
        assert set(i["topics"]) <= set(tax.topics) and set(i.get("systems", [])) <= set(tax.systems)


@pytest.mark.parametrize("split", ["all", "test"])
def test_precision_and_recall_floors(items, split):
    chosen = [i for i in items if split == "all" or i["split"] == split]
    report = evaluate(chosen, default_taxonomy())
    precision, recall = FLOORS[split]
    assert report.micro.precision >= precision, report.errors
    assert report.micro.recall >= recall, report.errors
    assert report.systems_micro.precision >= 0.95 and report.systems_micro.recall >= 0.95


def test_every_well_supported_topic_is_usable(items):
    report = evaluate(items, default_taxonomy())
    for tid, score in report.topics.items():
        if score.support >= 8:
            assert score.f1 >= 0.6, (tid, score)


def test_floors_catch_a_careless_taxonomy(items):
    """Treating every generic word as decisive must fail the precision floor."""
    tax = default_taxonomy()
    careless = Taxonomy(
        {t.id: Term(t.id, t.label, t.description, t.keywords + t.weak, [], t.exclude) for t in tax.topics.values()},
        tax.systems,
    )
    assert evaluate(items, careless).micro.precision < FLOORS["all"][0]


def test_evaluate_script_prints_the_table():
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["--split", "test", "--markdown"]) == 0
    text = buf.getvalue()
    assert "| Copyright and fair use |" in text and "**all topics (micro)**" in text


def test_evidence_kinds_are_read_from_the_reasons():
    assert evidence_kind('keyword "Lending" in title') == "keyword in title"
    assert evidence_kind('keyword "copyright" in description') == "one-word keyword elsewhere"
    assert evidence_kind('keyword "fair use" in excerpt') == "phrase elsewhere"
    assert evidence_kind('keyword "e-books" in description') == "phrase elsewhere"
    assert evidence_kind('weak words "data" + "report" in title') == "weak words"
    assert evidence_kind("names the system Tipasa") == "names a system"


def test_evidence_and_later_items_only(items):
    """``--evidence`` counts the topics given right and wrong by kind of evidence, and ``--from N``
    measures the items from the N-th on (pages labelled after a taxonomy it is run with)."""
    later = [i for i in items[100:] if i["split"] == "dev"]
    report = evaluate(later, default_taxonomy())
    given = sum(s.tp + s.fp for s in report.topics.values())
    assert sum(r + w for r, w in report.evidence.values()) == given > 0
    assert sum(w for _r, w in report.evidence.values()) == sum(s.fp for s in report.topics.values())
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["--labelled", str(LABELLED_PATH), "--split", "dev", "--evidence", "--from", "100"]) == 0
    text = buf.getvalue()
    assert f"split dev: {len(later)} labelled items" in text
    assert "evidence" in text and "keyword in title" in text
