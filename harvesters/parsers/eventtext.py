"""Reading events from text: times and time zones, days, session types, presenters, stable
session links.

Pure helpers shared by the ``ical`` and ``conference`` parsers. Every time stored is
UTC ISO-8601; the original IANA time zone is kept beside it. Nothing here raises on
bad input: a time that cannot be read gives ``None`` and a one-line warning. What an
event resource carries is ``pipeline.events``'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from w3lib.url import add_or_replace_parameter

from pipeline.normalize import clean_text, fold, iso_utc
from pipeline.resource import Resource

MAX_WARNINGS = 20

#: Time-zone words and abbreviations seen on North American programs → IANA zones. A label
#: names the zone; whether standard or daylight time applies is decided by the date.
TZ_WORDS: dict[str, str] = {
    "pacific": "America/Los_Angeles", "pt": "America/Los_Angeles", "pst": "America/Los_Angeles",
    "pdt": "America/Los_Angeles",
    "mountain": "America/Denver", "mt": "America/Denver", "mst": "America/Denver", "mdt": "America/Denver",
    "central": "America/Chicago", "ct": "America/Chicago", "cst": "America/Chicago", "cdt": "America/Chicago",
    "eastern": "America/New_York", "et": "America/New_York", "est": "America/New_York",
    "edt": "America/New_York",
    "alaska": "America/Anchorage", "akst": "America/Anchorage", "akdt": "America/Anchorage",
    "hawaii": "Pacific/Honolulu", "hst": "Pacific/Honolulu",
    "atlantic": "America/Halifax", "ast": "America/Halifax", "adt": "America/Halifax",
    "utc": "UTC", "gmt": "UTC",
}
_TZ_ABBR = "PT|PST|PDT|MT|MST|MDT|CT|CST|CDT|ET|EST|EDT|AKST|AKDT|HST|AST|ADT|UTC|GMT"
_TZ_WORD = "Pacific|Mountain|Central|Eastern|Alaska|Hawaii|Atlantic"
_IANA = re.compile(r"\b((?:America|Europe|Pacific|Asia|Australia|Africa|Atlantic)/[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_]+)?)\b")
_PAGE_TZ = re.compile(
    r"\btimes?\b[^.\n|]{0,40}?\b(?:(?P<word>" + _TZ_WORD + r")(?:\s+(?:standard|daylight))?(?:\s+time)?\b"
    r"|(?P<abbr>" + _TZ_ABBR + r")\b)",
    re.IGNORECASE,
)

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
    "nov": 11, "dec": 12,
}
_MONTH = (r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DAY_PATTERNS = (
    re.compile(r"\b" + _MONTH + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>(?:19|20)\d{2})\b)?",
               re.IGNORECASE),
    re.compile(r"\b(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r"(?:,?\s+(?P<year>(?:19|20)\d{2})\b)?",
               re.IGNORECASE),
    re.compile(r"\b(?P<year>(?:19|20)\d{2})-(?P<monnum>\d{1,2})-(?P<day>\d{1,2})\b"),
    re.compile(r"\b(?P<monnum>\d{1,2})/(?P<day>\d{1,2})/(?P<year>(?:19|20)?\d{2})\b"),
)
YEAR = re.compile(r"\b((?:19|20)\d{2})\b")

_CLOCK = (r"(?:(?P<{n}h>\d{{1,2}})(?:[:.](?P<{n}m>\d{{2}}))?\s*(?P<{n}ap>[ap]\.?\s?m\b\.?)?"
          r"|(?P<{n}w>noon|midnight))")
TIME_RANGE = re.compile(
    r"(?P<all>" + _CLOCK.format(n="s") + r"(?:\s*(?:-|–|—|to|until)\s*" + _CLOCK.format(n="e") + r")?)"
    r"(?:\s*\(?(?P<tz>" + _TZ_ABBR + r"|(?:" + _TZ_WORD + r")(?:\s+time)?)\b\)?)?",
    re.IGNORECASE,
)


@dataclass
class ParsedEvents:
    """What a parser read from one calendar or program page."""

    title: str
    resources: list[Resource]
    warnings: list[str] = field(default_factory=list)
    #: What was left out on purpose (breaks unless ``include_breaks``; cancelled events): counts.
    skipped: dict[str, int] = field(default_factory=dict)
    #: How a program page was read: json-ld, selectors or automatic ("" for calendars).
    method: str = ""

    def warn(self, message: str) -> None:
        if message in self.warnings:
            return
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append("more warnings left out")


class BadTime(ValueError):
    """A time that is there but cannot be read (``25:99``, ``9:00 – TBD``)."""


@dataclass
class Clock:
    """A start (and maybe end) time of day read from text, and a zone label if the text had one."""

    start: time
    end: time | None = None
    tz: str | None = None
    text: str = ""
    rest: str = ""


@dataclass
class EventTimes:
    starts_at: str | None = None
    ends_at: str | None = None
    timezone: str | None = None
    year: int | None = None
    warnings: list[str] = field(default_factory=list)


# -- time zones -----------------------------------------------------------------------


def zone(name: str | None) -> ZoneInfo | None:
    """An IANA zone from a name or a word/abbreviation in :data:`TZ_WORDS`; None if unknown."""
    if not name:
        return None
    name = name.strip()
    key = re.sub(r"\s+(standard|daylight)?\s*time$", "", name.lower()).strip()
    name = TZ_WORDS.get(key, name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def page_timezone(text: str, limit: int = 4000) -> str | None:
    """The time zone a program states once near its top ("All times are Pacific", "Times in CT",
    "America/Chicago"), as an IANA name; None when it says nothing."""
    head = text[:limit]
    m = _IANA.search(head)
    if m and zone(m.group(1)):
        return m.group(1)
    m = _PAGE_TZ.search(head)
    if m:
        word = (m.group("word") or m.group("abbr") or "").lower()
        return TZ_WORDS.get(word)
    return None


# -- dates and times ------------------------------------------------------------------


def find_day(text: str, default_year: int | None = None) -> tuple[date | None, int | None, str]:
    """The date named in a day heading ("Thursday, October 1", "Oct 1, 2020", "2020-10-01"):
    (date or None, the year named or assumed, the text with the date removed)."""
    for pattern in _DAY_PATTERNS:
        m = pattern.search(text)
        if not m:
            continue
        gd = m.groupdict()
        month = _MONTHS[gd["mon"][:3].lower()] if gd.get("mon") else int(gd["monnum"])
        year = int(gd["year"]) if gd.get("year") else default_year
        if year is not None and year < 100:
            year += 2000
        if year is None:
            return None, None, text
        try:
            return date(year, month, int(gd["day"])), year, (text[: m.start()] + text[m.end():]).strip(" ,-–—|")
        except ValueError:
            continue
    return None, None, text


def find_year(text: str) -> int | None:
    m = YEAR.search(text or "")
    return int(m.group(1)) if m else None


def _to_time(h: str | None, m: str | None, ap: str | None, word: str | None) -> tuple[int, int, bool] | None:
    """(hour, minute, has_meridiem) or None if out of range."""
    if word:
        return (12, 0, True) if word.lower() == "noon" else (0, 0, True)
    hour, minute = int(h), int(m or 0)
    if minute > 59:
        return None
    if ap:
        if not 1 <= hour <= 12:
            return None
        pm = ap.lower().startswith("p")
        hour = hour % 12 + (12 if pm else 0)
        return hour, minute, True
    if hour > 24 or (hour == 24 and minute):
        return None
    return hour % 24, minute, False


def _meridiem(ap: str | None) -> str | None:
    return ap.lower()[0] if ap else None


def parse_clock(text: str, *, anchored: bool = True) -> Clock | None:
    """Read a time or time range ("9:00 – 9:45 am", "10:30am-12pm PT", "13:00–14:30", "Noon").

    Returns None when the text holds no time. Raises :class:`BadTime` when it holds
    something shaped like a time that cannot be read. Rules: a start without am/pm takes
    the end's, unless that would put it after the end ("11:00 – 1:00 pm" is 11 am); with no
    am/pm anywhere the clock is read as 24-hour, except that hours 1–6 are read as afternoon
    (conference sessions at 2:00 are at 14:00).
    """
    text = text.strip()
    if anchored:
        m = TIME_RANGE.match(text)
    else:  # the first time in the text ("Room 101, 9:00 am": not 10, but 9:00 am)
        m = next((c for c in TIME_RANGE.finditer(text)
                  if c.group("all").strip() and (c.group("sm") or c.group("sap") or c.group("sw")
                                                 or c.group("em") or c.group("eap") or c.group("ew"))), None)
    if not m or not m.group("all").strip():
        if re.match(r"^\s*\d{1,2}[:.]\d", text):
            raise BadTime(f"unreadable time {text[:30]!r}")
        return None
    g = m.groupdict()
    has_start_detail = g["sm"] or g["sap"] or g["sw"]
    has_end = g["eh"] or g["ew"]
    has_end_detail = has_end and (g["em"] or g["eap"] or g["ew"])
    if not (has_start_detail or has_end_detail):
        return None  # a bare number ("Session 2") is not a time
    start = _to_time(g["sh"], g["sm"], g["sap"], g["sw"])
    end = _to_time(g["eh"], g["em"], g["eap"], g["ew"]) if has_end else None
    if start is None or (has_end and end is None):
        raise BadTime(f"unreadable time {m.group('all').strip()!r}")
    sh, smin, s_has = start
    if end is not None:
        eh, emin, e_has = end
        if not s_has and e_has and g["eap"] and g["sh"]:
            # "9:00 – 9:45 am", "11:00 – 1:00 pm": the start takes the end's half of the day,
            # unless that puts it after the end.
            raw = int(g["sh"]) % 12
            same = raw + (12 if _meridiem(g["eap"]) == "p" else 0)
            other = raw + (0 if _meridiem(g["eap"]) == "p" else 12)
            sh = same if (same, smin) <= (eh, emin) else other
            s_has = True
        if not s_has and not e_has:
            sh = sh + 12 if 1 <= sh <= 6 else sh
            eh = eh + 12 if 1 <= eh <= 6 else eh
        elif not e_has and s_has and g["eh"]:
            eh = eh + 12 if eh < 12 and (eh, emin) < (sh, smin) and sh >= 12 else eh
        end_t = time(eh, emin)
    else:
        if not s_has:
            sh = sh + 12 if 1 <= sh <= 6 else sh
        end_t = None
    tz = g.get("tz")
    return Clock(start=time(sh, smin), end=end_t, tz=tz, text=m.group(0).strip(),
                 rest=(text[: m.start()] + text[m.end():]).strip())


def localize(day: date, clock: time, tz: ZoneInfo) -> tuple[datetime, str | None]:
    """``day`` at ``clock`` in ``tz`` as an aware datetime, and a warning for a local time that
    does not exist (the spring-forward gap: read with the offset before the change, so
    2:30 becomes 3:30 daylight time) or happens twice (the fall-back hour: the first, daylight,
    one is used)."""
    naive = datetime.combine(day, clock)
    first = naive.replace(tzinfo=tz, fold=0)
    back = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if back != naive:
        return first, (f"{naive:%Y-%m-%d %H:%M} does not exist in {tz.key} (daylight-saving change); "
                       f"read as {back:%H:%M}")
    second = naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        return first, (f"{naive:%Y-%m-%d %H:%M} happens twice in {tz.key} (daylight-saving change); "
                       "read as the first")
    return first, None


def session_times(day: date | None, clock: Clock | None, tz_name: str | None, *, label: str = "") -> EventTimes:
    """UTC start and end of a session on ``day`` at ``clock``. A time label in the text itself
    ("10:00 am PT") beats the page's or source's zone; a session that ends before it starts
    spans midnight and ends the next day."""
    out = EventTimes(year=day.year if day else None)
    if clock is not None and clock.tz:
        tz_name = TZ_WORDS.get(re.sub(r"\s+time$", "", clock.tz.lower()), tz_name)
    tz = zone(tz_name)
    out.timezone = tz.key if tz else None
    if day is None or clock is None:
        return out
    if tz is None:
        tz = ZoneInfo("UTC")
        out.warnings.append("no time zone stated on the page or in the registry; times read as UTC "
                            "(set the source's timezone)")
    start, warning = localize(day, clock.start, tz)
    if warning:
        out.warnings.append(label + warning)
    out.starts_at = iso_utc(start)
    if clock.end is not None:
        end_day = day + timedelta(days=1) if clock.end <= clock.start else day
        end, warning = localize(end_day, clock.end, tz)
        if warning:
            out.warnings.append(label + warning)
        out.ends_at = iso_utc(end)
    return out


def aware_times(start: datetime | date | None, end: datetime | date | None, tz_name: str | None,
                *, label: str = "") -> EventTimes:
    """UTC times from datetimes that may be aware, floating (no zone: read in ``tz_name``) or
    dates (all-day: midnight in ``tz_name``)."""
    out = EventTimes()
    tz = zone(tz_name)
    out.timezone = tz.key if tz else None
    values = []
    for value in (start, end):
        if value is None:
            values.append(None)
            continue
        if not isinstance(value, datetime):
            value = datetime.combine(value, time(0))
        if value.tzinfo is None:
            if tz is None:
                if not out.warnings or "floating" not in out.warnings[-1]:
                    out.warnings.append("floating times and no time zone; read as UTC (set the source's timezone)")
                value = value.replace(tzinfo=UTC)
            else:
                value, warning = localize(value.date(), value.time(), tz)
                if warning:
                    out.warnings.append(label + warning)
        values.append(value)
    s, e = values
    if s is not None:
        out.starts_at = iso_utc(s)
        out.year = s.astimezone(tz).year if tz else s.year
    if e is not None:
        if s is not None and e < s:
            out.warnings.append(f"{label}ends before it starts; end time dropped")
        else:
            out.ends_at = iso_utc(e)
    return out


# -- session types, presenters, links ---------------------------------------------------

_BREAK_WORDS = {
    "break", "breaks", "coffee", "tea", "lunch", "breakfast", "snack", "snacks", "refreshments", "registration",
    "check", "in", "checkin", "morning", "afternoon", "on", "your", "own", "provided", "and", "stretch", "the",
    "a", "buffet", "continental", "boxed", "served", "with", "exhibitors", "vendors", "visit", "hall",
}
_BREAK_CORE = {"break", "breaks", "coffee", "lunch", "breakfast", "snack", "snacks", "refreshments", "registration",
               "checkin", "check"}
_KEYNOTE = re.compile(r"\b(keynote|plenary)\b", re.IGNORECASE)
_PRECONF = re.compile(r"\bpre[- ]?conference\b", re.IGNORECASE)
_SOCIAL = re.compile(
    r"\b(reception|happy hour|social hour|networking|dinner|meet[- ]?up|mixer|trivia night|social(?!\s+media))\b",
    re.IGNORECASE,
)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(text))


def _type_of(text: str, explicit: bool) -> str | None:
    if _PRECONF.search(text):
        return "preconference"
    if _KEYNOTE.search(text):
        return "keynote"
    words = set(_words(text))
    if words and words <= _BREAK_WORDS and words & _BREAK_CORE:
        return "break"
    if _SOCIAL.search(text) or (explicit and "socialevent" in fold(text)):
        return "social"
    if explicit and fold(text).strip() in ("break", "social", "keynote", "preconference"):
        return fold(text).strip()
    return None


def session_type(title: str, hint: str | None = None) -> str:
    """keynote, preconference, social, break or session: from an explicit type (a category, a
    CSS class, a schema.org type) when it names one, else from the title. A title made only of
    break words ("Lunch on your own", "Morning coffee break") is a break; "Lunch and Learn:
    Tipasa" is not; "Social Media for ILL" is a session, "Evening Social" is social."""
    for text, explicit in ((hint, True), (title, False)):
        if text:
            found = _type_of(text, explicit)
            if found:
                return found
    return "session"


_ORG_WORDS = re.compile(
    r"\b(university|college|library|libraries|institute|consortium|oclc|atlas|systems|inc|llc|state|school|"
    r"center|centre|department|council|association|museum|archives?|network|project|district|county|"
    r"ex libris|clarivate|foundation|hospital|press|society|alliance|lyrasis|idaho|oregon|washington)\b",
    re.IGNORECASE,
)
_PRESENTER_PREFIX = re.compile(r"^\s*(presenters?|speakers?|panelists?|moderators?|facilitators?|by)\s*:?\s*",
                               re.IGNORECASE)


def parse_presenters(text: str | None) -> list[dict[str, str | None]]:
    """People and their affiliations from text such as "Jane Doe, Univ. of X; John Roe, Y College",
    "Jane Doe (Univ. of X) and John Roe (Y)" or "Jane Doe, John Roe & Ann Poe". A comma part that
    reads like an organization (University, Library, Consortium, OCLC…) is the affiliation of
    the name before it."""
    text = clean_text(text or "", 1000)
    text = _PRESENTER_PREFIX.sub("", text).strip(" .;")
    if not text:
        return []
    people: list[dict[str, str | None]] = []
    paren = list(re.finditer(r"([^();,&]+?)\s*\(([^()]+)\)", text))
    if paren:
        for m in paren:
            name = re.sub(r"^(and|&)\s+", "", m.group(1).strip(" ,;/"), flags=re.IGNORECASE).strip()
            if name:
                people.append({"name": name, "affiliation": m.group(2).strip()})
        return people
    if ";" in text:
        for part in text.split(";"):
            name, _, aff = part.strip().partition(",")
            name = re.sub(r"^(and|&)\s+", "", name.strip(), flags=re.IGNORECASE)
            if name:
                people.append({"name": name, "affiliation": aff.strip() or None})
        return people
    parts = [p.strip() for p in re.split(r",|\s+&\s+|\s+and\s+|\s+/\s+", text) if p and p.strip()]
    for part in parts:
        part = re.sub(r"^(and|&)\s+", "", part, flags=re.IGNORECASE)
        if people and _ORG_WORDS.search(part):
            if people[-1]["affiliation"]:
                people[-1]["affiliation"] = f"{people[-1]['affiliation']}, {part}"
            else:
                people[-1]["affiliation"] = part
        else:
            people.append({"name": part, "affiliation": None})
    return people


def slug(text: str, limit: int = 60) -> str:
    s = "-".join(_words(text))
    return s[:limit].rstrip("-") or "session"


def session_link(page_url: str, key: str) -> str:
    """A stable link for a session that has none of its own: the program page with
    ``?session=KEY`` (a query, because canonical URLs drop fragments)."""
    return add_or_replace_parameter(page_url, "session", key)


def looks_like_slides(href: str, text: str = "") -> bool:
    h, t = href.lower(), fold(text)
    return (bool(re.search(r"\b(slides?|slide deck|presentation|handouts?|ppt)\b", t))
            or h.split("?")[0].endswith((".pdf", ".ppt", ".pptx", ".key", ".odp"))
            or "docs.google.com/presentation" in h or "slideshare.net" in h or "speakerdeck.com" in h)


def looks_like_recording(href: str, text: str = "") -> bool:
    h, t = href.lower(), fold(text)
    return (bool(re.search(r"\b(recording|recorded|video|watch|webinar recording)\b", t))
            or any(s in h for s in ("youtube.com/watch", "youtu.be/", "vimeo.com/", "youtube.com/live",
                                    "zoom.us/rec", "panopto"))
            or h.split("?")[0].endswith((".mp4", ".mov", ".webm", ".mp3")))
