"""Search that understands ILL wording: a query rewritten before it reaches the full-text index.

A query is read as a sequence of *concepts*, longest phrase first: a phrase the taxonomy knows
(a topic's label or keyword, a system's label or alias, old names included) also finds the
resources of that topic or system; a phrase of a synonym group (``data/search_words.yaml``:
"ILL" = "interlibrary loan", "rule of 5" = "rule of five") finds every phrase of its group; a
type word ("video", "webinar") also finds resources of that type; any other word is itself.
Stemming is the index's own (``resources_fts`` uses FTS5's porter tokenizer). A resource
matches a query when it matches every concept (:class:`Plan`); the hub falls back to any
concept when none matches them all.

:func:`suggestions` offers, for a search that found nothing, spelling fixes (close words of the
taxonomy and the synonyms) and the topics and systems whose names come close.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ruamel.yaml import YAML

from catalog.labels import term_labels

WORDS_FILE = Path(__file__).resolve().parent.parent / "data" / "search_words.yaml"
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
#: The longest phrase (in words) looked up as one concept.
MAX_PHRASE = 6


def tokens(text: object) -> list[str]:
    """The words of ``text`` as the index sees them (lower case, punctuation dropped)."""
    return [t.lower() for t in _TOKEN.findall(str(text or ""))]


def _key(words: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """A phrase's lookup key: its words with a plural ``s`` dropped ("slips" = "slip")."""
    return tuple(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words)


@dataclass
class Meaning:
    """What a phrase stands for: the phrases that say the same, and the topics, systems and
    content types it names."""

    phrases: set[str] = field(default_factory=set)
    topics: set[str] = field(default_factory=set)
    systems: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)

    def merge(self, other: Meaning) -> None:
        self.phrases |= other.phrases
        self.topics |= other.topics
        self.systems |= other.systems
        self.types |= other.types


@dataclass(frozen=True)
class Concept:
    """One part of a query: what was typed and everything it finds."""

    text: str
    phrases: tuple[str, ...]
    topics: tuple[str, ...] = ()
    systems: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    def fts(self) -> str:
        """The concept as an FTS5 expression: its phrases joined by OR."""
        return " OR ".join(f'"{p}"' for p in self.phrases)


@dataclass(frozen=True)
class Plan:
    """A query read as concepts; empty when it has no words."""

    q: str
    concepts: tuple[Concept, ...]

    def fts_any(self) -> str:
        """Every phrase of every concept, joined by OR (ranks a resource by its text)."""
        return " OR ".join(f'"{p}"' for c in self.concepts for p in c.phrases)

    def expansions(self) -> list[str]:
        """What the query was widened to, in words ("rule of 5" also finds "rule of five")."""
        labels = lexicon().labels
        out = []
        for c in self.concepts:
            extra = [f"“{p}”" for p in c.phrases if p != " ".join(tokens(c.text))][:4]
            typed = c.text.lower()
            extra += [f"the topic {labels['topics'].get(t, t)}" for t in c.topics
                      if labels["topics"].get(t, t).lower() != typed][:3]
            extra += [f"the system {labels['systems'].get(s, s)}" for s in c.systems
                      if labels["systems"].get(s, s).lower() != typed][:2]
            extra += [f"every {t}" for t in c.types]
            if extra:
                out.append(f"“{c.text}” also finds " + ", ".join(extra))
        return out


@dataclass
class Lexicon:
    meanings: dict[tuple[str, ...], Meaning]
    stopwords: frozenset[str]
    vocabulary: list[str]
    labels: dict[str, dict[str, str]]


def _add(meanings: dict[tuple[str, ...], Meaning], phrase: str, meaning: Meaning) -> None:
    words = tokens(phrase)
    if not words:
        return
    meanings.setdefault(_key(words), Meaning()).merge(meaning)


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The phrases the search knows, from the taxonomy and ``data/search_words.yaml``."""
    from pipeline.taxonomy import default_taxonomy

    data = YAML(typ="safe").load(WORDS_FILE.read_text(encoding="utf-8")) or {}
    meanings: dict[tuple[str, ...], Meaning] = {}
    for group in data.get("synonyms") or []:
        phrases = {" ".join(tokens(p)) for p in group if tokens(p)}
        for p in group:
            _add(meanings, p, Meaning(phrases=set(phrases)))
    for ctype, words in (data.get("types") or {}).items():
        for w in words:
            _add(meanings, w, Meaning(phrases={" ".join(tokens(w))}, types={ctype}))
    tax = default_taxonomy()
    for t in tax.topics.values():
        for p in [t.label, *t.keywords]:
            if _case_sensitive(p, t.match_case):
                continue
            _add(meanings, p, Meaning(phrases={" ".join(tokens(p))}, topics={t.id}))
    for s in tax.systems.values():
        # a system's names in any capitals: in an ILL catalog, "alma" or "rapido" asks for the system
        # (its match_case guards the classifier against "alma mater" in running text, not a query)
        names = [s.label, s.id.replace("-", " "), *s.keywords]
        phrases = {" ".join(tokens(n)) for n in names if tokens(n) and not _case_sensitive(n, False)}
        for n in names:
            if not _case_sensitive(n, False):
                _add(meanings, n, Meaning(phrases=set(phrases), systems={s.id}))
    for group in data.get("synonyms") or []:  # a group shares what any of its phrases names
        keys = {_key(tokens(p)) for p in group if tokens(p)}
        shared = Meaning()
        for k in keys:
            shared.merge(meanings[k])
        for k in keys:
            meanings[k] = Meaning(set(shared.phrases), set(shared.topics), set(shared.systems), set(shared.types))
    vocabulary = sorted({w for key in meanings for w in key} | {w for m in meanings.values() for p in m.phrases
                                                                for w in p.split()})
    return Lexicon(meanings, frozenset(data.get("stopwords") or ()), vocabulary, term_labels())


def _case_sensitive(phrase: str, match_case: bool) -> bool:
    """A keyword only its exact capitals mean (CCC, ADA): never matched in lower-case queries."""
    letters = [c for c in phrase if c.isalpha()]
    return match_case or (bool(letters) and len(letters) <= 3 and all(c.isupper() for c in letters))


def plan(q: str) -> Plan:
    """``q`` read as concepts, the longest known phrase first; stopwords are left out when
    other words remain."""
    lex = lexicon()
    words = tokens(q)
    concepts: list[Concept] = []
    plain: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(MAX_PHRASE, len(words) - i), 0, -1):
            meaning = lex.meanings.get(_key(words[i:i + n]))
            if meaning is not None:
                typed = " ".join(words[i:i + n])
                concepts.append(Concept(typed, tuple(sorted(meaning.phrases | {typed}, key=lambda p: (p != typed, p))),
                                        tuple(sorted(meaning.topics)), tuple(sorted(meaning.systems)),
                                        tuple(sorted(meaning.types))))
                i += n
                break
        else:
            plain.append(words[i])
            i += 1
    kept = [w for w in plain if w not in lex.stopwords]
    if not kept and not concepts:
        kept = plain
    concepts.extend(Concept(w, (w,)) for w in kept)
    return Plan(q, tuple(concepts))


def spelling_fixes(q: str) -> list[str]:
    """The query with its unknown words replaced by the closest words the search knows
    (at most one suggestion; none when every word is known or nothing comes close)."""
    lex = lexicon()
    known = set(lex.vocabulary)
    words = tokens(q)
    fixed, changed = [], False
    for w in words:
        if w in known or w in lex.stopwords or len(w) < 4 or w.isdigit():
            fixed.append(w)
            continue
        close = difflib.get_close_matches(w, lex.vocabulary, n=1, cutoff=0.75)
        fixed.append(close[0] if close else w)
        changed = changed or bool(close)
    return [" ".join(fixed)] if changed else []


def suggestions(q: str) -> dict[str, list]:
    """For a search that found nothing: spelling fixes, and the topics and systems whose
    names or keywords come close to one of its words (``{"spelling", "topics", "systems"}``)."""
    lex = lexicon()
    words = [w for w in tokens(q) if w not in lex.stopwords] or tokens(q)
    fixes = spelling_fixes(q)
    candidates = set(words) | {w for f in fixes for w in f.split()}
    topics: set[str] = set()
    systems: set[str] = set()
    for key, meaning in lex.meanings.items():
        if any(difflib.SequenceMatcher(None, w, k).ratio() >= 0.8 for w in candidates for k in key if len(w) >= 3):
            topics |= meaning.topics
            systems |= meaning.systems
    return {"spelling": fixes,
            "topics": sorted(topics, key=lambda t: lex.labels["topics"].get(t, t))[:8],
            "systems": sorted(systems, key=lambda s: lex.labels["systems"].get(s, s))[:8]}


def topic_id(value: object) -> str:
    """A topic as a visitor may write it (its id ``copyright``, its name as the front page shows
    it, "Copyright and fair use", in any capitals, or a word that names exactly one topic, such as
    "fair use") as its id; anything else is returned as it was given (and matches nothing)."""
    text = str(value or "").strip()
    labels = lexicon().labels["topics"]
    if text in labels:
        return text
    by_name = {label.lower(): key for key, label in labels.items()}
    if text.lower() in by_name:
        return by_name[text.lower()]
    concepts = plan(text).concepts
    if len(concepts) == 1 and len(concepts[0].topics) == 1:
        return concepts[0].topics[0]
    return text
