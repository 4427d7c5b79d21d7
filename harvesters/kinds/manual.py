"""``manual``: curated links written in the registry itself; no network."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from harvesters.source import SourceBase, Strict, check_content_type, check_http_url, kind
from pipeline.resource import Batch, Resource


class ManualEntry(Strict):
    """One curated link of a `manual` source."""

    url: str
    """The link (`http://` or `https://`)."""
    title: str = Field(min_length=1)
    """Its title."""
    description: str = ""
    """A sentence or two on what it is."""
    content_type: str = "page"
    """One of the content types (see the schema)."""
    topics: list[str] = Field(default_factory=list)
    """Topic ids from `data/taxonomy.yaml` (kept as curated; the source's topics are added)."""
    systems: list[str] = Field(default_factory=list)
    """System ids from `data/taxonomy.yaml`."""
    published: str | None = None
    """Publication date, e.g. `2024-05-01` (read as UTC)."""
    organization: str | None = None
    """Who published it (default: the source's organization)."""

    _check_url = field_validator("url")(classmethod(lambda cls, v: check_http_url(v)))
    _check_content_type = field_validator("content_type")(classmethod(lambda cls, v: check_content_type(v)))

    @field_validator("published", mode="before")
    @classmethod
    def _pub(cls, v: Any) -> Any:
        return None if v is None else str(v)


class ManualSource(SourceBase):
    """Curated entries written in the registry itself; no network."""

    kind_name: ClassVar[str] = "manual"
    uses_network: ClassVar[bool] = False
    complete_listing: ClassVar[bool] = True
    example: ClassVar[str] = """
- id: curated-copyright
  name: Copyright and ILL references
  kind: manual
  organization: illhub curators
  topics: [copyright]
  entries:
    - url: https://www.copyright.gov/circs/circ21.pdf
      title: "Circular 21: Reproduction of Copyrighted Works by Educators and Librarians"
      description: U.S. Copyright Office circular on library copying, including Section 108.
      content_type: document
      organization: U.S. Copyright Office
    - url: https://www.law.cornell.edu/uscode/text/17/108
      title: "17 U.S.C. § 108: reproduction by libraries and archives"
      published: 2024-05-01
"""
    kind: Literal["manual"]
    entries: list[ManualEntry] = Field(min_length=1)
    """The curated links (at least one); each entry's fields are listed below."""


@kind(ManualSource)
class ManualHandler:
    """Curated entries from the registry: no network."""

    def start(self, source: ManualSource) -> Iterable[Batch]:
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

    def parse(self, response: Any, source: ManualSource) -> Iterable[Batch]:  # pragma: no cover - never fetches
        return []
