"""Topics and systems from the ILL vocabulary in ``data/taxonomy.yaml``.

The vocabulary is validated strictly when loaded (every problem reported at once, each
naming the term and field). Classification is explainable: every topic and system a
resource gets comes with the rule that gave it (``classified_by``), for instance
``keyword "fair use" in title``, ``weak words "statistics" + "turnaround" in description``,
``registry topic of source 'x'`` or ``curated``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from pipeline import yamlcache
from pipeline.resource import Resource

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TAXONOMY_PATH = DATA_DIR / "taxonomy.yaml"
#: The text fields classification reads, in the order their matches are reported.
FIELDS = ("title", "description", "excerpt")
#: How much of a page's body excerpt classification reads.
EXCERPT_CHARS = 1000
#: Topic given to any resource that names a system.
SYSTEMS_TOPIC = "systems"
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
DEFAULT_MIN_WEAK = 2


class TaxonomyError(Exception):
    """The taxonomy cannot be used; ``problems`` lists every reason, one line each."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s)\n" + "\n".join(problems))


# -- the file format -------------------------------------------------------------------

def _check_words(words: list[str]) -> list[str]:
    seen: set[str] = set()
    for i, w in enumerate(words):
        if not w.strip():
            raise ValueError(f"item {i} is empty")
        if w != w.strip():
            raise ValueError(f"{w!r} has leading or trailing spaces")
        if "*" in w[:-1]:
            raise ValueError(f"{w!r}: '*' is only allowed at the end of a keyword")
        if w == "*" or len(w.rstrip("*")) < 2:
            raise ValueError(f"{w!r} is too short to match anything useful")
        if w.lower() in seen:
            raise ValueError(f"{w!r} is listed twice")
        seen.add(w.lower())
    return words


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _TermSpec(_Strict):
    id: str
    label: str = Field(min_length=1, max_length=80)
    description: str = Field(default="", max_length=300)
    exclude: list[str] = Field(default_factory=list)
    match_case: bool = False

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG.match(v):
            raise ValueError(f"{v!r} is not a slug (lower-case letters, digits and single hyphens)")
        return v

    @field_validator("description")
    @classmethod
    def _one_line(cls, v: str) -> str:
        if "\n" in v:
            raise ValueError("must be one line")
        return v

    _words = field_validator("exclude")(classmethod(lambda cls, v: _check_words(v)))


class TopicSpec(_TermSpec):
    description: str = Field(min_length=1, max_length=300)
    keywords: list[str] = Field(default_factory=list)
    weak: list[str] = Field(default_factory=list)
    min_weak: int = Field(default=DEFAULT_MIN_WEAK, ge=1, le=10)

    _kw = field_validator("keywords", "weak")(classmethod(lambda cls, v: _check_words(v)))

    @model_validator(mode="after")
    def _something_to_match(self) -> TopicSpec:
        if not self.keywords and not self.weak and self.id != SYSTEMS_TOPIC:
            raise ValueError("has neither keywords nor weak words: nothing could ever match it")
        both = {w.lower() for w in self.keywords} & {w.lower() for w in self.weak}
        if both:
            raise ValueError(f"lists {', '.join(sorted(both))} as both a keyword and a weak word")
        return self


class SystemSpec(_TermSpec):
    vendor: str | None = None
    aliases: list[str] = Field(min_length=1)

    _kw = field_validator("aliases")(classmethod(lambda cls, v: _check_words(v)))


# -- matching ----------------------------------------------------------------------------

def _word_pattern(word: str) -> str:
    prefix = word.endswith("*")
    word = word.rstrip("*")
    parts = re.split(r"(\s+|-)", word)
    out = []
    for p in parts:
        if not p:
            continue
        if p.isspace():
            out.append(r"[\s\-]+")
        elif p == "-":
            out.append(r"[\s\-]?")
        else:
            out.append(re.escape(p))
    body = "".join(out)
    return body + (r"\w*" if prefix else "")


def _is_exact_case(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return bool(letters) and not any(c.islower() for c in letters)


def compile_words(words: list[str], match_case: bool = False) -> re.Pattern[str] | None:
    """One regex for a list of keywords, longest first, on word boundaries.

    Keywords with no lower-case letter (acronyms) keep their case even when the others are
    matched case-insensitively."""
    words = [w for w in words if w]
    if not words:
        return None
    alternatives = []
    for w in sorted(words, key=len, reverse=True):
        pat = _word_pattern(w)
        if not match_case and _is_exact_case(w):
            pat = f"(?-i:{pat})"
        alternatives.append(pat)
    flags = 0 if match_case else re.IGNORECASE
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", flags)


_WORD = re.compile(r"\w+")


def _trigger(word: str) -> str:
    """The longest literal piece of a keyword, lower-cased: it must occur in any text the
    keyword's pattern matches, so a substring test can rule a term out cheaply."""
    parts = [p for p in re.split(r"[\s\-]+", word.rstrip("*")) if p]
    return max(parts, key=len).lower() if parts else ""


class _Triggers:
    """The literal pieces that must occur for any of some keywords to match.

    A piece made only of word characters (and not a ``prefix*``) stands as a whole token in
    any text the keyword matches, since the patterns match on word boundaries: a set lookup.
    Other pieces are looked for as substrings of the lower-cased text."""

    def __init__(self, keywords: list[str]):
        # A hyphen is optional in matching ("e-book" also matches "ebook"), so the pieces of a
        # hyphenated keyword are looked for as substrings, never as whole words.
        pieces: dict[str, bool] = {}
        for w in keywords:
            t = _trigger(w) if w else ""
            if t:
                pieces[t] = pieces.get(t, False) or w.endswith("*") or "-" in w
        self.words = frozenset(t for t, prefix in pieces.items() if not prefix and _WORD.fullmatch(t))
        self.substrings = tuple(t for t in pieces if t not in self.words)

    def present(self, lowered: str, words: frozenset[str] | set[str] | None) -> bool:
        if words is None:
            return True
        return not self.words.isdisjoint(words) or any(t in lowered for t in self.substrings)


def _mask(text: str, pattern: re.Pattern[str] | None) -> str:
    if pattern is None or not text:
        return text
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


@dataclass
class Term:
    id: str
    label: str
    description: str = ""
    keywords: list[str] = field(default_factory=list)
    weak: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    min_weak: int = DEFAULT_MIN_WEAK
    match_case: bool = False
    vendor: str | None = None

    def __post_init__(self) -> None:
        self._strong = _Triggers(self.keywords)
        self._weak = _Triggers(self.weak)

    # The term's regular expressions are compiled when first needed: the keyword index
    # (:class:`_KeywordIndex`) classifies without them, except for the few terms it cannot
    # index, and a harvest of unchanged sources classifies nothing (compiling all of them
    # took 0.1 s of every harvest's start-up).
    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        return compile_words(self.keywords, self.match_case)

    @cached_property
    def weak_pattern(self) -> re.Pattern[str] | None:
        return compile_words(self.weak, self.match_case)

    @cached_property
    def exclude_pattern(self) -> re.Pattern[str] | None:
        return compile_words(self.exclude, self.match_case)

    def could_match(self, lowered: str, words: frozenset[str] | set[str]) -> bool:
        """False when no keyword can match (none of their literal pieces occurs in the
        lower-cased text or its set of words): the regular expressions are skipped, which
        makes classifying many times faster (benchmarks/storage.py, benchmarks/crawl.py)
        without changing any result (tests/test_classify_prefilter.py)."""
        return self._strong.present(lowered, words) or self._weak.present(lowered, words)

    def match(self, texts: dict[str, str], noun: str = "keyword", *, lowered: str | None = None,
              words: frozenset[str] | set[str] | None = None) -> str | None:
        """The reason this term applies to ``texts`` (field → text), or None.

        ``lowered`` and ``words`` (the lower-cased texts and their set of words) let the
        strong and the weak patterns be skipped when their keywords cannot occur."""
        strong = self.pattern is not None and (lowered is None or self._strong.present(lowered, words))
        weak = self.weak_pattern is not None and (lowered is None or self._weak.present(lowered, words))
        if not strong and not weak:
            return None
        masked = {f: _mask(t, self.exclude_pattern) for f, t in texts.items() if t}
        if strong:
            for f in FIELDS:
                m = self.pattern.search(masked.get(f, ""))
                if m:
                    return f'{noun} "{m.group(0)}" in {f}'
        if weak:
            found: dict[str, str] = {}
            for f in FIELDS:
                for m in self.weak_pattern.finditer(masked.get(f, "")):
                    key = _SEPARATORS.sub(" ", m.group(0).lower())
                    found.setdefault(key, f)
            return _weak_reason(found, self.min_weak)
        return None


def _lowered_words(texts: dict[str, str]) -> tuple[str, set[str]]:
    lowered = "\n".join(t for t in texts.values() if t).lower()
    return lowered, set(_WORD.findall(lowered))


def _weak_reason(found: dict[str, str], min_weak: int) -> str | None:
    """The reason for a topic given by weak words (normalized word → first field), or None."""
    if len(found) < min_weak:
        return None
    words_found = list(found)[: max(min_weak, 3)]
    where = sorted({found[w] for w in words_found}, key=FIELDS.index)
    return "weak words " + " + ".join(f'"{w}"' for w in words_found) + " in " + ", ".join(where)


_SEPARATORS = re.compile(r"[\s\-]+")
_WORD_CHAR = re.compile(r"\w")


def _index_keys(word: str) -> list[tuple[str, str]] | None:
    """Where in a text a keyword can start, as (how, key) pairs: ``("word", w)`` — a word of
    the text equal to w; ``("prefix", w)`` — a word starting with w; ``("symbol", c)`` — the
    non-word character c not preceded by a word character. None: not indexable.

    A hyphen in a keyword may be left out in the text ("e-book" matches "ebook"), so the
    first word of the text can be any run of the keyword's first hyphenated pieces."""
    if not word or not _WORD_CHAR.match(word[0]):
        return [("symbol", word[0])] if word and not word[0].isspace() and word[0] != "-" else None
    prefix = word.endswith("*")
    groups = re.split(r"\s+", word.rstrip("*"))
    parts = groups[0].split("-")
    keys: list[tuple[str, str]] = []
    for k in range(len(parts)):
        joined = "".join(parts[: k + 1])
        run = _WORD.match(joined)
        if run is None:
            return None
        if run.end() < len(joined):  # the text's word ends inside this piece
            keys.append(("word", run.group()))
            break
        last = k == len(parts) - 1
        if last and prefix and len(groups) == 1:
            if len(joined) < 2:
                return None
            keys.append(("prefix", joined))
        else:
            keys.append(("word", joined))
    return keys


class _Hits:
    """Where one term's keywords occur in a text: (field number, start, order, end)."""

    __slots__ = ("strong", "weak", "excluded", "texts")

    def __init__(self, texts: list[str]):
        self.strong: list[tuple[int, int, int, int]] = []
        self.weak: list[tuple[int, int, int, int]] = []
        self.excluded = False
        self.texts = texts

    def reason(self, term: Term, noun: str) -> str | None:
        """What :meth:`Term.match` answers, from the occurrences: the first strong keyword
        in field order (leftmost, then first in the term's longest-first order), else the
        weak words as ``finditer`` would meet them (leftmost, non-overlapping)."""
        if self.strong:
            fi, p, _order, e = min(self.strong)
            return f'{noun} "{self.texts[fi][p:e]}" in {FIELDS[fi]}'
        if not self.weak:
            return None
        found: dict[str, str] = {}
        end = -1
        current = -1
        for fi, p, _order, e in sorted(self.weak):
            if fi != current:
                current, end = fi, -1
            if p < end:
                continue
            found.setdefault(_SEPARATORS.sub(" ", self.texts[fi][p:e].lower()), FIELDS[fi])
            end = e
        return _weak_reason(found, term.min_weak)


class _KeywordIndex:
    """Every keyword, weak word and exclusion of a taxonomy, indexed by the words a text
    must have where it starts. Finding a taxonomy's keywords in a text then costs one pass
    over its words, a dictionary lookup each, and an anchored match per candidate — instead
    of one regular-expression scan of the whole text per term (several times slower, since
    Python's ``re`` tries every alternative of a case-insensitive pattern at every position)."""

    def __init__(self, taxonomy: Taxonomy):
        self.terms = list(taxonomy.systems.values()) + list(taxonomy.topics.values())
        self.is_system = [i < len(taxonomy.systems) for i in range(len(self.terms))]
        self.nouns = ["alias" if s else "keyword" for s in self.is_system]
        self.slow_terms: set[int] = set()
        # an entry: (term slot, kind 0 strong / 1 weak / 2 exclusion, order, anchored pattern,
        # what the text's next word must start with, or "")
        Entry = tuple[int, int, int, re.Pattern[str], str]
        # case-insensitive keys are lower-cased and looked up with the lower-cased text
        self.words: tuple[dict[str, list[Entry]], dict[str, list[Entry]]] = ({}, {})
        self.prefixes: tuple[dict[str, list[tuple[str, Entry]]], dict[str, list[tuple[str, Entry]]]] = ({}, {})
        self.symbols: list[tuple[str, bool, Entry]] = []
        #: entries of keywords that are one plain word (only word characters)
        self._plain: set[Entry] = set()
        for slot, term in enumerate(self.terms):
            for kind, words in enumerate((term.keywords, term.weak, term.exclude)):
                # the order compile_words gives the alternatives: longest first
                for order, w in enumerate(sorted((w for w in words if w), key=len, reverse=True)):
                    exact_case = term.match_case or _is_exact_case(w)
                    src = w if exact_case else w.lower()
                    keys = _index_keys(src)
                    if keys is None or (not exact_case and len(src) != len(w)):
                        self.slow_terms.add(slot)
                        continue
                    pattern = re.compile(_word_pattern(src) + r"(?!\w)")
                    for how, key in keys:
                        entry = (slot, kind, order, pattern, _next_word_start(src, key) if how == "word" else "")
                        if how == "word":
                            self.words[exact_case].setdefault(key, []).append(entry)
                            if key == src:  # the keyword is this one plain word
                                self._plain.add(entry)
                        elif how == "prefix":
                            self.prefixes[exact_case].setdefault(key[:2], []).append((key, entry))
                        else:
                            self.symbols.append((key, exact_case, entry))
        self.any_exact_case = bool(self.words[True] or self.prefixes[True])
        #: A lower-cased word of a text -> the case-insensitive entries it can start, as
        #: ((slot, kind, order) of one-word keywords, the other entries), and whether the word
        #: as written could be an exact-case key; filled as words are met.
        self._starts: dict[str, tuple[tuple[tuple[int, int, int], ...], tuple[Entry, ...], bool]] = {}
        # The lower-case forms of the exact-case keys: a word of the text is one of those keys
        # only if its lower-cased form is one of these. (Not when a key is a prefix, or has a
        # capital sigma, whose lower case depends on the letters around it: every word is tried.)
        cased = self.words[True]
        self._cased_lower: frozenset[str] | None = (
            None if self.prefixes[True] or any("\u03a3" in k for k in cased) else frozenset(k.lower() for k in cased))

    #: Words remembered by :meth:`_lookup` (then it starts over: a catalog's vocabulary).
    MEMO_WORDS = 100_000

    def _lookup(self, w: str) -> tuple[tuple[tuple[int, int, int], ...], tuple, bool]:
        """What the lower-cased word ``w`` of a text can start. A keyword that is one plain
        word (only word characters: no space, hyphen or ``*``) found through its own word
        matches exactly that word — the text's word is a whole run of word characters, so the
        pattern's ``(?!\\w)`` holds — and needs no match; the others keep their patterns."""
        plain: list[tuple[int, int, int]] = []
        other: list = []
        for entry in self.words[False].get(w, ()):
            if entry in self._plain:
                plain.append(entry[:3])
            else:
                other.append(entry)
        other += [e for pre, e in self.prefixes[False].get(w[:2], ()) if w.startswith(pre)]
        cased = self.any_exact_case and (self._cased_lower is None or w in self._cased_lower)
        if len(self._starts) >= self.MEMO_WORDS:
            self._starts.clear()
        found = self._starts[w] = (tuple(plain), tuple(other), cased)
        return found

    def find(self, texts: dict[str, str]) -> dict[int, _Hits] | None:
        """Each term's occurrences in ``texts``; None when the text cannot be read this way
        (its lower-case form differs in length, so positions would not line up)."""
        originals = [texts.get(f) or "" for f in FIELDS]
        lowers = [t.lower() for t in originals]
        if any(len(a) != len(b) for a, b in zip(originals, lowers, strict=True)):
            return None
        # Of the same length, a text and its lower case have their words at the same places
        # (no character's lower case differs in being a word character): a word as written
        # is the original text where the lower-cased word is.
        # (slot, kind, order, field number, start, end)
        matched: list[tuple[int, int, int, int, int, int]] = []
        starts = self._starts
        lookup = self._lookup
        cs_words, cs_prefixes = self.words[True], self.prefixes[True]
        for fi, (orig, low) in enumerate(zip(originals, lowers, strict=True)):
            if not orig:
                continue
            runs = list(_WORD.finditer(low))
            words = [m.group() for m in runs]
            last = len(words) - 1
            cased_at: list[int] = []
            for i, w in enumerate(words):
                # case-insensitive keys against the lower-cased words
                plain, other, cased = starts.get(w) or lookup(w)
                if plain:
                    p = runs[i].start()
                    e = p + len(w)
                    for slot, kind, order in plain:
                        matched.append((slot, kind, order, fi, p, e))
                if other:
                    p = runs[i].start()
                    following = "" if i == last else words[i + 1]
                    for entry in other:
                        if entry[4] and not following.startswith(entry[4]):
                            continue  # a keyword of several words whose next word is not there
                        m = entry[3].match(low, p)
                        if m is not None:
                            matched.append((entry[0], entry[1], entry[2], fi, p, m.end()))
                if cased:
                    cased_at.append(i)
            # exact-case keys against the words as written
            for i in cased_at:
                p, e = runs[i].span()
                x = orig[p:e]
                entries = cs_words.get(x)
                pres = cs_prefixes.get(x[:2])
                if pres:
                    entries = [*(entries or ()), *(en for pre, en in pres if x.startswith(pre))]
                if not entries:
                    continue
                following = "" if i == last else orig[runs[i + 1].start():runs[i + 1].end()]
                for entry in entries:
                    if entry[4] and not following.startswith(entry[4]):
                        continue
                    m = entry[3].match(orig, p)
                    if m is not None:
                        matched.append((entry[0], entry[1], entry[2], fi, p, m.end()))
            for char, exact_case, entry in self.symbols:
                text = orig if exact_case else low
                p = text.find(char)
                while p != -1:
                    if p == 0 or not _WORD_CHAR.match(text[p - 1]):
                        m = entry[3].match(text, p)
                        if m is not None:
                            matched.append((entry[0], entry[1], entry[2], fi, p, m.end()))
                    p = text.find(char, p + 1)
        found: dict[int, _Hits] = {}
        for slot, kind, order, fi, p, e in matched:
            hits = found.get(slot)
            if hits is None:
                hits = found[slot] = _Hits(originals)
            if kind == 0:
                hits.strong.append((fi, p, order, e))
            elif kind == 1:
                hits.weak.append((fi, p, order, e))
            else:
                hits.excluded = True
        return found


def _next_word_start(word: str, key: str) -> str:
    """For a keyword of several words found through its first word ``key``: how the next
    word of the text must start ("" when that cannot be said simply). The text's next run of
    word characters begins with the leading word characters of the keyword's second word."""
    groups = re.split(r"\s+", word.rstrip("*"))
    if len(groups) < 2 or groups[0] != key:
        return ""
    run = _WORD.match(groups[1])
    return run.group() if run else ""


@dataclass
class Classification:
    topics: list[str]
    systems: list[str]
    #: "topic" or "system:id" → why it was given
    reasons: dict[str, str]


@dataclass
class Taxonomy:
    topics: dict[str, Term]
    systems: dict[str, Term]
    path: str = "data/taxonomy.yaml"
    _index: _KeywordIndex | None = field(default=None, init=False, repr=False, compare=False)

    def match_text(self, texts: dict[str, str]) -> Classification:
        """Topics and systems that the text alone supports, with the rule for each.

        Keywords are found through a word index (:class:`_KeywordIndex`): each word of the
        text looks up the few keywords that can start with it, and only those are tried,
        anchored there. The result is the same as :meth:`match_text_reference`, which runs
        every term's regular expressions (tests/test_classify_index.py compares the two);
        rare texts the index cannot read (one whose lower-case form changes length, or a
        term with an exclusion present) go that way."""
        index = self._index
        if index is None:
            index = self._index = _KeywordIndex(self)
        found = index.find(texts)
        if found is None:
            return self.match_text_reference(texts)
        reasons: dict[str, str] = {}
        systems: list[str] = []
        topics: list[str] = []
        lowered_words = None
        for slot, term in enumerate(index.terms):
            hits = found.get(slot)
            if slot in index.slow_terms or (hits is not None and hits.excluded):
                # an exclusion masks text before matching: the term's own expressions decide
                if lowered_words is None:
                    lowered_words = _lowered_words(texts)
                lowered, words = lowered_words
                if not term.could_match(lowered, words):
                    continue
                why = term.match(texts, noun=index.nouns[slot], lowered=lowered, words=words)
            elif hits is None:
                continue
            else:
                why = hits.reason(term, index.nouns[slot])
            if why:
                if index.is_system[slot]:
                    systems.append(term.id)
                    reasons[f"system:{term.id}"] = why
                else:
                    topics.append(term.id)
                    reasons[term.id] = why
        return self._finish(topics, systems, reasons)

    def match_text_reference(self, texts: dict[str, str]) -> Classification:
        """The same as :meth:`match_text`, by running each term's regular expressions over
        the texts (after a cheap test that some keyword's longest piece occurs)."""
        reasons: dict[str, str] = {}
        systems: list[str] = []
        lowered, words = _lowered_words(texts)
        for term in self.systems.values():
            if not term.could_match(lowered, words):
                continue
            why = term.match(texts, noun="alias", lowered=lowered, words=words)
            if why:
                systems.append(term.id)
                reasons[f"system:{term.id}"] = why
        topics: list[str] = []
        for term in self.topics.values():
            if not term.could_match(lowered, words):
                continue
            why = term.match(texts, lowered=lowered, words=words)
            if why:
                topics.append(term.id)
                reasons[term.id] = why
        return self._finish(topics, systems, reasons)

    def _finish(self, topics: list[str], systems: list[str], reasons: dict[str, str]) -> Classification:
        if systems and SYSTEMS_TOPIC in self.topics and SYSTEMS_TOPIC not in topics:
            topics.append(SYSTEMS_TOPIC)
            reasons[SYSTEMS_TOPIC] = "names the system " + ", ".join(self.systems[s].label for s in systems)
        return Classification(topics, systems, reasons)

    def classify(self, resource: Resource) -> tuple[list[str], list[str], dict[str, str]]:
        """Topics, systems and, for each, the rule that matched (the reason)."""
        texts = {f: getattr(resource, f) or "" for f in FIELDS}
        # The body excerpt counts only for its opening: keywords deep in a page are weak
        # evidence, and matching whole excerpts dominated the cost of a crawl.
        texts["excerpt"] = texts["excerpt"][:EXCERPT_CHARS]
        c = self.match_text(texts)
        return c.topics, c.systems, c.reasons


def _problems(e: ValidationError, label: str, path: str) -> list[str]:
    out = []
    for err in e.errors():
        loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in err["loc"]).replace(".[", "[")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "is not a known field (known: id, label, description, keywords, weak, min_weak, exclude, match_case; systems: aliases, vendor)"
        elif err["type"] == "missing":
            msg = "is required"
        out.append(f"{path}: {label}: field '{loc or '(entry)'}': {msg}")
    return out


def parse_taxonomy(data: Any, path: str | Path = "data/taxonomy.yaml") -> Taxonomy:
    """Validate already-loaded YAML; raise :class:`TaxonomyError` listing every problem."""
    path = str(path)
    problems: list[str] = []
    if not isinstance(data, dict):
        raise TaxonomyError(path, [f"{path}: the top level must be a mapping with 'topics:' and 'systems:' lists"])
    for k in sorted(set(data) - {"topics", "systems"}):
        problems.append(f"{path}: top-level field {k!r} is not known (expected 'topics' and 'systems')")
    terms: dict[str, dict[str, Term]] = {"topics": {}, "systems": {}}
    for section, spec_cls, noun in (("topics", TopicSpec, "topic"), ("systems", SystemSpec, "system")):
        raw_list = data.get(section)
        if not isinstance(raw_list, list) or not raw_list:
            problems.append(f"{path}: '{section}' must be a non-empty list of {noun}s")
            continue
        for i, raw in enumerate(raw_list, start=1):
            if not isinstance(raw, dict):
                problems.append(f"{path}: {noun} #{i}: must be a mapping of fields, got {type(raw).__name__}")
                continue
            tid = raw.get("id") if isinstance(raw.get("id"), str) else None
            label = f"{noun} {tid!r} (#{i})" if tid else f"{noun} #{i}"
            try:
                spec = spec_cls.model_validate(raw)
            except ValidationError as e:
                problems += _problems(e, label, path)
                continue
            if spec.id in terms[section]:
                problems.append(f"{path}: {label}: field 'id': {spec.id!r} is already used by another {noun}")
                continue
            if isinstance(spec, TopicSpec):
                term = Term(spec.id, spec.label, spec.description, list(spec.keywords), list(spec.weak),
                            list(spec.exclude), spec.min_weak, spec.match_case)
            else:
                term = Term(spec.id, spec.label, spec.description, list(spec.aliases), [], list(spec.exclude),
                            match_case=spec.match_case, vendor=spec.vendor)
            terms[section][spec.id] = term
    if not problems and SYSTEMS_TOPIC not in terms["topics"]:
        problems.append(f"{path}: topics: the {SYSTEMS_TOPIC!r} topic is required (resources naming a system get it)")
    if problems:
        raise TaxonomyError(path, problems)
    return Taxonomy(terms["topics"], terms["systems"], path)


def load_taxonomy(path: str | Path = TAXONOMY_PATH) -> Taxonomy:
    path = Path(path)
    shown = "data/taxonomy.yaml" if path == TAXONOMY_PATH else str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TaxonomyError(shown, [f"{shown}: cannot read: {e}"]) from None
    try:
        data = yamlcache.load(text, YAML(typ="safe", pure=True).load, "taxonomy")
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise TaxonomyError(shown, [f"{shown}{line}: not valid YAML: {getattr(e, 'problem', None) or e}"]) from None
    return parse_taxonomy(data, shown)


@lru_cache(maxsize=4)
def default_taxonomy() -> Taxonomy:
    return load_taxonomy(TAXONOMY_PATH)


def classify_resource(resource: Resource, source_topics: list[str] | None = None,
                      taxonomy: Taxonomy | None = None, *, source_systems: list[str] | None = None,
                      source_id: str | None = None) -> Resource:
    """Add topics and systems (in place) and return the resource.

    Topics and systems the resource already carries (curated manual entries) are kept as
    ``curated``; a source's registry topics and systems always apply; the text adds the
    rest. Each one's reason is kept in ``resource.extra["classified_by"]``.
    """
    taxonomy = taxonomy or default_taxonomy()
    reasons: dict[str, str] = {}
    for t in resource.topics:
        reasons[t] = "curated"
    for s in resource.systems:
        reasons[f"system:{s}"] = "curated"
    who = f"source {source_id!r}" if source_id else "the source"
    for t in source_topics or []:
        reasons.setdefault(t, f"registry topic of {who}")
    for s in source_systems or []:
        reasons.setdefault(f"system:{s}", f"registry system of {who}")
    topics, systems, matched = taxonomy.classify(resource)
    for k, v in matched.items():
        reasons.setdefault(k, v)
    all_systems = set(resource.systems) | set(source_systems or []) | set(systems)
    all_topics = set(resource.topics) | set(source_topics or []) | set(topics)
    if all_systems and SYSTEMS_TOPIC in taxonomy.topics and SYSTEMS_TOPIC not in all_topics:
        all_topics.add(SYSTEMS_TOPIC)
        reasons[SYSTEMS_TOPIC] = "names a system"
    resource.topics = sorted(all_topics)
    resource.systems = sorted(all_systems)
    resource.extra["classified_by"] = {k: reasons[k] for k in sorted(reasons)}
    return resource
