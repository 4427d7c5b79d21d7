"""The source registry: strict models, loaded and validated once, at the edge.

Every problem in ``registry.yaml`` is reported at once, each naming the source id and
field. Nothing downstream ever sees raw YAML.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from pipeline import yamlcache
from pipeline.classify import Taxonomy, default_taxonomy
from pipeline.resource import CONTENT_TYPES

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SCHEDULE_WORDS = ("hourly", "daily", "nightly", "weekly")
YOUTUBE_CHANNEL_ID = re.compile(r"^UC[A-Za-z0-9_-]{22}$")
YOUTUBE_PLAYLIST_ID = re.compile(r"^(PL|UU|FL|LL|OL|RD)[A-Za-z0-9_-]{10,}$")

Slug = Annotated[str, Field(min_length=1, max_length=80)]


class FieldProblem(ValueError):
    """Raised by a model validator to blame a particular field (or fields) of a source."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


class RegistryError(Exception):
    """The registry cannot be used; ``problems`` lists every reason, one line each."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s)\n" + "\n".join(problems))


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


class Strict(BaseModel):
    # A docstring under a field is its description: README.md's field tables are generated
    # from them (python -m illhub.docs reads them; pydantic is not asked to, since it would
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
    #: entry that falls out of the window is not counted as missing (see README, "stale").
    complete_listing: ClassVar[bool] = False

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

    _check_id = field_validator("id")(classmethod(lambda cls, v: check_slug(v)))
    _check_schedule = field_validator("schedule")(classmethod(lambda cls, v: check_schedule(v)))

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

    @field_validator("content_type")
    @classmethod
    def _check_content_type(cls, v: str | None) -> str | None:
        if v is not None and v not in CONTENT_TYPES:
            raise ValueError(f"{v!r} is not one of {', '.join(CONTENT_TYPES)}")
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


class FeedSource(SourceBase):
    """An RSS 0.9x/1.0/2.0 or Atom feed at ``url``."""

    kind_name: ClassVar[str] = "feed"
    default_content_type: ClassVar[str] = "article"
    #: An example entry (shown in README.md and validated by the tests).
    example: ClassVar[str] = """
- id: oclc-next-blog
  name: OCLC Next blog
  kind: feed
  url: https://blog.oclc.org/next/feed/
  organization: OCLC
  topics: [news]
  notes: A WordPress blog; its feed is at /feed/.
"""
    kind: Literal["feed"]
    url: str
    """The feed's own address (RSS 0.9x, 1.0 or 2.0, or Atom), not the web page that links to it:
    look for the page's RSS link (WordPress: `/feed/`)."""


class YouTubeSource(SourceBase):
    """A YouTube channel or playlist: ``channel_id``, ``playlist_id``, or ``url`` set to the
    feed URL or a channel page (``/@handle``, ``/channel/UC…``)."""

    kind_name: ClassVar[str] = "youtube"
    default_content_type: ClassVar[str] = "video"
    example: ClassVar[str] = """
# one of channel_id, playlist_id or url (the ids here are placeholders)
- id: consortium-youtube
  name: Our consortium on YouTube
  kind: youtube
  channel_id: UCxxxxxxxxxxxxxxxxxxxxxx
  organization: Our Consortium
  topics: [training]
- id: consortium-webinars
  name: Our consortium's webinar playlist
  kind: youtube
  playlist_id: PLxxxxxxxxxxxxxxxx
- id: state-library-youtube
  name: State Library on YouTube
  kind: youtube
  url: https://www.youtube.com/@statelibrary
"""
    kind: Literal["youtube"]
    url: str | None = None
    """Instead of an id: a channel page (`https://www.youtube.com/@handle`, `/channel/UC…`; a handle page is
    fetched once per harvest to find the channel's feed) or the feed itself (`/feeds/videos.xml?channel_id=…`)."""
    channel_id: str | None = None
    """A channel id (`UC` + 22 characters); the feed URL is derived from it."""
    playlist_id: str | None = None
    """A playlist id (`PL…`, `UU…`); the feed URL is derived from it."""

    @field_validator("channel_id")
    @classmethod
    def _check_channel(cls, v: str | None) -> str | None:
        if v is not None and not YOUTUBE_CHANNEL_ID.match(v):
            raise ValueError(f"{v!r} is not a YouTube channel id (UC followed by 22 characters)")
        return v

    @field_validator("playlist_id")
    @classmethod
    def _check_playlist(cls, v: str | None) -> str | None:
        if v is not None and not YOUTUBE_PLAYLIST_ID.match(v):
            raise ValueError(f"{v!r} is not a YouTube playlist id (such as PL… or UU…)")
        return v

    @model_validator(mode="after")
    def _one_way(self) -> YouTubeSource:
        given = [n for n in ("channel_id", "playlist_id", "url") if getattr(self, n)]
        if len(given) != 1:
            raise FieldProblem(
                "channel_id/playlist_id/url",
                "give exactly one of channel_id, playlist_id or url (a channel page or feed URL)"
                + (f"; got {', '.join(given)}" if given else "")
            )
        if self.url:
            path = urlsplit(self.url).path
            if not (path.startswith("/@") or path.startswith("/channel/UC") or path.endswith("/feeds/videos.xml")
                    or path.startswith("/c/") or path.startswith("/user/")):
                raise FieldProblem(
                    "url",
                    "url must be a channel page (https://www.youtube.com/@handle or /channel/UC…) "
                    "or a feed (https://www.youtube.com/feeds/videos.xml?channel_id=…)"
                )
        return self


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

    @field_validator("content_type")
    @classmethod
    def _ct(cls, v: str) -> str:
        if v not in CONTENT_TYPES:
            raise ValueError(f"{v!r} is not one of {', '.join(CONTENT_TYPES)}")
        return v

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


def check_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{value!r} is not an IANA time zone (such as America/Los_Angeles or America/Chicago)") from None
    return value


def check_css(value: str | None) -> str | None:
    if value is None:
        return None
    from cssselect import SelectorError
    from parsel.csstranslator import css2xpath

    try:
        css2xpath(value)
    except SelectorError as e:
        raise ValueError(f"{value!r} is not a valid CSS selector ({e})") from None
    return value


class EventSourceBase(SourceBase):
    """Fields shared by the event kinds (``ical``, ``conference``)."""

    default_content_type: ClassVar[str] = "event"

    url: str
    #: The conference's name, when the calendar or page does not say it well.
    event_name: str | None = Field(default=None, max_length=200)
    #: The year, for pages whose day headings leave it out.
    year: int | None = Field(default=None, ge=1990, le=2100)
    #: IANA zone of the times on the page or floating times in the calendar.
    timezone: str | None = None
    #: Keep breaks (coffee, lunch, registration) as events; they are skipped by default.
    include_breaks: bool = False

    _check_timezone = field_validator("timezone")(classmethod(lambda cls, v: check_timezone(v)))


class ICalSource(EventSourceBase):
    """An iCalendar feed (a Sched event's ``/all.ics``): one event per VEVENT."""

    kind_name: ClassVar[str] = "ical"
    kind: Literal["ical"]


class ProgramSelectors(Strict):
    """CSS selectors for a program page; all but ``session`` are read inside each session block."""

    session: str
    day: str | None = None
    title: str | None = None
    time: str | None = None
    presenters: str | None = None
    description: str | None = None
    location: str | None = None
    type: str | None = None
    slides: str | None = None
    recording: str | None = None
    link: str | None = None

    _check = field_validator("*")(classmethod(lambda cls, v: check_css(v)))


class ConferenceSource(EventSourceBase):
    """A conference program page: schema.org Event JSON-LD when present, else ``selectors``,
    else sessions found automatically (lines that start with a time)."""

    kind_name: ClassVar[str] = "conference"
    kind: Literal["conference"]
    selectors: ProgramSelectors | None = None


def check_pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as e:
        raise ValueError(f"{value!r} is not a valid regular expression ({e})") from None
    return value


Pattern = Annotated[str, Field(min_length=1, max_length=500)]


class ListingSelectors(Strict):
    """Selectors for a listing page whose items are the resources (CSS, or XPath when the
    selector starts with ``/``, ``./`` or ``(``; ``xpath:``/``css:`` prefixes force one)."""

    item: str = Field(min_length=1)
    title: str | None = None
    url: str | None = None
    description: str | None = None
    date: str | None = None
    duration: str | None = None
    author: str | None = None
    links: dict[str, str] = Field(default_factory=dict)
    pages: Pattern | None = None

    @model_validator(mode="after")
    def _compile(self) -> ListingSelectors:
        from harvesters.parsers.listing import check_selector

        problems = []
        for name in ("item", "title", "url", "description", "date", "duration", "author"):
            value = getattr(self, name)
            if value is not None:
                try:
                    check_selector(value)
                except ValueError as e:
                    problems.append(f"{name}: {e}")
        for name, value in self.links.items():
            if not SLUG.match(name.replace("_", "-")):
                problems.append(f"links: {name!r} is not a simple name (such as recording, slides, transcript)")
            try:
                check_selector(value)
            except ValueError as e:
                problems.append(f"links.{name}: {e}")
        if self.pages is not None:
            try:
                check_pattern(self.pages)
            except ValueError as e:
                problems.append(f"pages: {e}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class WebSource(SourceBase):
    """Fields shared by the kinds that fetch HTML pages (sitemap, crawl)."""

    url: str
    include: list[Pattern] = Field(default_factory=list)
    exclude: list[Pattern] = Field(default_factory=list)
    max_pages: int = Field(default=50, ge=1, le=5000)
    documents: bool = False

    @field_validator("include", "exclude")
    @classmethod
    def _check_patterns(cls, v: list[str]) -> list[str]:
        for p in v:
            check_pattern(p)
        return v

    def wants(self, url: str) -> bool:
        """Whether ``url`` passes the include (any, when given) and exclude (none) patterns."""
        if self.include and not any(re.search(p, url) for p in self.include):
            return False
        return not any(re.search(p, url) for p in self.exclude)


class SitemapSource(WebSource):
    """Pages listed by a sitemap, a sitemap index (gzip or not) or robots.txt's ``Sitemap:``
    lines; pages whose ``lastmod`` has not changed since the last run are not fetched."""

    kind_name: ClassVar[str] = "sitemap"
    kind: Literal["sitemap"]


class CrawlSource(WebSource):
    """Pages reached by following links from a start page, on the same site only."""

    kind_name: ClassVar[str] = "crawl"
    kind: Literal["crawl"]
    follow: list[Pattern] = Field(default_factory=list)
    max_depth: int = Field(default=2, ge=0, le=10)
    selectors: ListingSelectors | None = None

    @field_validator("follow")
    @classmethod
    def _check_follow(cls, v: list[str]) -> list[str]:
        for p in v:
            check_pattern(p)
        return v

    def follows(self, url: str) -> bool:
        """Whether a same-site link is followed: it matches ``follow`` (by default, it lies
        under the start page's folder) and no ``exclude`` pattern."""
        if any(re.search(p, url) for p in self.exclude):
            return False
        if self.follow:
            return any(re.search(p, url) for p in self.follow)
        folder = start_folder(self.url)
        bare = url.split("#", 1)[0].split("?", 1)[0]
        if folder.endswith("/"):
            return bare.startswith(folder)
        return bare == folder or bare.startswith(folder + "/")


def start_folder(url: str) -> str:
    """``https://h/a/b/page.html`` → ``https://h/a/b/``; ``https://h/a/b`` → ``https://h/a/b``
    (a MindTouch-style path is its own folder); ``https://h/c.php?g=1`` → ``https://h/``."""
    base = url.split("#", 1)[0].split("?", 1)[0]
    last = base.rsplit("/", 1)[-1]
    if "." in last:
        return base[: len(base) - len(last)]
    return base


class WordPressSource(SourceBase):
    """All posts (and optionally pages) of a WordPress site through its REST API; the
    site's feed (paged with ``?paged=N``) when the API is closed."""

    kind_name: ClassVar[str] = "wordpress"
    default_content_type: ClassVar[str] = "article"
    kind: Literal["wordpress"]
    url: str
    pages: bool = False
    per_page: int = Field(default=50, ge=1, le=100)
    max_pages: int = Field(default=10, ge=1, le=1000)
    api_url: str | None = None

    _check_api = field_validator("api_url")(classmethod(lambda cls, v: None if v is None else check_http_url(v)))


class ZendeskSource(SourceBase):
    """All public articles of a Zendesk Help Center through its Help Center API."""

    kind_name: ClassVar[str] = "zendesk"
    default_content_type: ClassVar[str] = "documentation"
    kind: Literal["zendesk"]
    url: str
    locale: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    per_page: int = Field(default=100, ge=1, le=100)
    max_pages: int = Field(default=10, ge=1, le=1000)

    @property
    def help_center_locale(self) -> str:
        from harvesters.parsers.zendesk import DEFAULT_LOCALE, locale_from_url

        return (self.locale or locale_from_url(self.url) or DEFAULT_LOCALE).lower()


#: kind name → model. Other kinds register themselves with :func:`register_kind`.
KINDS: dict[str, type[SourceBase]] = {}


def register_kind(model: type[SourceBase]) -> type[SourceBase]:
    KINDS[model.kind_name] = model
    return model


for _m in (FeedSource, YouTubeSource, ManualSource):
    register_kind(_m)
for _m in (ICalSource, ConferenceSource):
    register_kind(_m)

# Web kinds (issue 3): sitemap, crawl, WordPress, Zendesk.
register_kind(SitemapSource)
register_kind(CrawlSource)
register_kind(WordPressSource)
register_kind(ZendeskSource)


class Defaults(Strict):
    """The registry's optional top-level `defaults:` mapping."""

    schedule: str = "nightly"
    """Schedule of every source that gives none."""
    link_check_schedule: str = "weekly"
    """When stored links are checked."""
    contact: str | None = None
    """A URL or e-mail address for site owners, sent in the User-Agent instead of the project URL."""

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
            msg = "is not a known field (check the spelling; see the README for each kind's fields)"
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
        return yamlcache.load(text, YAML(typ="safe", pure=True).load, "registry")
    except YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f":{where.line + 1}" if where is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise RegistryError(path, [f"{path}{line}: not valid YAML: {problem}"]) from None


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
        model = KINDS.get(kind) if isinstance(kind, str) else None
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
            key = src.url.rstrip("/")
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
