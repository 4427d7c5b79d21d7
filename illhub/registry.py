"""The source registry as a whole: its defaults, loading and validating it once, at the edge.

Every problem in ``registry.yaml`` is reported at once, each naming the source id and
field. Nothing downstream ever sees raw YAML. The fields of each kind of source are its
model's, in ``harvesters/kinds/<kind>.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from ruamel.yaml.error import YAMLError

from harvesters.kinds import KINDS
from harvesters.source import SLUG, FieldProblem, SourceBase, Strict, check_schedule
from illhub.registry_text import Locator, suggest, yaml_problem
from pipeline import safeyaml, yamlcache
from pipeline.taxonomy import Taxonomy, default_taxonomy
from pipeline.urls import loose_url_key


class RegistryError(Exception):
    """The registry cannot be used; ``problems`` lists every reason, one line each."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s)\n" + "\n".join(problems))


class Defaults(Strict):
    """The registry's optional top-level `defaults:` mapping."""

    schedule: str = "nightly"
    """Schedule of every source that gives none."""
    link_check_schedule: str = "weekly"
    """When stored links are checked."""
    contact: str | None = None
    """A URL or e-mail address where site owners reach whoever runs this hub, sent in the User-Agent (set it: without it the User-Agent names only illhub)."""

    _check_schedule = field_validator("schedule", "link_check_schedule")(
        classmethod(lambda cls, v: check_schedule(v))
    )


class Registry(BaseModel):
    path: str
    defaults: Defaults
    sources: list[SourceBase]

    def get(self, source_id: str) -> SourceBase:
        for s in self.sources:
            if s.id == source_id:
                return s
        raise KeyError(source_id)

    def enabled(self) -> list[SourceBase]:
        return [s for s in self.sources if s.enabled]


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = []
    for p in loc:
        parts.append(f"[{p}]" if isinstance(p, int) else (("." if parts else "") + str(p)))
    return "".join(parts) or "(entry)"


def _all_fields() -> dict[str, list[str]]:
    """Field name → the kinds that have it."""
    fields: dict[str, list[str]] = {}
    for name, k in sorted(KINDS.items()):
        for f in k.model.model_fields:
            fields.setdefault(f, []).append(name)
    return fields


def _unknown_field(name: str, model: type[BaseModel] | None, kind: str | None) -> str:
    known = list(model.model_fields) if model is not None else list(_all_fields())
    hint = suggest(name, known)
    elsewhere = [k for k in _all_fields().get(name, []) if k != kind]
    if not hint and elsewhere and model is not None:
        hint = f" of a {kind} source (it is a field of {', '.join(elsewhere)})"
    return f"is not a known field{hint} (see docs/registry.md for each kind's fields)"


def _messages(e: ValidationError, model: type[BaseModel] | None = None,
              kind: str | None = None) -> list[tuple[tuple[Any, ...], str]]:
    out = []
    for err in e.errors():
        msg = err["msg"]
        msg = msg.removeprefix("Value error, ")
        loc = tuple(err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, FieldProblem):
            loc = (*loc, cause.field)
        if err["type"] == "extra_forbidden":
            top = model if len(loc) == 1 else None
            msg = (_unknown_field(str(loc[-1]), top, kind) if top is not None
                   else "is not a known field (check the spelling; see docs/registry.md for each kind's fields)")
        elif err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "literal_error":
            msg = f"is {err.get('input')!r}, expected {msg.removeprefix('Input should be ')}"
        elif err["type"] == "too_short" and isinstance(err.get("input"), list):
            msg = "must list at least one item"
        out.append((loc, msg))
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RegistryError(path, [f"{path}: file not found (pass --registry PATH)"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise RegistryError(path, [f"{path}: cannot read: {e}"]) from None


def _parse_text(text: str, path: Path) -> Any:
    try:
        # Aliases and deep nesting are refused while parsing, before anything walks the data.
        return yamlcache.load(text, safeyaml.parse, "registry")
    except YAMLError as e:
        raise RegistryError(path, [yaml_problem(e, str(path))]) from None


def load_yaml(path: Path) -> Any:
    return _parse_text(_read(path), path)


class _Common(SourceBase):
    """The fields every source has, checked when the source's kind is unknown (its own fields
    cannot be, but the common ones still can: every problem at once)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    kind: str | None = None


class _Problems:
    """The problems found, each ``path[:line]: where: what`` (the line when the text is known)."""

    def __init__(self, path: str | Path, text: str | None):
        self.path = path
        self.lines = Locator(text)
        self.found: list[str] = []

    def top(self, message: str) -> None:
        self.found.append(f"{self.path}: {message}")

    def source(self, index: int, label: str, loc: tuple[Any, ...], message: str) -> None:
        line = self.lines.line(index, loc)
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        field = f" field '{_field_name(loc)}':" if loc else ""
        self.found.append(f"{where}: {label}:{field} {message}")


def _check_vocabulary(raw: dict[str, Any], taxonomy: Taxonomy, report: Any) -> None:
    """Topics and systems named by a source (and by its curated entries) that the taxonomy
    lacks, read from the raw data: reported even when other fields are wrong."""

    def check(values: Any, loc: tuple[Any, ...], what: str, known: list[str], listed: bool) -> None:
        if not isinstance(values, list):
            return
        for t in values:
            if isinstance(t, str) and SLUG.match(t) and t not in known:
                also = f" (known: {', '.join(known)})" if listed else ""
                report(loc, f"{t!r} is not a {what} in data/taxonomy.yaml{also}{suggest(t, known)}")

    topics, systems = list(taxonomy.topics), list(taxonomy.systems)
    check(raw.get("topics"), ("topics",), "topic", topics, True)
    check(raw.get("systems"), ("systems",), "system", systems, True)
    entries = raw.get("entries")
    for j, entry in enumerate(entries if isinstance(entries, list) else []):
        if isinstance(entry, dict):
            check(entry.get("topics"), ("entries", j, "topics"), "topic", topics, False)
            check(entry.get("systems"), ("entries", j, "systems"), "system", systems, False)


def _check_source(i: int, raw: dict[str, Any], label: str, taxonomy: Taxonomy,
                  problems: _Problems) -> SourceBase | None:
    """Source number ``i`` (0-based) validated as its kind, every problem reported: the common
    fields even when the kind is unknown, the vocabulary even when other fields are wrong."""

    def report(loc: tuple[Any, ...], message: str) -> None:
        problems.source(i, label, loc, message)

    kind = raw.get("kind")
    model = KINDS[kind].model if isinstance(kind, str) and kind in KINDS else None
    src = None
    if model is None:
        what = "is required" if kind is None else f"{kind!r} is not a known kind"
        report(("kind",), f"{what} (one of {', '.join(sorted(KINDS))})")
        try:
            _Common.model_validate(raw)
        except ValidationError as e:
            for loc, m in _messages(e):
                report(loc, m)
        known = _all_fields()
        for name in raw:
            if isinstance(name, str) and name not in known:
                report((name,), _unknown_field(name, None, None))
    else:
        try:
            src = model.model_validate(raw)
        except ValidationError as e:
            for loc, m in _messages(e, model, kind):
                # entries[j].topics is named as such: its taxonomy problem is reported below
                report(loc, m)
    _check_vocabulary(raw, taxonomy, report)
    return src


def parse_registry(data: Any, path: str | Path = "registry.yaml", taxonomy: Taxonomy | None = None,
                   text: str | None = None) -> Registry:
    """Validate already-loaded YAML data; raise :class:`RegistryError` listing every problem.

    With ``text`` (the file the data was read from), each problem names its line."""
    taxonomy = taxonomy or default_taxonomy()
    problems = _Problems(path, text)
    if not isinstance(data, dict):
        raise RegistryError(path, [f"{path}: the top level must be a mapping with a 'sources:' list"])
    unknown = set(data) - {"sources", "defaults"}
    for k in sorted(unknown, key=str):
        problems.top(f"top-level field {k!r} is not known (expected 'sources' and optional 'defaults')"
                     f"{suggest(str(k), ['sources', 'defaults'])}")
    defaults = Defaults()
    try:
        defaults = Defaults.model_validate(data.get("defaults") or {})
    except ValidationError as e:
        for loc, m in _messages(e):
            problems.top(f"defaults.{_field_name(loc)}: {m}")
    raw_sources = data.get("sources")
    if not isinstance(raw_sources, list):
        problems.top("'sources' must be a list of sources")
        raise RegistryError(path, problems.found)
    sources: list[SourceBase] = []
    seen_ids: dict[str, int] = {}
    seen_urls: dict[str, str] = {}
    for i, raw in enumerate(raw_sources, start=1):
        if not isinstance(raw, dict):
            problems.source(i - 1, f"source #{i}", (), f"must be a mapping of fields, got {type(raw).__name__}")
            continue
        sid = raw.get("id") if isinstance(raw.get("id"), str) else None
        label = f"source {sid!r} (#{i})" if sid else f"source #{i}"
        if sid is not None:
            # Checked on the raw id, so a duplicate is reported even when either source has other problems.
            if sid in seen_ids:
                problems.source(i - 1, label, ("id",), f"{sid!r} is already used by source #{seen_ids[sid]}")
            seen_ids.setdefault(sid, i)
        src = _check_source(i - 1, raw, label, taxonomy, problems)
        if src is None:
            continue
        if src.url and src.uses_network:
            key = loose_url_key(src.url)
            if key in seen_urls and seen_urls[key] != src.id:
                problems.source(i - 1, label, ("url",), f"same URL as source {seen_urls[key]!r}")
            seen_urls.setdefault(key, src.id)
        sources.append(src)
    if problems.found:
        raise RegistryError(path, problems.found)
    return Registry(path=str(path), defaults=defaults, sources=sources)


def load_registry(path: str | Path, taxonomy: Taxonomy | None = None) -> Registry:
    path = Path(path)
    text = _read(path)
    return parse_registry(_parse_text(text, path), path, taxonomy, text=text)
