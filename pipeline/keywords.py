"""Finding a vocabulary's keywords in text: each term's keywords, weak words and exclusions
as regular expressions, and what their matches say (a term's reason). The index of all of
them by the words a text must have where they start, which finds every term's occurrences
in one pass, is ``pipeline.keyindex``.

Pure and independent of the taxonomy file format (``pipeline.taxonomy``) and of what the
occurrences mean (``pipeline.classify``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

#: The text fields classification reads, in the order their matches are reported.
FIELDS = ("title", "description", "excerpt")
DEFAULT_MIN_WEAK = 2


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


class Triggers:
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
    #: strong in a title, weak anywhere else: a title names a page's subject, a passing mention
    #: in a description does not
    title_keywords: list[str] = field(default_factory=list)
    #: contexts that rule the term out: when one occurs anywhere in the texts, the term is not given
    not_with: list[str] = field(default_factory=list)
    #: the topic says what kind of page it is (news, an event), not what it is about: one word of
    #: it is never a passing mention (pipeline.topic_evidence)
    page_kind: bool = False

    def __post_init__(self) -> None:
        self._strong = Triggers(self.keywords + self.title_keywords)
        self._weak = Triggers(self.weak + self.title_keywords)

    # The term's regular expressions are compiled when first needed: the keyword index
    # (:class:`KeywordIndex`) classifies without them, except for the few terms it cannot
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

    @cached_property
    def title_pattern(self) -> re.Pattern[str] | None:
        return compile_words(self.title_keywords, self.match_case)

    @cached_property
    def weak_elsewhere_pattern(self) -> re.Pattern[str] | None:
        """The weak words and the title keywords: what counts as weak outside the title."""
        return compile_words(self.weak + self.title_keywords, self.match_case)

    @cached_property
    def not_with_pattern(self) -> re.Pattern[str] | None:
        return compile_words(self.not_with, self.match_case)

    def blocked(self, texts: dict[str, str]) -> bool:
        """True when one of the term's ``not_with`` contexts occurs in the (unmasked) texts."""
        p = self.not_with_pattern
        return p is not None and any(p.search(t) for t in texts.values() if t)

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
        strong = (self.pattern is not None or self.title_pattern is not None) and (
            lowered is None or self._strong.present(lowered, words))
        weak = self.weak_elsewhere_pattern is not None and (lowered is None or self._weak.present(lowered, words))
        if not strong and not weak:
            return None
        if self.blocked(texts):
            return None
        masked = {f: _mask(t, self.exclude_pattern) for f, t in texts.items() if t}
        if strong:
            for f in FIELDS:
                m = self.pattern.search(masked.get(f, "")) if self.pattern is not None else None
                if f == FIELDS[0] and self.title_pattern is not None:
                    t = self.title_pattern.search(masked.get(f, ""))
                    if t and (m is None or t.start() < m.start()):
                        m = t
                if m:
                    return f'{noun} "{m.group(0)}" in {f}'
        if weak:
            found: dict[str, tuple[str, str]] = {}
            for f in FIELDS:
                pattern = self.weak_pattern if f == FIELDS[0] else self.weak_elsewhere_pattern
                for m in pattern.finditer(masked.get(f, "")) if pattern is not None else ():
                    _add_weak(found, m.group(0), f)
            return _weak_reason(found, self.min_weak)
        return None


def lowered_words(texts: dict[str, str]) -> tuple[str, set[str]]:
    lowered = "\n".join(t for t in texts.values() if t).lower()
    return lowered, set(_WORD.findall(lowered))


def _add_weak(found: dict[str, tuple[str, str]], text: str, field_name: str) -> None:
    """Count a weak word once however it is spaced, hyphenated or put in the plural ("e-books",
    "ebooks", "ebook"): compact form → (the first form met, lower-cased, its field)."""
    form = _WEAK_FORMS.get(text)
    if form is None:
        form = _weak_form(text)
    found.setdefault(form[0], (form[1], field_name))


#: A keyword or weak word as met in a text -> its (compact form, form shown): the same few
#: words recur from text to text. Bounded: it starts over at :data:`WEAK_FORMS_KEPT`.
_WEAK_FORMS: dict[str, tuple[str, str]] = {}
WEAK_FORMS_KEPT = 100_000


def _weak_form(text: str) -> tuple[str, str]:
    shown = _SEPARATORS.sub(" ", text.lower())
    key = shown.replace(" ", "")
    if len(key) > 3 and key.endswith("s"):
        key = key[:-1]  # "reports" and "report" are one word
    if len(_WEAK_FORMS) >= WEAK_FORMS_KEPT:
        _WEAK_FORMS.clear()
    _WEAK_FORMS[text] = (key, shown)
    return key, shown


def _weak_reason(found: dict[str, tuple[str, str]], min_weak: int) -> str | None:
    """The reason for a topic given by weak words (see :func:`_add_weak`), or None."""
    if len(found) < min_weak:
        return None
    words_found = list(found.values())[: max(min_weak, 3)]
    where = sorted({f for _w, f in words_found}, key=FIELDS.index)
    return "weak words " + " + ".join(f'"{w}"' for w, _f in words_found) + " in " + ", ".join(where)


_SEPARATORS = re.compile(r"[\s\-]+")
_WORD_CHAR = re.compile(r"\w")
