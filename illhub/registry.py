"""The source registry as a whole: its defaults, loading and validating it once, at the edge.

Every problem in ``registry.yaml`` is reported at once, each naming the source id and
field. Nothing downstream ever sees raw YAML. The fields of each kind of source are its
model's, in ``harvesters/kinds/<kind>.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError, field_validator
from ruamel.yaml.error import YAMLError

from harvesters.kinds import KINDS
from harvesters.source import FieldProblem, SourceBase, Strict, check_schedule
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


def _messages(e: ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in e.errors():
        msg = err["msg"]
        msg = msg.removeprefix("Value error, ")
        loc = tuple(err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, FieldProblem):
            loc = (*loc, cause.field)
        if err["type"] == "extra_forbidden":
            msg = "is not a known field (check the spelling; see docs/registry.md for each kind's fields)"
        elif err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "literal_error":
            msg = f"is {err.get('input')!r}, expected {msg.removeprefix('Input should be ')}"
        elif err["type"] == "too_short" and isinstance(err.get("input"), list):
            msg = "must list at least one item"
        out.append((_field_name(loc), msg))
    return out


def load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RegistryError(path, [f"{path}: file not found (pass --registry PATH)"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise RegistryError(path, [f"{path}: cannot read: {e}"]) from None
    try:
        # Aliases and deep nesting are refused while parsing, before anything walks the data.
        return yamlcache.load(text, safeyaml.parse, "registry")
    except YAMLError as e:
        raise RegistryError(path, [safeyaml.problem_line(e, str(path))]) from None


def parse_registry(data: Any, path: str | Path = "registry.yaml", taxonomy: Taxonomy | None = None) -> Registry:
    """Validate already-loaded YAML data; raise :class:`RegistryError` listing every problem."""
    taxonomy = taxonomy or default_taxonomy()
    problems: list[str] = []
    if not isinstance(data, dict):
        raise RegistryError(path, [f"{path}: the top level must be a mapping with a 'sources:' list"])
    unknown = set(data) - {"sources", "defaults"}
    for k in sorted(unknown):
        problems.append(f"{path}: top-level field {k!r} is not known (expected 'sources' and optional 'defaults')")
    defaults = Defaults()
    try:
        defaults = Defaults.model_validate(data.get("defaults") or {})
    except ValidationError as e:
        problems += [f"{path}: defaults.{f}: {m}" for f, m in _messages(e)]
    raw_sources = data.get("sources")
    if not isinstance(raw_sources, list):
        problems.append(f"{path}: 'sources' must be a list of sources")
        raise RegistryError(path, problems)
    sources: list[SourceBase] = []
    seen_ids: dict[str, int] = {}
    seen_urls: dict[str, str] = {}
    for i, raw in enumerate(raw_sources, start=1):
        if not isinstance(raw, dict):
            problems.append(f"{path}: source #{i}: must be a mapping of fields, got {type(raw).__name__}")
            continue
        sid = raw.get("id") if isinstance(raw.get("id"), str) else None
        label = f"source {sid!r} (#{i})" if sid else f"source #{i}"
        if sid is not None:
            # Checked on the raw id, so a duplicate is reported even when either source has other problems.
            if sid in seen_ids:
                problems.append(f"{path}: {label}: field 'id': {sid!r} is already used by source #{seen_ids[sid]}")
            seen_ids.setdefault(sid, i)
        kind = raw.get("kind")
        model = KINDS[kind].model if isinstance(kind, str) and kind in KINDS else None
        if model is None:
            what = "is required" if kind is None else f"{kind!r} is not a known kind"
            problems.append(f"{path}: {label}: field 'kind': {what} (one of {', '.join(sorted(KINDS))})")
            continue
        try:
            src = model.model_validate(raw)
        except ValidationError as e:
            problems += [f"{path}: {label}: field '{f}': {m}" for f, m in _messages(e)]
            continue
        for t in src.topics:
            if t not in taxonomy.topics:
                problems.append(f"{path}: {label}: field 'topics': {t!r} is not a topic in data/taxonomy.yaml "
                                f"(known: {', '.join(taxonomy.topics)})")
        for t in src.systems:
            if t not in taxonomy.systems:
                problems.append(f"{path}: {label}: field 'systems': {t!r} is not a system in data/taxonomy.yaml "
                                f"(known: {', '.join(taxonomy.systems)})")
        for j, entry in enumerate(getattr(src, "entries", None) or []):
            for t in entry.topics:
                if t not in taxonomy.topics:
                    problems.append(f"{path}: {label}: field 'entries[{j}].topics': {t!r} is not a topic in data/taxonomy.yaml")
            for s in entry.systems:
                if s not in taxonomy.systems:
                    problems.append(f"{path}: {label}: field 'entries[{j}].systems': {s!r} is not a system in data/taxonomy.yaml")
        if src.url and src.uses_network:
            key = loose_url_key(src.url)
            if key in seen_urls and seen_urls[key] != src.id:
                problems.append(f"{path}: {label}: field 'url': same URL as source {seen_urls[key]!r}")
            seen_urls.setdefault(key, src.id)
        sources.append(src)
    if problems:
        raise RegistryError(path, problems)
    return Registry(path=str(path), defaults=defaults, sources=sources)


def load_registry(path: str | Path, taxonomy: Taxonomy | None = None) -> Registry:
    path = Path(path)
    return parse_registry(load_yaml(path), path, taxonomy)
