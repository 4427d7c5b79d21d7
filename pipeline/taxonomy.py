"""The ILL vocabulary in ``data/taxonomy.yaml``: topics and systems, each with its keywords.

The vocabulary is validated strictly when loaded (every problem reported at once, each
naming the term and field). What a text's words say about it is ``pipeline.classify``'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml.error import YAMLError

from pipeline import safeyaml, yamlcache
from pipeline.keyindex import KeywordIndex
from pipeline.keywords import DEFAULT_MIN_WEAK, Term

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TAXONOMY_PATH = DATA_DIR / "taxonomy.yaml"
#: Topic given to any resource that names a system.
SYSTEMS_TOPIC = "systems"
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class TaxonomyError(Exception):
    """The taxonomy cannot be used; ``problems`` lists every reason, one line each."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s)\n" + "\n".join(problems))


# -- the file format -------------------------------------------------------------------

def _check_slug(v: str) -> str:
    if not SLUG.match(v):
        raise ValueError(f"{v!r} is not a slug (lower-case letters, digits and single hyphens)")
    return v


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

    _slug = field_validator("id")(classmethod(lambda cls, v: _check_slug(v)))

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
    title_keywords: list[str] = Field(default_factory=list)
    weak: list[str] = Field(default_factory=list)
    min_weak: int = Field(default=DEFAULT_MIN_WEAK, ge=1, le=10)
    not_in: list[str] = Field(default_factory=list)
    page_kind: bool = False

    _kw = field_validator("keywords", "title_keywords", "weak")(
        classmethod(lambda cls, v: _check_words(v)))

    @model_validator(mode="after")
    def _something_to_match(self) -> TopicSpec:
        if not self.keywords and not self.weak and not self.title_keywords and self.id != SYSTEMS_TOPIC:
            raise ValueError("has neither keywords nor weak words: nothing could ever match it")
        lists = {"a keyword": self.keywords, "a title keyword": self.title_keywords, "a weak word": self.weak}
        names = list(lists)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                both = {w.lower() for w in lists[a]} & {w.lower() for w in lists[b]}
                if both:
                    raise ValueError(f"lists {', '.join(sorted(both))} as both {a} and {b}")
        return self


class ContextSpec(_Strict):
    """A kind of page (a job posting, a children's program) that rules some topics out."""
    id: str
    label: str = Field(min_length=1, max_length=80)
    words: list[str] = Field(min_length=1)

    _slug = field_validator("id")(classmethod(lambda cls, v: _check_slug(v)))
    _words = field_validator("words")(classmethod(lambda cls, v: _check_words(v)))


class SystemSpec(_TermSpec):
    vendor: str | None = None
    aliases: list[str] = Field(min_length=1)

    _kw = field_validator("aliases")(classmethod(lambda cls, v: _check_words(v)))


@dataclass
class Taxonomy:
    topics: dict[str, Term]
    systems: dict[str, Term]
    path: str = "data/taxonomy.yaml"
    _index: KeywordIndex | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def index(self) -> KeywordIndex:
        """Every term's keywords indexed by the words they start with (built when first needed)."""
        if self._index is None:
            self._index = KeywordIndex(list(self.systems.values()), list(self.topics.values()))
        return self._index


def _problems(e: ValidationError, label: str, path: str) -> list[str]:
    out = []
    for err in e.errors():
        loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in err["loc"]).replace(".[", "[")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = ("is not a known field (known: id, label, description, keywords, title_keywords, weak, min_weak, "
                   "exclude, not_in, page_kind, match_case; systems: aliases, vendor; contexts: id, label, words)")
        elif err["type"] == "missing":
            msg = "is required"
        out.append(f"{path}: {label}: field '{loc or '(entry)'}': {msg}")
    return out


def _entries(raw_list: list, spec_cls: type[BaseModel], noun: str, path: str,
             problems: list[str]) -> Iterator[tuple[str, Any]]:
    """(label, validated spec) for each entry of a section; every problem goes to ``problems``:
    an entry that is not a mapping, a field that does not validate, an id already used."""
    seen: set[str] = set()
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
        if spec.id in seen:
            problems.append(f"{path}: {label}: field 'id': {spec.id!r} is already used by another {noun}")
            continue
        seen.add(spec.id)
        yield label, spec


def _parse_contexts(raw_list: Any, path: str, problems: list[str]) -> dict[str, list[str]]:
    """The optional ``contexts:`` section: kinds of pages, by id, and the words that show them."""
    if raw_list is None:
        return {}
    if not isinstance(raw_list, list):
        problems.append(f"{path}: 'contexts' must be a list of contexts")
        return {}
    return {spec.id: list(spec.words) for _label, spec in _entries(raw_list, ContextSpec, "context", path, problems)}


def parse_taxonomy(data: Any, path: str | Path = "data/taxonomy.yaml") -> Taxonomy:
    """Validate already-loaded YAML; raise :class:`TaxonomyError` listing every problem."""
    path = str(path)
    problems: list[str] = []
    if not isinstance(data, dict):
        raise TaxonomyError(path, [f"{path}: the top level must be a mapping with 'topics:' and 'systems:' lists"])
    for k in sorted(set(data) - {"topics", "systems", "contexts"}):
        problems.append(f"{path}: top-level field {k!r} is not known (expected 'topics', 'systems' and 'contexts')")
    contexts = _parse_contexts(data.get("contexts"), path, problems)
    terms: dict[str, dict[str, Term]] = {"topics": {}, "systems": {}}
    for section, spec_cls, noun in (("topics", TopicSpec, "topic"), ("systems", SystemSpec, "system")):
        raw_list = data.get(section)
        if not isinstance(raw_list, list) or not raw_list:
            problems.append(f"{path}: '{section}' must be a non-empty list of {noun}s")
            continue
        for label, spec in _entries(raw_list, spec_cls, noun, path, problems):
            if isinstance(spec, TopicSpec):
                unknown = [c for c in spec.not_in if c not in contexts]
                if unknown:
                    problems.append(f"{path}: {label}: field 'not_in': {', '.join(map(repr, unknown))} is not a "
                                    f"context (known: {', '.join(sorted(contexts)) or 'none'})")
                    continue
                not_with = list(dict.fromkeys(w for c in spec.not_in for w in contexts[c]))
                term = Term(spec.id, spec.label, spec.description, list(spec.keywords), list(spec.weak),
                            list(spec.exclude), spec.min_weak, spec.match_case,
                            title_keywords=list(spec.title_keywords), not_with=not_with, page_kind=spec.page_kind)
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
        data = yamlcache.load(text, safeyaml.parse, "taxonomy")  # no aliases, bounded nesting
    except YAMLError as e:
        raise TaxonomyError(shown, [safeyaml.problem_line(e, shown)]) from None
    return parse_taxonomy(data, shown)


@lru_cache(maxsize=4)
def default_taxonomy() -> Taxonomy:
    return load_taxonomy(TAXONOMY_PATH)


