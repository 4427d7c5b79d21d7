"""What the registry covers: for each topic and system of the taxonomy, the harvested sources
and the curated (manual) entries about it, and the sources of each kind; the thin ones flagged.

A harvested source counts for the topics and systems its registry entry names. A curated
entry counts for its own topics and systems and for its manual source's (the harvest gives it
both). Disabled sources are left out: they bring nothing until enabled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from illhub.registry import Registry
from pipeline.taxonomy import Taxonomy

#: The floors the registry is held to (issue 19): a topic needs this many sources or curated
#: references, a system this many.
TOPIC_FLOOR = 3
SYSTEM_FLOOR = 2


@dataclass
class Row:
    """One topic, system or kind: how many harvested sources and curated entries cover it."""

    id: str
    label: str
    sources: list[str] = field(default_factory=list)
    entries: int = 0
    floor: int = 0

    @property
    def total(self) -> int:
        return len(self.sources) + self.entries

    @property
    def thin(self) -> bool:
        return self.total < self.floor

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "sources": len(self.sources), "curated_entries": self.entries,
                "total": self.total, "floor": self.floor, "thin": self.thin, "source_ids": self.sources}


@dataclass
class Coverage:
    topics: list[Row]
    systems: list[Row]
    kinds: list[Row]
    sources: int
    harvested: int
    entries: int

    @property
    def thin(self) -> list[Row]:
        return [r for r in self.topics + self.systems if r.thin]

    def as_dict(self) -> dict[str, Any]:
        return {"sources": self.sources, "harvested_sources": self.harvested, "curated_entries": self.entries,
                "topics": [r.as_dict() for r in self.topics], "systems": [r.as_dict() for r in self.systems],
                "kinds": [r.as_dict() for r in self.kinds], "thin": [r.id for r in self.thin]}


def coverage(registry: Registry, taxonomy: Taxonomy, *, topic_floor: int = TOPIC_FLOOR,
             system_floor: int = SYSTEM_FLOOR) -> Coverage:
    topics = {t.id: Row(t.id, t.label, floor=topic_floor) for t in taxonomy.topics.values()}
    systems = {s.id: Row(s.id, s.label, floor=system_floor) for s in taxonomy.systems.values()}
    kinds: dict[str, Row] = {}
    harvested = entries = 0
    enabled = registry.enabled()
    for s in enabled:
        kinds.setdefault(s.kind, Row(s.kind, s.kind)).sources.append(s.id)
        curated = getattr(s, "entries", None)
        if curated is None:
            harvested += 1
            for t in s.topics:
                topics[t].sources.append(s.id)
            for y in s.systems:
                systems[y].sources.append(s.id)
            continue
        kinds[s.kind].entries += len(curated)
        entries += len(curated)
        for e in curated:
            for t in dict.fromkeys([*s.topics, *e.topics]):
                topics[t].entries += 1
            for y in dict.fromkeys([*s.systems, *e.systems]):
                systems[y].entries += 1
    return Coverage(list(topics.values()), list(systems.values()), sorted(kinds.values(), key=lambda r: r.id),
                    len(enabled), harvested, entries)
