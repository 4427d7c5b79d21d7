"""How strongly a page supports each topic it was given, to drop topics it mentions in passing.

A topic given by one single-word keyword in a page's description (or excerpt), with no other
keyword or weak word of the topic anywhere ("copyright" once in a page about accessible text
requests, "consortium" once in a reciprocal borrowing agreement), is a *passing mention* when
another topic of the page has stronger evidence: a keyword in the title, a phrase, or several
words. Such a topic is dropped; alone on a page it stays (a feed described as "news and
copyright tips from the Lakeside consortium" keeps all three). Topics that say what kind of
page it is (``page_kind: true`` in the taxonomy: news, events) and the systems topic are never
passing mentions. On labelled pages the rules had not seen, topics given by a lone word beside
a stronger one were wrong four times in five (docs/topics.md, "What was tried").

The decision reads the reasons classification gives (``keyword "X" in description``), and
looks again at the texts only for the few topics whose reason is one such word.
"""

from __future__ import annotations

import re

from pipeline.keyindex import Hits, leftmost
from pipeline.keywords import FIELDS, Term, _add_weak, _mask
from pipeline.taxonomy import SYSTEMS_TOPIC

_KEYWORD_REASON = re.compile(r'keyword "([^"]*)" in (\w+)$')
_ONE_WORD = re.compile(r"\w+")


def _lone_word(term: Term, reason: str, texts: dict[str, str], hits: Hits | None = None) -> bool | None:
    """True: the topic rests on one single-word keyword outside the title and nothing else;
    False: stronger evidence (a keyword in the title, a phrase, a second keyword or a weak
    word); None: weak words alone (neither). ``hits``: the term's occurrences found by the
    keyword index, when they decided it (then no regular expression runs)."""
    m = _KEYWORD_REASON.match(reason)
    if m is None:
        return None if reason.startswith("weak words") else False
    word, field_name = m.groups()
    if field_name == FIELDS[0] or not _ONE_WORD.fullmatch(word):
        return False
    if hits is not None:
        return _distinct_words(hits) < 2
    found: dict[str, tuple[str, str]] = {}
    for f in FIELDS:
        text = _mask(texts.get(f) or "", term.exclude_pattern)
        if not text:
            continue
        patterns = (term.weak_pattern,) if f == FIELDS[0] else (term.pattern, term.weak_elsewhere_pattern)
        for pattern in patterns:
            for hit in pattern.finditer(text) if pattern is not None else ():
                _add_weak(found, hit.group(0), f)
                if len(found) > 1:
                    return False
    return True


def _distinct_words(hits: Hits) -> int:
    """How many different keywords and weak words (up to 2) the regular expressions of the loop
    above would meet: keywords outside the title, and weak words anywhere (title keywords are
    weak outside the title), each kind leftmost and non-overlapping as ``finditer`` meets them."""
    found: dict[str, tuple[str, str]] = {}
    keywords = [(fi, p, order, e) for fi, p, tier, order, e in hits.strong if fi and not tier]
    for occurrences in (keywords, hits.weak):
        for fi, p, e in leftmost(occurrences):
            _add_weak(found, hits.texts[fi][p:e], FIELDS[fi])
            if len(found) > 1:
                return 2
    return len(found)


def passing_mentions(topics: dict[str, Term], given: list[str], reasons: dict[str, str],
                     texts: dict[str, str], indexed: dict[str, Hits] | None = None) -> set[str]:
    """The topics of ``given`` that the page mentions only in passing (see the module's doc).
    ``indexed``: topic → its occurrences, for the topics the keyword index decided."""
    lone: set[str] = set()
    stronger = False
    for tid in given:
        term = topics.get(tid)
        if term is None:
            continue
        kind = _lone_word(term, reasons.get(tid, ""), texts, (indexed or {}).get(tid))
        if kind:
            if not term.page_kind and tid != SYSTEMS_TOPIC:
                lone.add(tid)
        elif kind is False:
            stronger = True
    return lone if stronger else set()
