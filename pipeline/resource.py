"""The Resource record: the only contract between harvesters and storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The content-type vocabulary. Every resource has exactly one.
CONTENT_TYPES: dict[str, str] = {
    "article": "A blog post, news item or other dated article",
    "document": "A PDF, slide deck or other downloadable document",
    "documentation": "Vendor or system help pages and manuals",
    "event": "A conference session, webinar or other dated event",
    "page": "A web page that is none of the above",
    "video": "A recording: a YouTube video, a webinar recording",
}


@dataclass
class Resource:
    """One harvested link and what is known about it.

    Parsers fill in what they can read; :func:`pipeline.normalize.normalize_resource`
    cleans it up. ``extra`` carries kind-specific fields (video id, view count, event
    fields); ``raw`` is the parser's untouched view of the entry, kept so that
    normalization can be rerun without the network.
    """

    url: str
    title: str = ""
    description: str = ""
    content_type: str = "page"
    source_id: str = ""
    organization: str | None = None
    published: str | None = None
    updated: str | None = None
    topics: list[str] = field(default_factory=list)
    systems: list[str] = field(default_factory=list)
    author: str | None = None
    language: str | None = None
    thumbnail: str | None = None
    excerpt: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A shallow dict of the fields (``dataclasses.asdict`` deep-copies, which is slow
        on raw feed entries and buys nothing here)."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Resource:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Batch:
    """What one fetched document (or one manual source) produced."""

    source_id: str
    resources: list[Resource]
    url: str | None = None
    http_status: int | None = None
    warnings: list[str] = field(default_factory=list)
    #: The site the document says it belongs to (a feed's own link), when it says: a resource
    #: on that site is the source's own (see ``pipeline.store``, "which source owns a resource").
    site: str | None = None
    #: Set by the harvester: the fetched document this batch came from (its validators are
    #: remembered only once every batch it produced is stored).
    document: Any = None
    #: Set when a parse worker already normalized and classified the resources
    #: (:func:`pipeline.store.prepare_batch`'s two results); ``resources`` is then empty.
    prepared: Any = None
    prepared_result: dict[str, int] | None = None
