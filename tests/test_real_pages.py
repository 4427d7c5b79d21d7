"""Classification measured on real pages (tools/real_pages.yaml): the floors it must meet on the
test part, which is never used to tune the taxonomy, and the checks that keep the set honest.

`python -m tools.evaluate --split test` prints the same figures; docs/topics.md shows them.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from pipeline.taxonomy import default_taxonomy
from tools.docs import ROOT
from tools.evaluate import (
    REAL_PAGES_PATH,
    SPLIT_ONCE_ITEMS,
    Report,
    evaluate,
    format_report,
    load_labelled,
    split_of_new_item,
    stratified_split,
)

#: Micro-averaged precision and recall over item-topic pairs of the test part.
FLOOR = 0.90
#: Precision and recall of every topic (a topic's precision counts once it is predicted).
TOPIC_FLOOR = 0.75
#: Share of off-topic test pages that get no topic at all.
OFF_TOPIC_FLOOR = 0.90
#: Precision and recall of the systems named (ILLiad, Tipasa, ...), micro-averaged.
SYSTEMS_FLOOR = 0.95
#: What the classifier reaches on the test part of the first 396 items (precision 0.79, recall 0.79,
#: since passing mentions are dropped; 0.76 / 0.81 before), less a margin where there was room: it may
#: not slip back on those pages while the floors are ahead of it.
HELD_PRECISION, HELD_RECALL = 0.79, 0.79
#: The items those figures were measured on; later items (split by URL) joined the test part after.
HELD_ITEMS = 396
#: What it reaches today on the whole test part, 249 items with 62 pages added after the rules were
#: last tuned (precision 0.770, recall 0.812 after the fourth round; 0.765 / 0.812 before it, 0.73 /
#: 0.83 before passing mentions were dropped).
HELD_ALL_PRECISION, HELD_ALL_RECALL = 0.77, 0.81


@pytest.fixture(scope="module")
def items():
    return load_labelled(REAL_PAGES_PATH)


@pytest.fixture(scope="module")
def test_report(items) -> Report:
    return evaluate([i for i in items if i["split"] == "test"], default_taxonomy())


def test_the_set_is_large_varied_and_valid(items):
    tax = default_taxonomy()
    assert len(items) >= 300
    negatives = [i for i in items if not i["topics"]]
    assert len(negatives) >= 0.15 * len(items)
    assert len({i["url"] for i in items}) == len(items)
    assert len({re.sub(r"^https?://(www\d?\.)?", "", i["url"]).split("/")[0] for i in items}) >= 150  # many sites
    for i in items:
        assert set(i) <= {"url", "split", "title", "summary", "description", "topics", "systems", "note"}, i
        assert re.match(r"https?://", i["url"]) and i["title"].strip() and i["split"] in ("dev", "test")
        assert i["summary"].endswith(".") and len(i["summary"]) < 300, i["title"]  # one sentence of ours
        assert set(i["topics"]) <= set(tax.topics) and set(i.get("systems") or []) <= set(tax.systems), i["title"]
        if i.get("systems"):
            assert "systems" in i["topics"], i["title"]  # a page naming a system is about systems
    for part in ("dev", "test"):
        chosen = [i for i in items if i["split"] == part]
        assert len(chosen) >= 140
        assert {t for i in chosen for t in i["topics"]} == set(tax.topics)  # every topic is measured in both
        assert sum(1 for i in chosen if not i["topics"]) >= 25


def test_the_split_is_the_one_recorded(items):
    """The parts are the seeded split of the first items, and URL-drawn for any added later:
    no item moved from test to dev."""
    first = items[:SPLIT_ONCE_ITEMS]
    assert [i["split"] for i in first] == stratified_split(first)
    for i in items[SPLIT_ONCE_ITEMS:]:
        assert i["split"] == split_of_new_item(i["url"]), i["url"]
    assert Counter(i["split"] for i in first) == {"dev": 158, "test": 152}
    assert Counter(i["split"] for i in items) == {"dev": 272, "test": 249}


def test_new_items_are_split_by_their_url():
    parts = Counter(split_of_new_item(f"https://example.org/page/{n}") for n in range(400))
    assert 150 < parts["test"] < 250  # about half each
    assert split_of_new_item("https://example.org/a") == split_of_new_item("https://example.org/a")


def test_test_part_holds_its_ground(items, test_report):
    """Off-topic pages and systems meet their floors; topics keep what they reach today, on the
    test pages the held figures were first measured on and on the whole test part."""
    table = format_report(test_report, default_taxonomy(), title="split test")
    print(table)  # the test part's figures, shown with `pytest -s` or on failure
    m, sm = test_report.micro, test_report.systems_micro
    assert test_report.off_topic_clean >= OFF_TOPIC_FLOOR, table
    assert sm.precision >= SYSTEMS_FLOOR and sm.recall >= SYSTEMS_FLOOR, table
    assert m.precision >= HELD_ALL_PRECISION and m.recall >= HELD_ALL_RECALL, table
    first = evaluate([i for i in items[:HELD_ITEMS] if i["split"] == "test"], default_taxonomy()).micro
    assert first.precision >= HELD_PRECISION and first.recall >= HELD_RECALL, table


@pytest.mark.xfail(strict=True, reason="not met yet: topic precision 0.77 and recall 0.81 on the test part, several "
                   "topics under 0.75 (docs/topics.md); strict, so it fails the day the floors are met and the "
                   "marker must go")
def test_test_part_meets_the_floors(test_report):
    tax = default_taxonomy()
    table = format_report(test_report, tax, title="split test")
    m = test_report.micro
    assert m.precision >= FLOOR and m.recall >= FLOOR, table
    low = [(t, round(s.precision, 2), round(s.recall, 2)) for t, s in test_report.topics.items()
           if (s.tp + s.fp and s.precision < TOPIC_FLOOR) or (s.support and s.recall < TOPIC_FLOOR)]
    assert not low, f"topics under {TOPIC_FLOOR}: {low}\n{table}"


def test_docs_show_the_current_test_figures(test_report):
    table = format_report(test_report, default_taxonomy(), markdown=True, title="split test")
    docs = (ROOT / "docs" / "topics.md").read_text(encoding="utf-8")
    assert table in docs, "docs/topics.md is stale: paste `python -m tools.evaluate --split test --markdown`"


def test_systems_with_ordinary_names_are_not_found_in_ordinary_text():
    from pipeline.classify import match_text

    tax = default_taxonomy()

    def systems(text):
        return set(match_text(tax, {"title": text}).systems)

    assert systems("Teaching The Odyssey and the Iliad in ninth grade") == set()
    assert systems("Odyssey of the Mind team meets in the library") == set()
    assert systems("Park your Honda Odyssey in the library lot") == set()
    assert systems("Clio Awards for advertising") == set()
    assert systems("Homecoming at my alma mater") == set()
    assert systems("Un relais de poste en Provence") == set()
    assert systems("Ruins of Tipasa, Algeria") == set()
    assert systems("rapido y facil") == set()
    assert systems("Sending articles with Odyssey Helper") == {"odyssey"}
    assert systems("The Odyssey addon") == {"odyssey"}
    assert systems("ClioWeb accounts for patrons") == {"clio"}
    assert systems("WorldCat Resource Sharing moves to WorldShare Interlibrary Loan") == {"worldshare-ill"}
    assert systems("Requests in Rapido and RapidILL") == {"rapido", "rapidill"}
    assert systems("Relais D2D and ILLiad") == {"relais", "illiad"}
