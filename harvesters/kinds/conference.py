"""``conference``: a conference program page; one event resource per session."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import field_validator

from harvesters.source import EventHandler, EventSourceBase, Strict, kind, response_content_type

if TYPE_CHECKING:
    from scrapy.http import Response

    from harvesters.parsers.eventtext import ParsedEvents


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


class ProgramSelectors(Strict):
    """CSS selectors for a program page; all but ``session`` are read inside each session block."""

    session: str
    """Each session block (required when `selectors` is given)."""
    day: str | None = None
    """The day headings: each states the date of the sessions after it."""
    title: str | None = None
    """The session's title. Without it, a block is read as a line `time | title | presenters`."""
    time: str | None = None
    """Its time (`9:00 – 9:45 am`, `10:30am-12pm PT`, `13:00–14:30`)."""
    presenters: str | None = None
    """Its presenters (`Name, Affiliation; Name, Affiliation` and similar)."""
    description: str | None = None
    """Its description (default: the text that follows the block up to the next session)."""
    location: str | None = None
    """Its room or track."""
    type: str | None = None
    """Its type (keynote, preconference, session, social, break)."""
    slides: str | None = None
    """A link to its slides."""
    recording: str | None = None
    """A link to its recording."""
    link: str | None = None
    """Its own page (default: a link on its title, else a stable link made from the program page)."""

    _check = field_validator("*")(classmethod(lambda cls, v: check_css(v)))


class ConferenceSource(EventSourceBase):
    """A conference program page: schema.org Event JSON-LD when present, else ``selectors``,
    else sessions found automatically (lines that start with a time)."""

    kind_name: ClassVar[str] = "conference"
    example: ClassVar[str] = """
- id: nwill-conference-2020
  name: NWILL 2020 conference program
  kind: conference
  url: https://nwill.org/2020-conference-program
  event_name: NWILL 2020
  year: 2020
  timezone: America/Los_Angeles
  selectors:            # optional: without them the page is read automatically
    session: "div.session"
    title: "h3"
    time: ".time"
    presenters: ".speakers"
"""
    kind: Literal["conference"]
    selectors: ProgramSelectors | None = None
    """CSS selectors for the program's sessions; without them, schema.org Event JSON-LD or the lines that start
    with a time are read."""


@kind(ConferenceSource)
class ConferenceHandler(EventHandler):
    """A conference program page: one event resource per session."""

    def read(self, response: Response, source: ConferenceSource) -> ParsedEvents:
        return self._parse(response.body, response.url, source, response_content_type(response))

    @staticmethod
    def _parse(body: bytes, url: str, source: ConferenceSource, http_content_type: str | None) -> ParsedEvents:
        """The program's sessions, as a harvest and check-registry both read them."""
        from harvesters.parsers.conference import parse_program

        return parse_program(
            body, url, source_id=source.id, organization=source.organization,
            event_name=source.event_name, year=source.year, timezone=source.timezone,
            selectors=source.selectors.model_dump() if source.selectors else None,
            include_breaks=source.include_breaks, max_items=source.max_items,
            http_content_type=http_content_type,
        )

    # -- illhub check-registry: the one request that says whether the URL is of this kind --

    check_advice = "write selectors for the program (see docs/events.md), or find its Sched calendar (kind: ical)"

    def check_probes(self, source: ConferenceSource) -> list[tuple[str, str, str, str]]:
        return [("conference", source.url, "program", "a program page")]

    def read_check(self, check: Any, c: Any, body: bytes, headers: dict[str, Any]) -> str | None:
        from harvesters.parsers.conference import NoSessions
        from harvesters.registry_check import content_type

        try:
            parsed = self._parse(body, check.last_url, check.source, content_type(headers))
        except NoSessions as e:
            return str(e)
        n = len(parsed.resources)
        if not n:
            return "no sessions found on the page"
        how = f", read by {parsed.method}" if parsed.method else ""
        c.evidence = f"a program page: {n} session{'s' if n != 1 else ''}{how}"
        return None

