"""What every kind of source shares: the registry model's base and its checks, and the list
of kinds.

A kind is one module, ``harvesters/kinds/<kind>.py``, holding its registry model (a
subclass of :class:`SourceBase` whose fields carry docstrings: the docs are generated from
them) and its handler (how its requests start and how each response is read), joined by
:func:`kind`. ``harvesters/kinds/__init__.py`` imports every kind module, which fills
:data:`KINDS`; see docs/development.md, "Adding a kind".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.resource import CONTENT_TYPES

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.http import Response

    from pipeline.resource import Batch

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SCHEDULE_WORDS = ("hourly", "daily", "nightly", "weekly")

Slug = Annotated[str, Field(min_length=1, max_length=80)]
Pattern = Annotated[str, Field(min_length=1, max_length=500)]


class FieldProblem(ValueError):
    """Raised by a model validator to blame a particular field (or fields) of a source."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


# -- checks shared by the models ---------------------------------------------------------


def check_http_url(value: str) -> str:
    value = value.strip()
    if any(c.isspace() for c in value):
        raise ValueError("must not contain spaces")
    try:
        parts = urlsplit(value)
    except ValueError as e:
        raise ValueError(f"is not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"must be an http:// or https:// URL, not {parts.scheme or 'a relative'}: URL")
    if not parts.hostname:
        raise ValueError("has no host name")
    if parts.username or parts.password:
        raise ValueError("must not contain a user name or password")
    return value


def check_slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError(f"{value!r} is not a slug (lower-case letters, digits and single hyphens, e.g. 'oclc-next-blog')")
    return value


def check_schedule(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if value in SCHEDULE_WORDS:
        return value
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as e:
        raise ValueError(
            f"{value!r} is neither one of {', '.join(SCHEDULE_WORDS)} nor a 5-field cron expression ({e})"
        ) from None
    return value


def check_pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as e:
        raise ValueError(f"{value!r} is not a valid regular expression ({e})") from None
    return value


def check_patterns(values: list[str]) -> list[str]:
    for p in values:
        check_pattern(p)
    return values


def check_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{value!r} is not an IANA time zone (such as America/Los_Angeles or America/Chicago)") from None
    return value


def check_content_type(value: str | None) -> str | None:
    if value is not None and value not in CONTENT_TYPES:
        raise ValueError(f"{value!r} is not one of {', '.join(CONTENT_TYPES)}")
    return value


# -- the models ----------------------------------------------------------------------------


class Strict(BaseModel):
    # A docstring under a field is its description: docs/registry.md's field tables are
    # generated from them (tools/docs.py reads them; pydantic is not asked to, since it would
    # read every model's source at each start), so document every new field that way.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SourceBase(Strict):
    """Fields every source has. Subclasses add what their kind needs."""

    kind_name: ClassVar[str] = ""
    #: Content type of resources when the page or feed says nothing better.
    default_content_type: ClassVar[str] = "page"
    #: Whether this kind fetches anything over the network.
    uses_network: ClassVar[bool] = True
    #: Whether one complete run lists everything the source offers (a manual list, a
    #: sitemap). False for windowed listings such as feeds (only the latest entries): an
    #: entry that falls out of the window is not counted as missing (see docs, "stale").
    complete_listing: ClassVar[bool] = False
    #: An example entry (shown in docs/registry.md and validated by the tests).
    example: ClassVar[str] = ""

    id: Slug
    """Unique slug naming the source (lower-case letters, digits, single hyphens), e.g. `oclc-next-blog`.
    Resources, runs and `--source ID` refer to it: do not rename it lightly."""
    name: str = Field(min_length=1, max_length=200)
    """Human-readable name shown in the catalog."""
    kind: str
    """How the source is harvested: one of the kinds below."""
    url: str | None = None
    """The `http://` or `https://` address to fetch (no user name or password in it). What it must point at
    depends on the kind."""
    organization: str | None = None
    """Who publishes it; becomes each resource's `organization` unless the entry names its own."""
    topics: list[str] = Field(default_factory=list)
    """Topic ids from `data/taxonomy.yaml` given to every resource of this source (classification adds more)."""
    systems: list[str] = Field(default_factory=list)
    """System ids from `data/taxonomy.yaml` every resource of this source is about."""
    schedule: str | None = None
    """When to harvest it: `hourly`, `daily`, `nightly`, `weekly` or a 5-field cron expression (UTC);
    default: the registry's `defaults.schedule`."""
    enabled: bool = True
    """`false` keeps the source in the registry but out of harvests (unless named with `--source`)."""
    notes: str | None = None
    """Free text for maintainers (why it is here, quirks); not used by the harvester."""
    content_type: str | None = None
    """Content type of its resources when the feed or page says nothing better (default per kind)."""
    max_items: int = Field(default=1000, ge=1, le=100_000)
    """Most resources taken from one document (feed, page) of this source."""
    on_topic_only: bool = False
    """`true` keeps only the entries whose own words give them a topic or a system of the vocabulary (the
    source's `topics` and `systems` do not count): for a large organization's channel or news feed that is mostly
    about other things. The entries left out count as skipped. It applies to what each harvest brings in: entries
    stored before it was set stay, and `illhub reprocess` keeps what is stored."""

    _check_id = field_validator("id")(classmethod(lambda cls, v: check_slug(v)))
    _check_schedule = field_validator("schedule")(classmethod(lambda cls, v: check_schedule(v)))
    _check_content_type = field_validator("content_type")(classmethod(lambda cls, v: check_content_type(v)))

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        return None if v is None else check_http_url(v)

    @field_validator("topics", "systems")
    @classmethod
    def _check_topics(cls, v: list[str]) -> list[str]:
        for t in v:
            check_slug(t)
        if len(set(v)) != len(v):
            raise ValueError("lists the same id twice")
        return v

    @property
    def resource_type(self) -> str:
        return self.content_type or self.default_content_type

    def config(self) -> dict[str, Any]:
        """Kind-specific settings (everything that is not a common field)."""
        common = set(SourceBase.model_fields)
        return {k: v for k, v in self.model_dump(exclude_none=True).items() if k not in common}

    def row(self) -> dict[str, Any]:
        d = self.model_dump()
        d["config"] = self.config()
        return d


class EventSourceBase(SourceBase):
    """Fields shared by the event kinds (``ical``, ``conference``)."""

    default_content_type: ClassVar[str] = "event"

    url: str
    """The calendar's or the program page's address."""
    event_name: str | None = Field(default=None, max_length=200)
    """The conference's name, when the calendar or page does not say it well."""
    year: int | None = Field(default=None, ge=1990, le=2100)
    """The year, for pages whose day headings leave it out."""
    timezone: str | None = None
    """IANA zone (such as `America/Chicago`) of the times on the page, or of floating times in the calendar;
    default: what the page or calendar says, else UTC."""
    include_breaks: bool = False
    """Keep breaks (coffee, lunch, registration) as events; they are skipped by default."""

    _check_timezone = field_validator("timezone")(classmethod(lambda cls, v: check_timezone(v)))


class EventHandler:
    """What the event kinds' handlers share: the source's one document, read by the kind's
    parser (:meth:`read`) into one event resource per session."""

    def start(self, source: EventSourceBase) -> Iterable[Request]:
        from scrapy import Request

        yield Request(source.url)

    def read(self, response: Response, source: Any) -> Any:  # -> harvesters.parsers.eventtext.ParsedEvents
        raise NotImplementedError

    def parse(self, response: Response, source: EventSourceBase) -> Iterable[Batch]:
        from pipeline.resource import Batch

        parsed = self.read(response, source)
        yield Batch(source.id, parsed.resources, url=response.url, http_status=response.status,
                    warnings=parsed.warnings)


# -- the kinds -----------------------------------------------------------------------------

S = TypeVar("S", bound=SourceBase, contravariant=True)


class KindHandler(Protocol, Generic[S]):
    """How a kind fetches: ``start(source)`` yields Requests (or Batches, for kinds that need
    no network); ``parse(response, source)`` yields Batches and follow-up Requests. The spider
    adds the callbacks, the bookkeeping and the error handling; handlers stay small."""

    def start(self, source: S) -> Iterable[Request | Batch]: ...

    def parse(self, response: Response, source: S) -> Iterable[Any]: ...


@dataclass(frozen=True)
class Kind:
    """One kind of source: its name, its registry model and its handler."""

    name: str
    model: type[SourceBase]
    handler: KindHandler[Any]


#: kind name → :class:`Kind`, filled as ``harvesters.kinds`` imports each kind's module.
KINDS: dict[str, Kind] = {}


def kind(model: type[SourceBase]):
    """Class decorator joining a handler class to its registry model as a kind named
    ``model.kind_name`` (one handler instance serves every source of the kind)."""

    def register(handler_class: type) -> type:
        name = model.kind_name
        if not name or name in KINDS:
            raise ValueError(f"kind {name!r} is unnamed or registered twice")
        KINDS[name] = Kind(name, model, handler_class())
        return handler_class

    return register


def response_content_type(response: Response) -> str | None:
    value = response.headers.get(b"Content-Type")
    return value.decode("latin-1") if value else None


HTML_TYPES = ("text/html", "application/xhtml+xml")


def looks_html(body: bytes, http_content_type: str | None) -> bool:
    """An HTML page by its Content-Type when it has one (a feed served as text/xml is not one,
    whatever its first bytes), else by its first bytes: what a crawl follows and what
    check-registry calls a page."""
    ctype = (http_content_type or "").split(";", 1)[0].strip().lower()
    if ctype:
        return ctype in HTML_TYPES
    head = body[:4096].lstrip().lower()
    return head.startswith(b"<!doctype html") or b"<html" in head
