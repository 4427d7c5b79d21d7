"""Topics and systems from the ILL vocabulary in ``data/taxonomy.yaml``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ruamel.yaml import YAML

from pipeline.resource import Resource

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TAXONOMY_PATH = DATA_DIR / "taxonomy.yaml"


@dataclass
class Term:
    id: str
    label: str
    description: str = ""
    keywords: list[str] = field(default_factory=list)
    pattern: re.Pattern[str] | None = None


@dataclass
class Taxonomy:
    topics: dict[str, Term]
    systems: dict[str, Term]

    def classify(self, resource: Resource) -> tuple[list[str], list[str], dict[str, str]]:
        """Topics, systems and, for each, the keyword that matched (the reason)."""
        text = " ".join(filter(None, [resource.title, resource.description, resource.excerpt or ""]))
        reasons: dict[str, str] = {}
        topics, systems = [], []
        for bucket, out, prefix in ((self.topics, topics, ""), (self.systems, systems, "system:")):
            for term in bucket.values():
                if term.pattern is None:
                    continue
                m = term.pattern.search(text)
                if m:
                    out.append(term.id)
                    reasons[prefix + term.id] = m.group(0)
        return topics, systems, reasons


def _compile(words: list[str]) -> re.Pattern[str] | None:
    words = [w for w in words if w]
    if not words:
        return None
    alternatives = sorted((re.escape(w) for w in words), key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def load_taxonomy(path: str | Path = TAXONOMY_PATH) -> Taxonomy:
    data = YAML(typ="safe").load(Path(path).read_text(encoding="utf-8")) or {}
    topics = {}
    for t in data.get("topics", []):
        topics[t["id"]] = Term(t["id"], t.get("label", t["id"]), t.get("description", ""),
                               list(t.get("keywords", [])), _compile(list(t.get("keywords", []))))
    systems = {}
    for s in data.get("systems", []):
        aliases = list(s.get("aliases", [])) or [s.get("label", s["id"])]
        systems[s["id"]] = Term(s["id"], s.get("label", s["id"]), s.get("description", ""), aliases,
                                _compile(aliases))
    return Taxonomy(topics, systems)


@lru_cache(maxsize=4)
def default_taxonomy() -> Taxonomy:
    return load_taxonomy(TAXONOMY_PATH)


def classify_resource(resource: Resource, source_topics: list[str] | None = None,
                      taxonomy: Taxonomy | None = None) -> Resource:
    """Add topics and systems (in place) and return the resource.

    A source's registry topics always apply; the matched keywords are kept in
    ``resource.extra["classified_by"]`` so a maintainer can see why.
    """
    taxonomy = taxonomy or default_taxonomy()
    topics, systems, reasons = taxonomy.classify(resource)
    resource.topics = sorted(set(resource.topics) | set(topics) | set(source_topics or []))
    resource.systems = sorted(set(resource.systems) | set(systems))
    if reasons:
        resource.extra["classified_by"] = reasons
    return resource
