"""An index of a vocabulary's keywords, weak words and exclusions by the words a text must
have where they start (:class:`KeywordIndex`): it finds every term's occurrences in one pass
over a text's words, with the same answers as the terms' regular expressions
(``pipeline.keywords``; tests/test_classify_index.py compares the two).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from pipeline.keywords import _WORD, _WORD_CHAR, FIELDS, Term, _add_weak, _is_exact_case, _weak_reason, _word_pattern


def index_keys(word: str) -> list[tuple[str, str]] | None:
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


def leftmost(occurrences) -> Iterator[tuple[int, int, int]]:
    """(field, start, end) of ``occurrences`` (field, start, order, end), sorted, keeping in each
    field only the leftmost non-overlapping ones, as ``finditer`` meets them."""
    current, end = -1, -1
    for fi, p, _order, e in sorted(occurrences):
        if fi != current:
            current, end = fi, -1
        if p < end:
            continue
        end = e
        yield fi, p, e


class Hits:
    """Where one term's keywords occur in a text: strong ones as (field number, start, tier,
    order, end), tier 0 for keywords and 1 for title keywords; weak ones and exclusions as
    (field number, start, order, end)."""

    __slots__ = ("strong", "weak", "excluded", "blocked", "texts")

    def __init__(self, texts: list[str]):
        self.strong: list[tuple[int, int, int, int, int]] = []
        self.weak: list[tuple[int, int, int, int]] = []
        self.excluded: list[tuple[int, int, int, int]] = []
        self.blocked = False
        self.texts = texts

    def reason(self, term: Term, noun: str) -> str | None:
        """What :meth:`Term.match` answers, from the occurrences: the first strong keyword
        in field order (leftmost, a keyword before a title keyword, then first in the term's
        longest-first order), else the weak words as ``finditer`` would meet them (leftmost,
        non-overlapping)."""
        if self.blocked:
            return None
        if self.strong:
            fi, p, _tier, _order, e = min(self.strong)
            return f'{noun} "{self.texts[fi][p:e]}" in {FIELDS[fi]}'
        if not self.weak:
            return None
        found: dict[str, tuple[str, str]] = {}
        enough = max(term.min_weak, 3)  # words past these change nothing _weak_reason says
        for fi, p, e in leftmost(self.weak):
            _add_weak(found, self.texts[fi][p:e], FIELDS[fi])
            if len(found) >= enough:
                break
        return _weak_reason(found, term.min_weak)


class _Anchored:
    """A keyword's anchored pattern, compiled the first time it is tried: most keywords are
    one plain word, found without their pattern, and compiling all 2,400 of a taxonomy's took
    0.15 s of every harvest (of each parse worker) that classified anything."""

    __slots__ = ("source", "match")

    def __init__(self, source: str):
        self.source = source
        self.match = self._compile_and_match

    def _compile_and_match(self, text: str, pos: int) -> re.Match[str] | None:
        self.match = re.compile(self.source).match
        return self.match(text, pos)


#: What most words of a text can start: nothing (:meth:`KeywordIndex._lookup`).
_NOTHING: tuple[tuple, tuple, bool] = ((), (), False)


class KeywordIndex:
    """Every keyword, weak word and exclusion of a taxonomy, indexed by the words a text
    must have where it starts. Finding a taxonomy's keywords in a text then costs one pass
    over its words, a dictionary lookup each, and an anchored match per candidate — instead
    of one regular-expression scan of the whole text per term (several times slower, since
    Python's ``re`` tries every alternative of a case-insensitive pattern at every position)."""

    def __init__(self, systems: list[Term], topics: list[Term]):
        self.terms = [*systems, *topics]
        self.is_system = [i < len(systems) for i in range(len(self.terms))]
        self.nouns = ["alias" if s else "keyword" for s in self.is_system]
        self.slow_terms: set[int] = set()
        # an entry: (term slot, kind 0 strong / 1 weak / 2 exclusion / 3 title keyword / 4 not_with, order, anchored pattern,
        # what the text's next word must start with, or "")
        Entry = tuple[int, int, int, _Anchored, str]
        # case-insensitive keys are lower-cased and looked up with the lower-cased text
        self.words: tuple[dict[str, list[Entry]], dict[str, list[Entry]]] = ({}, {})
        self.prefixes: tuple[dict[str, list[tuple[str, Entry]]], dict[str, list[tuple[str, Entry]]]] = ({}, {})
        self.symbols: list[tuple[str, bool, Entry]] = []
        #: entries of keywords that are one plain word (only word characters)
        self._plain: set[Entry] = set()
        for slot, term in enumerate(self.terms):
            # the order compile_words gives the alternatives: longest first; weak words and
            # title keywords share one order (outside titles they form one pattern)
            weak_order = {w: n for n, w in enumerate(sorted((w for w in term.weak + term.title_keywords if w),
                                                            key=len, reverse=True))}
            lists = (term.keywords, term.weak, term.exclude, term.title_keywords, term.not_with)
            for kind, words in enumerate(lists):
                for order, w in enumerate(sorted((w for w in words if w), key=len, reverse=True)):
                    if kind in (1, 3):
                        order = weak_order[w]
                    exact_case = term.match_case or _is_exact_case(w)
                    src = w if exact_case else w.lower()
                    keys = index_keys(src)
                    if keys is None or (not exact_case and len(src) != len(w)):
                        self.slow_terms.add(slot)
                        continue
                    pattern = _Anchored(_word_pattern(src) + r"(?!\w)")
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
        #: (a word, the next word) -> the entries to try there (:meth:`_tried`)
        self._pairs: dict[tuple[str, str], tuple[Entry, ...]] = {}
        #: term slot -> an index of that term alone without its exclusions (:meth:`masked`)
        self._alone: dict[int, KeywordIndex] = {}
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
        found = (tuple(plain), tuple(other), cased)
        if found == _NOTHING:
            found = _NOTHING  # the most common answer, told apart by identity in :meth:`find`
        self._starts[w] = found
        return found

    def _tried(self, w: str, following: str, other: tuple) -> tuple:
        """Of the entries the word ``w`` can start (``other``: see :meth:`_lookup`), those to
        try when the text's next word is ``following``: a keyword of several words only where
        its next word starts as it must. Remembered by word pair, as :meth:`_lookup` remembers
        words: a word such as "the" or "lending" starts dozens of such keywords."""
        tried = tuple(e for e in other if not e[4] or following.startswith(e[4]))
        if len(self._pairs) >= self.MEMO_WORDS:
            self._pairs.clear()
        self._pairs[(w, following)] = tried
        return tried

    def find(self, texts: dict[str, str]) -> dict[int, Hits] | None:
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
        pairs = self._pairs
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
                known = starts.get(w)
                if known is None:
                    known = lookup(w)
                if known is _NOTHING:
                    continue
                plain, other, cased = known
                if plain:
                    p = runs[i].start()
                    e = p + len(w)
                    for slot, kind, order in plain:
                        matched.append((slot, kind, order, fi, p, e))
                if other:
                    p = runs[i].start()
                    following = "" if i == last else words[i + 1]
                    tried = pairs.get((w, following))
                    if tried is None:
                        tried = self._tried(w, following, other)
                    for entry in tried:
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
            if self.symbols:
                self._find_symbols(fi, orig, low, matched)
        return self._group(matched, originals)

    def masked(self, slot: int, hits: Hits) -> Hits | None:
        """The term's occurrences in the texts its exclusions mask, as :meth:`Term.match` reads
        them: each exclusion ``sub``'s pattern would replace (leftmost, non-overlapping) turned
        to spaces, and the term's keywords found again, by an index of this term alone, in the
        fields that changed; the other fields' occurrences stand. None: not readable so."""
        texts = list(hits.texts)
        for fi, p, e in leftmost(hits.excluded):
            texts[fi] = texts[fi][:p] + " " * (e - p) + texts[fi][e:]
        changed = {fi for fi, _p, _o, _e in hits.excluded}
        alone = self._alone.get(slot)
        if alone is None:
            term = replace(self.terms[slot], exclude=[], not_with=[])
            alone = self._alone[slot] = KeywordIndex([term], [])
        found = alone.find({FIELDS[fi]: texts[fi] for fi in changed})
        if found is None or alone.slow_terms:
            return None
        out = Hits(texts)
        out.blocked = hits.blocked  # the contexts are looked for in the texts as they are
        out.strong = [h for h in hits.strong if h[0] not in changed]
        out.weak = [h for h in hits.weak if h[0] not in changed]
        again = found.get(0)
        if again is not None:
            out.strong += again.strong
            out.weak += again.weak
        return out

    def _find_symbols(self, fi: int, orig: str, low: str, matched: list) -> None:
        """Keywords that start with a non-word character, wherever it stands alone."""
        for char, exact_case, entry in self.symbols:
            text = orig if exact_case else low
            p = text.find(char)
            while p != -1:
                if p == 0 or not _WORD_CHAR.match(text[p - 1]):
                    m = entry[3].match(text, p)
                    if m is not None:
                        matched.append((entry[0], entry[1], entry[2], fi, p, m.end()))
                p = text.find(char, p + 1)

    @staticmethod
    def _group(matched: list[tuple[int, int, int, int, int, int]], originals: list[str]) -> dict[int, Hits]:
        """The occurrences by term, sorted into strong, weak, excluding and blocking ones."""
        found: dict[int, Hits] = {}
        for slot, kind, order, fi, p, e in matched:
            hits = found.get(slot)
            if hits is None:
                hits = found[slot] = Hits(originals)
            if kind == 0:
                hits.strong.append((fi, p, 0, order, e))
            elif kind == 3 and fi == 0:
                hits.strong.append((fi, p, 1, order, e))
            elif kind in (1, 3):
                hits.weak.append((fi, p, order, e))
            elif kind == 2:
                hits.excluded.append((fi, p, order, e))
            else:
                hits.blocked = True
        return found


def _next_word_start(word: str, key: str) -> str:
    """For a keyword of several words found through its first word ``key``: how the next
    word of the text must start ("" when that cannot be said simply). The text's word is
    exactly ``key``, so the keyword's pieces up to it are spent; the text's next run of word
    characters begins with the leading word characters of what comes next in the keyword:
    its next hyphenated piece ("on-site": key "on", then "site"; the hyphen's one separator
    character lies between) or, once the first word's pieces are spent ("onsite"), its second
    word."""
    groups = re.split(r"\s+", word.rstrip("*"))
    parts = groups[0].split("-")
    for k in range(len(parts)):
        if "".join(parts[: k + 1]) == key:
            rest = parts[k + 1] if k + 1 < len(parts) else (groups[1] if len(groups) > 1 else "")
            run = _WORD.match(rest)
            return run.group() if run else ""
    return ""
