"""Conference program pages: one event per session.

Three ways to read a page, tried in this order:

1. **schema.org JSON-LD**: ``<script type="application/ld+json">`` objects whose ``@type`` is an
   Event; a conference's ``subEvent`` list gives its sessions (and its ``name`` the event name).
   Without JSON-LD events, schema.org **microdata** Events (``itemscope``/``itemprop``) are read
   the same way.
2. **selectors** from the registry: ``session`` picks each session block; ``title``, ``time``,
   ``presenters``, ``description``, ``location``, ``type``, ``slides``, ``recording`` and ``link``
   are read inside it; ``day`` picks the day headings that state the date once for the
   sessions after them. Without a ``title`` selector a session block is read as a line
   "time | title | presenters", and its description is the text after it up to the next
   session or day heading.
3. **automatic**: day headings are h1–h6/dt whose text is a date (or just a year), or a paragraph
   that is nothing but a date; sessions are
   paragraphs, list items, table rows and headings that start with a time, or list items
   with a slides link; each is read as a line, as above.

The year comes from the day heading, else the source's ``year``, else the page's title; the
time zone from a label on the session's own time ("10:00 am PT"), else the source's
``timezone``, else the page's statement ("All times are Pacific"). A session without a link
of its own gets ``PAGE?session=DATE-title-slug`` (see :func:`pipeline.events.session_link`),
where PAGE is the page's ``<link rel="canonical">`` if it has one, else its URL.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from cssselect import SelectorError
from lxml import etree
from parsel import Selector
from parsel.csstranslator import css2xpath
from w3lib.encoding import html_to_unicode

from harvesters.parsers.eventdata import (
    Draft,
    Page,
    draft_from_jsonld,
    drafts_from_jsonld,
    event_name_of,
    iso_date,
    jsonld_objects,
    microdata_objects,
)
from harvesters.parsers.eventtext import (
    BadTime,
    ParsedEvents,
    aware_times,
    find_day,
    find_year,
    looks_like_recording,
    looks_like_slides,
    page_timezone,
    parse_clock,
    parse_presenters,
    session_link,
    session_times,
    session_type,
    slug,
)
from harvesters.parsers.text import node_text, visible_text
from pipeline.events import event_fields
from pipeline.normalize import clean_text
from pipeline.resource import Resource
from pipeline.urls import absolute_url, canonical_url

SELECTOR_FIELDS = ("day", "session", "title", "time", "presenters", "description", "location", "type", "slides",
                   "recording", "link")
AUTO_DAY = "h1, h2, h3, h4, h5, h6, dt, p"
AUTO_SESSION = "p, li, tr, dt, h2, h3, h4, h5, h6"
BLOCK_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
MAX_DESCRIPTION_SIBLINGS = 8
_SEPARATORS = " \t|–—-:,;·•"


_PRESENTED_BY = re.compile(r"^\s*(?:presented by|presenters?\s*:|speakers?\s*:|panelists?\s*:)\s*(.+)$",
                           re.IGNORECASE | re.MULTILINE)


class NoSessions(ValueError):
    """The page yielded no sessions at all."""


def _first_text(node: Any, css: str | None) -> str:
    if not css:
        return ""
    return " ".join(t for t in (node_text(n) for n in node.css(css)) if t)


def _links(nodes: list[Any], base: str) -> list[tuple[str, str]]:
    out = []
    for node in nodes:
        for a in node.css("a[href]"):
            href = absolute_url(a.attrib.get("href"), base)
            if href:
                out.append((href, node_text(a)))
    return out


def _pick_media(links: list[tuple[str, str]], draft: Draft) -> None:
    for href, text in links:
        if draft.recording is None and looks_like_recording(href, text):
            draft.recording = href
        elif draft.slides is None and looks_like_slides(href, text):
            draft.slides = href


def decode(body: bytes, http_content_type: str | None) -> str:
    _, text = html_to_unicode(http_content_type, body)
    return text


# -- HTML: selectors or automatic ---------------------------------------------------------


def _xpath(css: str) -> str:
    return " | ".join(f"({css2xpath(part.strip())})" for part in css.split(","))


def _line_fields(line: str) -> tuple[str, str, str]:
    """(time text, title, presenters) from "time | title | presenters" or "time title"."""
    parts = [p.strip() for p in line.split("|")]
    parts = [p for p in parts if p]
    if len(parts) >= 2:
        try:
            first_is_time = parse_clock(parts[0]) is not None
        except BadTime:
            first_is_time = True
        if first_is_time or re.match(r"^\s*\d", parts[0]):
            return parts[0], parts[1], " | ".join(parts[2:])
        return "", parts[0], " | ".join(parts[1:])
    try:
        clock = parse_clock(line)
    except BadTime:
        m = re.match(r"^\s*(\S+)\s+(.*)$", line)
        return (m.group(1), m.group(2), "") if m else ("", line, "")
    if clock is None:
        return "", line, ""
    return clock.text, clock.rest.strip(_SEPARATORS), ""


def _read_clock(draft: Draft, text: str, label: str, out: ParsedEvents, anchored: bool = True) -> None:
    draft.time_text = text
    if not text:
        return
    day, _, rest = find_day(text, draft.year)
    if day:
        draft.day, draft.year = day, day.year
        text = rest
    try:
        draft.clock = parse_clock(text, anchored=anchored)
    except BadTime as e:
        draft.time_problem = str(e)
        return
    if draft.clock is None:
        if text.strip():
            draft.time_problem = f"unreadable time {text[:30]!r}"
        return
    leftover = draft.clock.rest.strip(_SEPARATORS + " ")
    if anchored and draft.clock.end is None and re.match(r"^\s*[-–—]|^\s*to\b", draft.clock.rest):
        out.warn(f"{label}: could not read the end time in {text[:40]!r}; kept the start")
    elif anchored and leftover and not draft.clock.end and len(leftover) < 15:
        out.warn(f"{label}: extra text {leftover!r} after the time {draft.clock.text!r}")


def _following_text(node: Any, stop: set[Any], limit: int = MAX_DESCRIPTION_SIBLINGS) -> tuple[str, list[Any]]:
    texts, nodes = [], []
    sibling = node.root.getnext()
    while sibling is not None and len(nodes) < limit:
        if sibling in stop or (isinstance(sibling.tag, str) and sibling.tag in BLOCK_TAGS):
            break
        if isinstance(sibling.tag, str):
            wrapped = Selector(root=sibling, type="html")
            nodes.append(wrapped)
            text = node_text(wrapped)
            if text:
                texts.append(text)
        sibling = sibling.getnext()
    return "\n".join(texts), nodes


def _minus(text: str, *parts: str) -> str:
    for part in parts:
        if part:
            text = text.replace(part, " ")
    return clean_text(text).strip(_SEPARATORS + "()[] ")


def draft_from_block(node: Any, sels: dict[str, str | None], day: date | None, year: int | None, page: Page,
                     stop: set[Any], out: ParsedEvents, index: int) -> Draft | None:
    line = node_text(node)
    if not line:
        return None
    draft = Draft(title="", day=day, year=year, event_name=page.event_name)
    label = f"session #{index} ({line[:40]!r})"
    described: list[Any] = [node]
    if sels.get("title"):
        draft.title = _first_text(node, sels["title"])
        _read_clock(draft, _first_text(node, sels.get("time")), label, out, anchored=False)
        presenters = _first_text(node, sels.get("presenters"))
        draft.description = _first_text(node, sels.get("description"))
        if not presenters and not sels.get("presenters"):
            # the text left once the title, time, links... are taken out, when it is short
            link_texts = [t for _, t in _links([node], page.url)]
            presenters = _minus(line, draft.title, draft.time_text, draft.description, _first_text(node, sels.get("location")),
                                _first_text(node, sels.get("type")), *link_texts)
            presenters = presenters if len(presenters) < 200 else ""
        draft.presenters = parse_presenters(presenters)
    else:
        time_text, title, presenters = _line_fields(line)
        draft.title = title
        _read_clock(draft, time_text, label, out)
        if sels.get("time") and not time_text:
            _read_clock(draft, _first_text(node, sels["time"]), label, out, anchored=False)
        if sels.get("presenters"):
            presenters = _first_text(node, sels["presenters"])
        draft.presenters = parse_presenters(presenters)
        if sels.get("description"):
            draft.description = _first_text(node, sels["description"])
        else:
            draft.description, siblings = _following_text(node, stop)
            described += siblings
        # link texts such as "(Slides)" are not part of the title
        for _, text in _links([node], page.url):
            if text and draft.title.endswith(text):
                draft.title = draft.title[: -len(text)]
        draft.title = draft.title.strip(_SEPARATORS + "()[] ")
        if not draft.title and draft.clock and draft.description:
            # a time on a line of its own: the title is the next line, the rest describes it
            first, _, rest = draft.description.partition("\n")
            draft.title = first.strip(_SEPARATORS)
            draft.description = rest.strip()
        if not draft.presenters:
            # "Presented by …", "Speakers: …" on a line of the description
            m = _PRESENTED_BY.search(draft.description)
            if m:
                draft.presenters = parse_presenters(m.group(1))
    if not draft.title:
        out.warn(f"{label}: no title found; skipped")
        return None
    draft.location = _first_text(node, sels.get("location"))
    hints = [_first_text(node, sels.get("type")), node.attrib.get("class", "")]
    draft.type_hint = " ".join(h for h in hints if h) or None
    for name, attr in (("slides", "slides"), ("recording", "recording")):
        if sels.get(name):
            href = absolute_url(node.css(sels[name]).attrib.get("href"), page.url)
            setattr(draft, attr, href)
    _pick_media(_links(described, page.url), draft)
    own = None
    if sels.get("link"):
        own = node.css(sels["link"]).attrib.get("href")
    elif sels.get("title"):
        own = node.css(sels["title"]).css("a[href]").attrib.get("href") or (
            node.css(sels["title"]).attrib.get("href"))
    if own:
        href = absolute_url(own, page.url)
        if href and href not in (draft.slides, draft.recording) and canonical_url(href) != canonical_url(page.url):
            draft.link = href
    return draft


def drafts_from_html(sel: Selector, sels: dict[str, str | None], page: Page, out: ParsedEvents,
                     auto: bool) -> list[Draft]:
    session_xp = _xpath(sels["session"] or AUTO_SESSION)
    day_xp = _xpath(sels["day"]) if sels.get("day") else None
    sessions = sel.xpath(session_xp)
    if auto:
        sessions = _auto_sessions(sessions, page.url)
    session_roots = {s.root for s in sessions}
    days = sel.xpath(day_xp) if day_xp else []
    if auto:  # only paragraphs that are nothing but a date stand as day headings
        days = [d for d in days if d.root.tag in BLOCK_TAGS or d.root.tag == "dt" or _is_date_line(node_text(d))]
    day_roots = {d.root for d in days if d.root not in session_roots}
    stop = session_roots | day_roots
    position = {el: i for i, el in enumerate(sel.root.getroottree().iter())}
    ordered = sorted(list(sessions) + [d for d in days if d.root in day_roots], key=lambda n: position[n.root])
    day: date | None = None
    year = page.year
    drafts: list[Draft] = []
    for node in ordered:
        if node.root in day_roots:
            text = node_text(node)
            found, found_year, _ = find_day(text, page.year)
            if found:
                day, year = found, found_year
            elif find_year(text) and len(text) < 60 and (not auto or node.root.tag in BLOCK_TAGS):
                day, year = None, find_year(text)
            elif not auto:
                out.warn(f"day heading {text[:40]!r} states no date; sessions after it have no date")
                day = None
            continue
        draft = draft_from_block(node, sels, day, year, page, stop, out, len(drafts) + 1)
        if draft:
            drafts.append(draft)
    return drafts


def _is_date_line(text: str) -> bool:
    found, _, rest = find_day(text, 2000)
    return found is not None and len(text) <= 50 and len(rest) <= 20


def _auto_sessions(candidates: list[Any], base: str) -> list[Any]:
    chosen = []
    for node in candidates:
        text = node_text(node)
        if not text or len(text) > 600:
            continue
        try:
            starts_with_time = parse_clock(text.split("|")[0]) is not None
        except BadTime:
            starts_with_time = "|" in text
        if starts_with_time or (node.root.tag == "li" and any(looks_like_slides(h, t) for h, t in _links([node], base))):
            chosen.append(node)
    roots = {n.root for n in chosen}
    inner = []
    for node in chosen:
        if not any(child in roots for child in node.root.iterdescendants()):
            inner.append(node)
    return inner


# -- the parser -------------------------------------------------------------------------


_GENERIC = re.compile(r"\s*[-–—:|]?\s*\b(conference\s+)?(program(me)?|schedule|agenda|sessions?)\b\s*"
                      r"(?=(\([^)]*\))?\s*$)", re.IGNORECASE)


def event_name_from(heading: str, title: str) -> str | None:
    """The event's name from the page's h1, else its <title> (split on " | ", " – "): the first
    that is more than a word such as "Schedule", with a trailing "Program"/"Schedule" removed."""
    candidates = [heading] + [p for p in re.split(r"\s+[|–—-]\s+", title)]
    for text in candidates:
        name = re.sub(r"\s+", " ", _GENERIC.sub(" ", text)).strip(" -–—:|")
        if name and name.lower() not in ("home", "past conferences") and len(name) > 3:
            return name
    return None


def page_context(sel: Selector, url: str, event_name: str | None, year: int | None,
                 timezone: str | None) -> Page:
    heading = clean_text(sel.css("h1").xpath("string()").get() or "", 200)
    title = clean_text(sel.css("title::text").get() or "", 200)
    body_text = visible_text(sel.xpath("//body"), limit=20000)
    # session links hang off the page's canonical address when it declares one
    canonical = absolute_url(sel.xpath('//link[@rel="canonical"]/@href').get(), url)
    return Page(url=canonical or url, event_name=event_name or event_name_from(heading, title),
                year=year or find_year(heading) or find_year(title),
                tz=timezone or page_timezone(body_text))


def finish(draft: Draft, page: Page, out: ParsedEvents, include_breaks: bool, keys: set[str]) -> Resource | None:
    kind = session_type(draft.title, draft.type_hint)
    if kind == "break" and not include_breaks:
        out.skipped["breaks"] = out.skipped.get("breaks", 0) + 1
        return None
    label = f"session {draft.title[:60]!r}: "
    if draft.start is not None or draft.end is not None:
        times = aware_times(draft.start, draft.end, page.tz, label=label)
    else:
        times = session_times(draft.day, draft.clock, page.tz, label=label)
        if draft.clock is not None and draft.day is None:
            out.warn(f"{label}time {draft.clock.text!r} has no date (no day heading or year); kept without one")
    for w in times.warnings:
        out.warn(w)
    if draft.time_problem:
        out.warn(f"{label}{draft.time_problem}; kept without a time")
    year = times.year or (draft.day.year if draft.day else None) or draft.year or page.year
    link = draft.link
    if not link:
        when = draft.day.isoformat() if draft.day else (times.starts_at or "")[:10] or (str(year) if year else "")
        key = f"{when}-{slug(draft.title)}".strip("-")
        if key in keys:
            key = f"{key}-{(times.starts_at or '')[11:16].replace(':', '')}".rstrip("-")
        n = 2
        base_key = key
        while key in keys:
            key, n = f"{base_key}-{n}", n + 1
        keys.add(key)
        link = session_link(page.url, key)
    return Resource(
        url=link, title=draft.title, description=draft.description, content_type="event",
        extra=event_fields(
            starts_at=times.starts_at, ends_at=times.ends_at, timezone=times.timezone or page.tz,
            location=draft.location, presenters=draft.presenters, event_name=draft.event_name or page.event_name,
            event_year=year, session_type=kind, slides_url=draft.slides, recording_url=draft.recording,
            time_text=draft.time_text or None,
        ),
        raw={"title": draft.title, "time": draft.time_text, "day": draft.day.isoformat() if draft.day else None,
             "presenters": draft.presenters, "description": draft.description[:2000], "location": draft.location,
             "type": draft.type_hint, "slides": draft.slides, "recording": draft.recording, "link": draft.link},
    )


def parse_program(body: bytes, url: str, *, source_id: str = "", organization: str | None = None,
                  event_name: str | None = None, year: int | None = None, timezone: str | None = None,
                  selectors: dict[str, str | None] | None = None, include_breaks: bool = False,
                  max_items: int = 1000, http_content_type: str | None = None) -> ParsedEvents:
    """Sessions of a program page. Raises :class:`NoSessions` when nothing on the page reads as one."""
    text = decode(body, http_content_type)
    if not text.strip():
        raise NoSessions("got an empty page")
    try:
        sel = Selector(text=text, type="html", base_url=url)
    except (ValueError, etree.ParserError) as e:
        raise NoSessions(f"the page could not be read as HTML ({e})") from None
    page = page_context(sel, url, event_name, year, timezone)
    out = ParsedEvents(title=page.event_name or "", resources=[])
    structured = "json-ld"
    drafts, conference = drafts_from_jsonld(jsonld_objects(sel, out), page, out)
    if not drafts and conference is None:
        structured = "microdata"
        drafts, conference = drafts_from_jsonld(microdata_objects(sel, url), page, out)
    method = structured
    if not drafts:
        if conference is not None:
            # the page's one Event is the conference: its name and year for the sessions below
            page.event_name = event_name or event_name_of(conference.get("name")) or page.event_name
            start = iso_date(conference.get("startDate"))
            page.year = year or (start.year if start else None) or page.year
            out.title = page.event_name or out.title
        sels = {k: (selectors or {}).get(k) for k in SELECTOR_FIELDS}
        auto = not sels.get("session")
        if auto:
            sels["day"] = sels.get("day") or AUTO_DAY
        try:
            drafts = drafts_from_html(sel, sels, page, out, auto)
        except (ValueError, SelectorError) as e:  # selectors not checked by the registry
            raise NoSessions(f"the selectors could not be applied ({e})") from None
        method = "automatic" if auto else "selectors"
        if not drafts and conference is not None:
            drafts = [d for d in (draft_from_jsonld(conference, page, out, None),) if d]
            method = structured
    if not drafts:
        how = ("the selectors matched no session; check selectors.session against the page" if method == "selectors"
               else "no schema.org Event JSON-LD or microdata and no line starting with a time; set selectors "
               "(see docs/events.md)")
        raise NoSessions(f"no sessions found: {how}")
    keys: set[str] = set()
    if len(drafts) > max_items:
        out.warn(f"program has {len(drafts)} sessions; kept the first {max_items} (max_items)")
        drafts = drafts[:max_items]
    for draft in drafts:
        resource = finish(draft, page, out, include_breaks, keys)
        if resource is not None:
            resource.source_id = source_id
            resource.organization = organization
            out.resources.append(resource)
    out.method = method
    return out
