"""schema.org Event data on a program page (JSON-LD, or microdata on older sites): the sessions
a page describes about itself, as drafts for the conference parser
(``harvesters/parsers/conference.py``).

Microdata (``itemscope``/``itemprop``) is read with extruct into the same shape as JSON-LD
(``@type``, ``name``, ``startDate``, ``location``, ``performer``, ``subEvent`` …), so one
reader serves both."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from parsel import Selector

from harvesters.parsers.eventtext import Clock, ParsedEvents, looks_like_recording, looks_like_slides, parse_presenters
from harvesters.parsers.structured import as_list, schema_types
from pipeline.normalize import clean_text
from pipeline.urls import absolute_url


@dataclass
class Draft:
    """A session as read, before times are resolved."""

    title: str
    day: date | None = None
    year: int | None = None
    clock: Clock | None = None
    time_text: str = ""
    time_problem: str | None = None
    start: datetime | date | None = None
    end: datetime | date | None = None
    presenters: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""
    location: str = ""
    type_hint: str | None = None
    slides: str | None = None
    recording: str | None = None
    link: str | None = None
    event_name: str | None = None


@dataclass
class Page:
    url: str
    event_name: str | None
    year: int | None
    tz: str | None


_EVENT_TYPES = {"Festival", "Hackathon", "EventSeries", "CourseInstance"}


def is_event(node: Any) -> bool:
    return isinstance(node, dict) and any(t.endswith("Event") or t in _EVENT_TYPES for t in schema_types(node))


def jsonld_objects(sel: Selector, out: ParsedEvents) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for raw in sel.xpath('//script[@type="application/ld+json"]/text()').getall():
        try:
            data = json.loads(raw.strip().rstrip(";"))
        except ValueError as e:
            out.warn(f"a JSON-LD block could not be read ({str(e)[:80]}); ignored")
            continue
        stack = as_list(data)
        while stack:
            item = stack.pop(0)
            if isinstance(item, dict):
                if "@graph" in item:
                    stack.extend(as_list(item["@graph"]))
                else:
                    found.append(item)
    return found


def microdata_objects(sel: Selector, base_url: str) -> list[dict[str, Any]]:
    """The page's top-level microdata items, as JSON-LD-shaped objects (extruct's uniform form)."""
    if not sel.xpath("//*[@itemscope][1]"):
        return []
    import extruct

    data = extruct.extract(sel.root, base_url=base_url, syntaxes=["microdata"], errors="ignore", uniform=True)
    return [item for item in data.get("microdata", []) if isinstance(item, dict)]


def event_name_of(value: Any) -> str:
    if isinstance(value, dict):
        return clean_text(value.get("name") or "", 300)
    if isinstance(value, list):
        return ", ".join(filter(None, (event_name_of(v) for v in value)))
    return clean_text(value or "", 300)


def _location(value: Any) -> str:
    parts = []
    for loc in as_list(value):
        if isinstance(loc, dict):
            if "VirtualLocation" in schema_types(loc):
                parts.append(event_name_of(loc) or "Online")
                continue
            address = loc.get("address")
            if isinstance(address, dict):
                address = ", ".join(clean_text(address.get(k) or "") for k in ("streetAddress", "addressLocality",
                                                                               "addressRegion") if address.get(k))
            parts.append(", ".join(filter(None, (event_name_of(loc), clean_text(address or "")))))
        elif loc:
            parts.append(clean_text(loc))
    return "; ".join(p for p in parts if p)


def iso_date(value: Any) -> datetime | date | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        return None


def _media_url(node: Any) -> str | None:
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        return node.get("url") or node.get("contentUrl") or node.get("embedUrl")
    return None


def draft_from_jsonld(node: dict[str, Any], page: Page, out: ParsedEvents, parent: str | None) -> Draft | None:
    title = event_name_of(node.get("name"))
    if not title:
        out.warn("a JSON-LD Event has no name; skipped")
        return None
    draft = Draft(title=title, description=clean_text(node.get("description") or "", 4000),
                  location=_location(node.get("location")), type_hint=" ".join(schema_types(node)),
                  link=absolute_url(node.get("url") if isinstance(node.get("url"), str) else None, page.url))
    draft.event_name = parent or event_name_of(node.get("superEvent")) or page.event_name
    for key in ("startDate", "endDate"):
        raw = node.get(key)
        value = iso_date(raw)
        if raw and value is None:
            draft.time_problem = f"unreadable {key} {str(raw)[:40]!r}"
        setattr(draft, "start" if key == "startDate" else "end", value)
    for person in as_list(node.get("performer")):
        if isinstance(person, dict):
            aff = person.get("affiliation") or person.get("worksFor")
            draft.presenters.append({"name": event_name_of(person), "affiliation": event_name_of(aff) or None})
        elif isinstance(person, str):
            draft.presenters.extend(parse_presenters(person))
    draft.presenters = [p for p in draft.presenters if p.get("name")]
    for key in ("recordedIn", "workFeatured", "subjectOf"):
        for work in as_list(node.get(key)):
            href = absolute_url(_media_url(work), page.url)
            if not href:
                continue
            kinds = " ".join(schema_types(work)) if isinstance(work, dict) else ""
            fmt = str(work.get("encodingFormat", "")) if isinstance(work, dict) else ""
            if draft.recording is None and ("Video" in kinds or key == "recordedIn" or looks_like_recording(href)):
                draft.recording = href
            elif draft.slides is None and ("Presentation" in kinds or "Document" in kinds or "pdf" in fmt
                                           or looks_like_slides(href)):
                draft.slides = href
    return draft


def drafts_from_jsonld(objects: list[dict[str, Any]], page: Page,
                       out: ParsedEvents) -> tuple[list[Draft], dict[str, Any] | None]:
    """Sessions from JSON-LD: the ``subEvent``s of a conference, or two or more Events. A
    single Event without sub-events is returned apart: it usually describes the conference
    itself, and the sessions are then read from the HTML."""
    events = [o for o in objects if is_event(o)]
    drafts: list[Draft] = []
    alone = []
    for ev in events:
        subs = [s for s in as_list(ev.get("subEvent")) if is_event(s)]
        if subs:
            parent = event_name_of(ev.get("name")) or page.event_name
            drafts.extend(d for d in (draft_from_jsonld(s, page, out, parent) for s in subs) if d)
        else:
            alone.append(ev)
    if not drafts and len(alone) == 1:
        return [], alone[0]
    drafts.extend(d for d in (draft_from_jsonld(ev, page, out, None) for ev in alone) if d)
    return drafts, None
