"""Measure classification against a hand-labelled set: precision and recall per topic.

    python -m tools.evaluate [--labelled tools/real_pages.yaml] [--split dev|test|all]
                             [--taxonomy data/taxonomy.yaml] [--markdown] [--errors]
                             [--evidence] [--from N]

Two labelled sets live beside this tool: ``real_pages.yaml`` (the default), 521 real pages
with summaries written for the set, and ``labelled.yaml``, 169 titles and descriptions the
project wrote itself. Each item has a title, a description (``summary`` in the real pages),
the topics a careful ILL practitioner would give it and the systems it names;
classification sees the text alone (no source defaults). Besides precision and recall the
report gives how many off-topic items (``topics: []``) got no topic at all.
``--errors`` lists every false positive and false negative with the rule that fired, which
is how the classifier is tuned (on the ``dev`` split only). ``--evidence`` counts the topics
given right and wrong by the kind of evidence that gave them (a keyword in the title, a phrase or
a single word in the description, weak words). ``--from N`` measures only the items from the
N-th on: with an older taxonomy (``--taxonomy``, from git) it measures that vocabulary on pages
labelled after it, which it never saw (docs/topics.md). A developer tool: the labelled sets are
read only by this tool and the tests.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from pipeline.classify import match_text
from pipeline.taxonomy import TAXONOMY_PATH, Taxonomy, load_taxonomy

LABELLED_PATH = Path(__file__).resolve().parent / "labelled.yaml"
REAL_PAGES_PATH = Path(__file__).resolve().parent / "real_pages.yaml"


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Report:
    items: int
    topics: dict[str, Score]
    systems: dict[str, Score]
    errors: list[str] = field(default_factory=list)
    #: off-topic items (no topic labelled), and how many of them got no topic
    negatives: int = 0
    negatives_clean: int = 0
    #: the kind of evidence that gave a topic (:func:`evidence_kind`) -> [given right, given wrong]
    evidence: dict[str, list[int]] = field(default_factory=dict)

    @property
    def off_topic_clean(self) -> float:
        """Share of off-topic items that were given no topic."""
        return self.negatives_clean / self.negatives if self.negatives else 1.0

    @staticmethod
    def _micro(scores: dict[str, Score]) -> Score:
        total = Score()
        for s in scores.values():
            total.tp += s.tp
            total.fp += s.fp
            total.fn += s.fn
        return total

    @property
    def micro(self) -> Score:
        return self._micro(self.topics)

    @property
    def systems_micro(self) -> Score:
        return self._micro(self.systems)

    @property
    def macro_precision(self) -> float:
        used = [s for s in self.topics.values() if s.tp + s.fp]
        return sum(s.precision for s in used) / len(used) if used else 1.0

    @property
    def macro_recall(self) -> float:
        used = [s for s in self.topics.values() if s.support]
        return sum(s.recall for s in used) / len(used) if used else 1.0


def load_labelled(path: str | Path = LABELLED_PATH) -> list[dict[str, Any]]:
    """The items of a labelled set; a real page's ``summary`` is its ``description``."""
    data = YAML(typ="safe", pure=True).load(Path(path).read_text(encoding="utf-8"))
    items = list(data["items"])
    for item in items:
        if "summary" in item and "description" not in item:
            item["description"] = item["summary"]
    return items


#: The seed of the one random split of the real pages into dev and test.
SPLIT_SEED = 23
#: How many items the real pages had when they were split; later items are split by URL.
SPLIT_ONCE_ITEMS = 310


def stratified_split(items: list[dict[str, Any]], seed: int = SPLIT_SEED) -> list[str]:
    """The split of the real pages, item by item: stratified by each item's rarest topic (items
    with no topic form one stratum); each stratum, in file order, is shuffled by one
    ``random.Random(seed)`` and alternates between the parts from a part drawn by it."""
    freq = Counter(t for i in items for t in i["topics"])
    strata: dict[str, list[int]] = defaultdict(list)
    for n, item in enumerate(items):
        key = min(item["topics"], key=lambda t: (freq[t], t)) if item["topics"] else "(none)"
        strata[key].append(n)
    rng = random.Random(seed)
    parts = [""] * len(items)
    for key in sorted(strata):
        members = strata[key]
        rng.shuffle(members)
        first = rng.choice(["dev", "test"])
        other = "test" if first == "dev" else "dev"
        for k, n in enumerate(members):
            parts[n] = first if k % 2 == 0 else other
    return parts


def split_of_new_item(url: str) -> str:
    """The part of an item added after the split: drawn from its URL, so adding items never
    moves the ones already split."""
    return "test" if int(hashlib.sha256(f"illhub-real-pages:{url}".encode()).hexdigest()[:8], 16) % 2 else "dev"


def evidence_kind(reason: str) -> str:
    """What kind of evidence a classification reason shows: a keyword in the title, a phrase or
    a single word in a description (or excerpt), weak words, or named systems."""
    if reason.startswith("weak words"):
        return "weak words"
    if reason.startswith("names the system"):
        return "names a system"
    word, _, where = reason.partition('" in ')
    if where == "title":
        return "keyword in title"
    one = word.partition('"')[2].isalnum()
    return "one-word keyword elsewhere" if one else "phrase elsewhere"


def evaluate(items: list[dict[str, Any]], taxonomy: Taxonomy) -> Report:
    topics = {t: Score() for t in taxonomy.topics}
    systems = {s: Score() for s in taxonomy.systems}
    errors: list[str] = []
    negatives = negatives_clean = 0
    evidence: dict[str, list[int]] = {}
    for item in items:
        got = match_text(taxonomy, {"title": item.get("title") or "", "description": item.get("description") or ""})
        want_t, got_t = set(item.get("topics") or []), set(got.topics)
        if not want_t:
            negatives += 1
            negatives_clean += not got_t
        want_s, got_s = set(item.get("systems") or []), set(got.systems)
        unknown = (want_t - set(topics)) | (want_s - set(systems))
        if unknown:
            raise ValueError(f"labelled item {item.get('title')!r}: unknown topic or system {sorted(unknown)}")
        for t in got_t:
            evidence.setdefault(evidence_kind(got.reasons.get(t, "")), [0, 0])[t not in want_t] += 1
        for bucket, want, have, prefix in ((topics, want_t, got_t, ""), (systems, want_s, got_s, "system:")):
            for t in want & have:
                bucket[t].tp += 1
            for t in have - want:
                bucket[t].fp += 1
                errors.append(f"FP {prefix}{t:<18} {got.reasons.get(prefix + t, '')}  <- {item['title']}")
            for t in want - have:
                bucket[t].fn += 1
                errors.append(f"FN {prefix}{t:<18} <- {item['title']} | {item.get('description', '')}")
    return Report(len(items), topics, systems, errors, negatives, negatives_clean, evidence)


def format_report(report: Report, taxonomy: Taxonomy, *, markdown: bool = False, title: str = "") -> str:
    lines = []
    if markdown:
        lines += [f"**{title}** ({report.items} items)" if title else f"{report.items} items", "",
                  "| topic | support | precision | recall | F1 |", "|---|---:|---:|---:|---:|"]
        for tid, s in report.topics.items():
            lines.append(f"| {taxonomy.topics[tid].label} | {s.support} | {s.precision:.2f} | {s.recall:.2f} | {s.f1:.2f} |")
        m, sm = report.micro, report.systems_micro
        lines.append(f"| **all topics (micro)** | {m.support} | {m.precision:.2f} | {m.recall:.2f} | {m.f1:.2f} |")
        lines.append(f"| all topics (macro) | | {report.macro_precision:.2f} | {report.macro_recall:.2f} | |")
        lines.append(f"| **systems (micro)** | {sm.support} | {sm.precision:.2f} | {sm.recall:.2f} | {sm.f1:.2f} |")
        if report.negatives:
            lines += ["", f"Off-topic items given no topic: {report.negatives_clean} of {report.negatives} "
                          f"({report.off_topic_clean:.0%})."]
        return "\n".join(lines)
    lines.append(f"{title + ': ' if title else ''}{report.items} labelled items")
    lines.append(f"{'topic':<22}{'support':>8}{'tp':>5}{'fp':>5}{'fn':>5}{'precision':>11}{'recall':>8}{'F1':>7}")
    for tid, s in report.topics.items():
        lines.append(f"{tid:<22}{s.support:>8}{s.tp:>5}{s.fp:>5}{s.fn:>5}{s.precision:>11.2f}{s.recall:>8.2f}{s.f1:>7.2f}")
    for name, s in (("ALL TOPICS (micro)", report.micro), ("SYSTEMS (micro)", report.systems_micro)):
        lines.append(f"{name:<22}{s.support:>8}{s.tp:>5}{s.fp:>5}{s.fn:>5}{s.precision:>11.2f}{s.recall:>8.2f}{s.f1:>7.2f}")
    lines.append(f"{'all topics (macro)':<22}{'':>8}{'':>15}{report.macro_precision:>11.2f}{report.macro_recall:>8.2f}")
    if report.negatives:
        lines.append(f"off-topic items given no topic: {report.negatives_clean} of {report.negatives} "
                     f"({report.off_topic_clean:.0%})")
    return "\n".join(lines)


def format_evidence(report: Report) -> str:
    """The topics given right and wrong by the kind of evidence that gave them."""
    lines = [f"{'evidence':<28}{'right':>7}{'wrong':>7}{'precision':>11}"]
    for kind, (right, wrong) in sorted(report.evidence.items()):
        lines.append(f"{kind:<28}{right:>7}{wrong:>7}{right / (right + wrong):>11.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--labelled", default=str(REAL_PAGES_PATH),
                    help="the labelled set (YAML) [default: tools/real_pages.yaml; also tools/labelled.yaml]")
    ap.add_argument("--taxonomy", default=str(TAXONOMY_PATH), help="the taxonomy to evaluate")
    ap.add_argument("--split", choices=("dev", "test", "all"), default="all")
    ap.add_argument("--markdown", action="store_true", help="a Markdown table (as in docs/topics.md)")
    ap.add_argument("--errors", action="store_true", help="list false positives and negatives")
    ap.add_argument("--evidence", action="store_true", help="topics given right and wrong by kind of evidence")
    ap.add_argument("--from", dest="start", type=int, default=0, metavar="N",
                    help="only the items from the N-th on (0-based), e.g. those labelled after a taxonomy")
    args = ap.parse_args(argv)
    taxonomy = load_taxonomy(args.taxonomy)
    items = load_labelled(args.labelled)[args.start:]
    splits = ("dev", "test", "all") if args.split == "all" else (args.split,)
    out = []
    for split in splits:
        chosen = [i for i in items if split == "all" or i.get("split") == split]
        report = evaluate(chosen, taxonomy)
        out.append(format_report(report, taxonomy, markdown=args.markdown, title=f"split {split}"))
        if args.evidence:
            out.append(format_evidence(report))
        if args.errors:
            out.append("\n".join(report.errors))
    sys.stdout.write("\n\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
