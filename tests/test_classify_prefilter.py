"""The substring prefilter of classification never changes a result: it only skips terms
whose keywords cannot match."""

from __future__ import annotations

import random

from pipeline.classify import match_text
from pipeline.keywords import Triggers as _Triggers
from pipeline.taxonomy import default_taxonomy


def _texts():
    tax = default_taxonomy()
    rng = random.Random(3)
    words = []
    for term in list(tax.topics.values()) + list(tax.systems.values()):
        words += term.keywords + term.weak + term.exclude
    words = [w.rstrip("*") for w in words if w]
    fillers = ["the", "library", "request", "our", "team", "new", "policy", "and", "for", "Interlibrary", "loan"]
    for _ in range(400):
        parts = [rng.choice(words if rng.random() < 0.4 else fillers) for _ in range(rng.randint(3, 25))]
        if rng.random() < 0.3:
            parts = [p.upper() if rng.random() < 0.5 else p.replace(" ", "-") for p in parts]
        text = " ".join(parts)
        yield {"title": text[: len(text) // 2], "description": text[len(text) // 2 :], "excerpt": ""}


def test_prefilter_changes_nothing(monkeypatch):
    tax = default_taxonomy()
    texts = list(_texts())
    fast = [match_text(tax, t) for t in texts]
    monkeypatch.setattr(_Triggers, "present", lambda self, lowered, words: True)
    slow = [match_text(tax, t) for t in texts]
    assert [(c.topics, c.systems, c.reasons) for c in fast] == [(c.topics, c.systems, c.reasons) for c in slow]
    assert sum(bool(c.topics) for c in fast) > 100  # the texts do exercise the vocabulary
