from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harvesters.kinds import register
from pipeline.resource import Batch, Resource


@register("manual")
class ManualHandler:
    """Curated entries from the registry: no network."""

    def start(self, source: Any) -> Iterable[Batch]:
        resources = [
            Resource(
                url=e.url, title=e.title, description=e.description, content_type=e.content_type,
                source_id=source.id, organization=e.organization or source.organization,
                published=e.published, topics=list(e.topics), systems=list(e.systems),
                raw=e.model_dump(),
            )
            for e in source.entries[: source.max_items]
        ]
        yield Batch(source.id, resources, url=source.url)

    def parse(self, response: Any, source: Any) -> Iterable[Batch]:  # pragma: no cover - never fetches
        return []
