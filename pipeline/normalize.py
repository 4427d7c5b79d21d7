"""Turn what parsers read into clean, comparable values."""

from __future__ import annotations

import calendar
import re
import time
import unicodedata
import warnings
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from dateutil import parser as dateparser

from pipeline.resource import CONTENT_TYPES, Resource
from pipeline.urls import absolute_url, canonical_url

TITLE_MAX = 300
DESCRIPTION_MAX = 2000
EXCERPT_MAX = 4000
#: Dates further ahead than this are treated as mistakes (events may be a year or two ahead).
FUTURE_LIMIT = timedelta(days=3 * 366)
EARLIEST_YEAR = 1900

#: RFC 822 zone names (dateutil alone does not know them and would silently read them as UTC).
RFC822_ZONES = {"UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
                "MST": -7, "MDT": -6, "PST": -8, "PDT": -7}
_TZINFOS = {name: hours * 3600 for name, hours in RFC822_ZONES.items()}

#: C0 and C1 control characters, zero-width space, BOM and the bidirectional overrides
#: (U+202A-202E, U+2066-2069) that can make harvested text display reversed or spoofed.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u202a-\u202e\u2066-\u2069\ufeff]")
_SPACE = re.compile(r"\s+")
#: Where an HTML parser would start a tag, a comment or a declaration: ``<`` then a letter,
#: ``/``, ``!`` or ``?``. In text, such a ``<`` becomes :data:`TAG_OPEN_SIGN`.
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
#: U+2039, which reads as "<" and opens nothing: ``‹script>``, ``‹nick>``.
TAG_OPEN_SIGN = "\u2039"
#: What an unfinished tag at the end of the input starts with (kept as the text it looks like).
_UNFINISHED_TAG = re.compile(r"</?[A-Za-z]")
#: An unfinished comment, declaration or processing instruction at the end (dropped).
_UNFINISHED_OTHER = re.compile(r"<[!?]")


class _HTMLText(HTMLParser):
    """The text of an HTML fragment as a browser shows it: tags, comments, declarations and
    processing instructions dropped, with the content of script, style and noscript;
    character references decoded by the parser, exactly once."""

    HIDDEN = frozenset({"script", "style", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN and self.hidden:
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)

    def text(self, html: str) -> str:
        self.feed(html)
        # What is left unparsed at the end is decided here, the same on every Python version:
        # an unfinished tag ("… and <img src=x onerror=…") is kept as the text it shows, an
        # unfinished comment or declaration dropped.
        tail = self.rawdata
        if _UNFINISHED_TAG.match(tail) or _UNFINISHED_OTHER.match(tail):
            self.rawdata = ""
            if _UNFINISHED_TAG.match(tail) and not self.hidden:
                self.parts.append(tail)
        self.close()
        return "".join(self.parts)


#: Tags without attributes that hold no text of their own (not script, style or noscript):
#: a fragment whose every ``<`` starts one of them, and without ``&``, shows its text as it is
#: once they are removed, as the HTML parser gives it (feed descriptions are mostly ``<p>…</p>``).
_PLAIN_TAG = re.compile(r"</?(?:p|br|b|i|em|strong|u|div|span|ul|ol|li|h[1-6]|blockquote)[ \t\n\r\f]*/?>", re.I)


def html_to_text(html: str) -> str:
    """The text an HTML fragment shows: tags, comments and scripts removed, entities
    decoded exactly once (``&amp;lt;b&amp;gt;`` is the text ``&lt;b&gt;``, ``&lt;nick&gt;``
    the text ``<nick>``)."""
    if "<" not in html and "&" not in html:
        return html
    if "&" not in html:
        text = _PLAIN_TAG.sub("", html)
        if "<" not in text:
            return text
    return _HTMLText().text(html)


def clean_text(value: Any, limit: int | None = None) -> str:
    """Plain text from a value that may hold HTML (:func:`html_to_text`), control characters
    dropped, whitespace collapsed, length capped at a word boundary with an ellipsis.

    Text that would read as markup if the result were taken for HTML again (the text
    ``<img src=x onerror=…>``, escaped in the source) keeps every character but its ``<``,
    which becomes ``‹`` (:data:`TAG_OPEN_SIGN`: ``‹img src=x …>``): stored text holds no
    tag, whatever reads it (calendar clients and spreadsheet imports have rendered HTML
    found in plain-text fields)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    if limit and len(value) > limit * 20:
        value = value[: limit * 20]  # bound the work on absurd inputs
    # Control characters go before parsing (so "<\x00script>" is read as the tag it becomes)
    # and after (a decoded "&#x200b;" could otherwise join "<" to a tag name).
    value = _CONTROL.sub("", html_to_text(_CONTROL.sub("", value)))
    value = _TAG_OPEN.sub(TAG_OPEN_SIGN, _SPACE.sub(" ", value).strip())
    return cap_text(value, limit)


def cap_text(value: str, limit: int | None) -> str:
    """Plain text capped at ``limit`` characters on a word boundary, with an ellipsis."""
    if limit and len(value) > limit:
        cut = value[: limit - 1]
        if " " in cut[limit // 2 :]:
            cut = cut[: cut.rfind(" ")]
        value = cut.rstrip(" ,;:.") + "…"
    return value


def iso_utc(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return iso_utc(datetime.now(UTC))


def _parse_date_text(text: str) -> datetime | None:
    """RFC 822 first (feeds' own format, zone names included), then anything dateutil reads."""
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dateparser.UnknownTimezoneWarning)
        return dateparser.parse(text, default=datetime(2000, 1, 1, tzinfo=UTC), tzinfos=_TZINFOS)


def parse_date(value: Any, *, now: datetime | None = None) -> str | None:
    """A UTC ISO-8601 string (``2026-01-31T14:00:00Z``) or None when the value cannot be
    read, is before 1900 or is absurdly far in the future. Never raises."""
    if value is None or value == "":
        return None
    dt: datetime | None = None
    try:
        if isinstance(value, time.struct_time):
            dt = datetime.fromtimestamp(calendar.timegm(value), UTC)
        elif isinstance(value, datetime):
            dt = value
        elif isinstance(value, (int, float)):
            dt = datetime.fromtimestamp(float(value), UTC)
        elif isinstance(value, str):
            text = value.strip()
            if not text or len(text) > 100:
                return None
            try:  # the fast path: ISO 8601, as parsers hand over most dates
                dt = datetime.fromisoformat(text)
            except ValueError:
                dt = _parse_date_text(text)
    except (ValueError, OverflowError, OSError, TypeError, dateparser.ParserError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    try:
        if dt.year < EARLIEST_YEAR or dt.astimezone(UTC) > now + FUTURE_LIMIT:
            return None
        return iso_utc(dt)
    except (ValueError, OverflowError):
        return None


def normalize_resource(resource: Resource, *, base_url: str | None = None) -> Resource | None:
    """A cleaned copy of ``resource``, or None if it has no usable http(s) link."""
    url = canonical_url(resource.url, base_url)
    if url is None:
        return None
    content_type = resource.content_type if resource.content_type in CONTENT_TYPES else "page"
    title = clean_text(resource.title, TITLE_MAX) or url
    thumbnail = absolute_url(resource.thumbnail, url) if resource.thumbnail else None
    return Resource(
        url=url,
        title=title,
        description=clean_text(resource.description, DESCRIPTION_MAX),
        content_type=content_type,
        source_id=resource.source_id,
        organization=clean_text(resource.organization, 200) or None,
        published=parse_date(resource.published),
        updated=parse_date(resource.updated),
        topics=sorted({t for t in resource.topics if t}),
        systems=sorted({s for s in resource.systems if s}),
        author=clean_text(resource.author, 200) or None,
        language=clean_text(resource.language, 20) or None,
        thumbnail=thumbnail,
        excerpt=clean_text(resource.excerpt, EXCERPT_MAX) or None,
        extra=dict(resource.extra),
        raw=resource.raw,
    )


def fold(text: str) -> str:
    """Lower case without accents."""
    if not text:
        return ""
    if text.isascii():  # nothing to decompose, no combining marks
        return text.lower()
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).lower()
