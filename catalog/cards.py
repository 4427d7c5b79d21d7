"""How the hub's pages show a resource, a topic, a system and a source: plain dictionaries the
templates read (names, never ids; readable dates; an event's time in its own zone with UTC
beside it), and the hub's own addresses (:func:`path`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup, escape

from catalog import cells
from catalog.cells import MARK_CLOSE, MARK_OPEN
from catalog.labels import (
    CONTENT_TYPE_LABELS,
    CONTENT_TYPE_PLURALS,
    http_url,
    parse_iso,
    presenter_names,
    readable_date,
    term_labels,
)
from pipeline.classify import REGISTRY_REASON


def path(datasette: Any, *parts: str, query: str = "") -> str:
    """A hub address: ``path(ds, "topic", "copyright")`` → ``/topic/copyright`` (under the
    instance's base URL)."""
    p = "/" + "/".join(quote(str(x), safe="") for x in parts if x)
    return datasette.urls.path(p) + (f"?{query}" if query else "")


def clean_text(value: Any) -> str:
    """Text without the index's highlight characters."""
    return str(value or "").replace(MARK_OPEN, "").replace(MARK_CLOSE, "")


def people(value: Any) -> list[dict[str, str]]:
    """An event's presenters (``[{"name", "affiliation"}]``) from their stored JSON."""
    try:
        items = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return []
    return [p for p in items or [] if isinstance(p, dict) and p.get("name")] if isinstance(items, list) else []


_SPEAKERS_LINE = re.compile(r"(speakers?|presenters?|presented by|panelists?)\s*:?\s*", re.IGNORECASE)


def event_description(description: Any, presenters: Any) -> str:
    """An event's description without the "Speakers: …" line a program puts first (the
    speakers are shown, and exported, on their own): cut through the last presenter's name or
    affiliation that the line names."""
    text = clean_text(description).strip()
    m = _SPEAKERS_LINE.match(text)
    found = people(presenters)
    if not m or not found:
        return text
    end = m.end()
    for p in found:
        for part in (p.get("name"), p.get("affiliation")):
            i = text.find(str(part), m.end(), m.end() + 400) if part else -1
            if i >= 0:
                end = max(end, i + len(str(part)))
    return text if end == m.end() else text[end:].lstrip(" .;:,)-\n")


def highlight(text: str, words: set[str]) -> Markup:
    """``text`` escaped, with the words of a search (and their plurals) in ``<mark>``."""
    if not words:
        return Markup(escape(text))
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
                         + r")(e?s)?\b", re.IGNORECASE)
    out, last = [], 0
    for m in pattern.finditer(text):
        out.append(escape(text[last:m.start()]))
        out.append(Markup("<mark>") + escape(m.group(0)) + Markup("</mark>"))
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def json_list(value: Any) -> list[str]:
    """A list column's values (a JSON list, or a list already parsed); [] for anything else."""
    if isinstance(value, list):
        return [str(v) for v in value if v is not None and str(v)]
    return cells.json_list(value.strip() if isinstance(value, str) else None) or []


def type_label(value: Any) -> str:
    return CONTENT_TYPE_LABELS.get(str(value or ""), str(value or "Resource").capitalize())


def type_plural(value: Any) -> str:
    return CONTENT_TYPE_PLURALS.get(str(value or ""), f"{value} resources")


def zone(name: Any) -> ZoneInfo | None:
    try:
        return ZoneInfo(str(name)) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def event_times(starts_at: Any, ends_at: Any, tz: Any) -> dict[str, str] | None:
    """An event's time in its own zone and in UTC: ``{"local", "utc", "zone"}`` (local is the
    UTC time when the zone is not known)."""
    start = parse_iso(starts_at)
    if start is None:
        return None
    end = parse_iso(ends_at)
    z = zone(tz)

    def span(z_: Any, label: str) -> str:
        s = start.astimezone(z_)
        text = f"{s:%a} {s.day} {s:%b %Y}, {s:%H:%M}"
        if end is not None:
            e = end.astimezone(z_)
            text += f"–{e:%H:%M}" if e.date() == s.date() else f" – {e.day} {e:%b %Y}, {e:%H:%M}"
        return f"{text} {label or s.tzname()}"

    utc = span(UTC, "UTC")
    local = span(z, "") if z is not None else utc
    return {"local": local, "utc": utc, "zone": str(tz) if z is not None else "UTC"}


def card(datasette: Any, row: dict[str, Any], source_names: dict[str, str]) -> dict[str, Any]:
    """A resource as the hub's lists show it."""
    labels = term_labels()
    rid = row["id"]
    topics = [{"id": t, "label": labels["topics"].get(t, t), "url": path(datasette, "topic", t)}
              for t in json_list(row.get("topics"))]
    systems = [{"id": s, "label": labels["systems"].get(s, s), "url": path(datasette, "system", s)}
               for s in json_list(row.get("systems"))]
    source = row.get("source_id")
    out = {
        "id": rid, "title": clean_text(row.get("title")) or "(untitled)", "link": http_url(row.get("url")),
        "page": path(datasette, "resource", rid),
        "description": event_description(row.get("description"), row.get("presenters")) if row.get("starts_at")
        else clean_text(row.get("description")),
        "type": row.get("content_type"), "type_label": type_label(row.get("content_type")),
        "organization": row.get("organization"), "published": row.get("published"),
        "when": readable_date(row.get("published") or row.get("first_seen")),
        "date": row.get("published") or row.get("first_seen"), "dated_by": "Published" if row.get("published") else "Added",
        "topics": topics, "systems": systems, "thumbnail": http_url(row.get("thumbnail")),
        "source": {"id": source, "name": source_names.get(source, source), "url": path(datasette, "source", source)}
        if source else None,
        "link_status": row.get("link_status"), "archived": http_url(row.get("archived_url")),
        "author": row.get("author"),
    }
    if row.get("starts_at"):
        out["event"] = {
            "times": event_times(row.get("starts_at"), row.get("ends_at"), row.get("timezone")),
            "starts_at": row.get("starts_at"), "location": row.get("location"), "name": row.get("event_name"),
            "presenters": presenter_names(row.get("presenters")),
            "recording": http_url(row.get("recording_url")), "slides": http_url(row.get("slides_url")),
            "ics": path(datasette, "resource", rid, "event.ics"),
        }
    return out


def why_tagged(classified_by: Any, labels: dict[str, dict[str, str]], names: dict[str, str]) -> list[dict[str, str]]:
    """Why a resource has each of its topics and systems, from its ``classified_by`` object, in
    words a reader follows: the words that decided it, or that its source gives it to everything
    it brings in, or that a person chose it."""
    try:
        reasons = json.loads(classified_by) if isinstance(classified_by, str) else (classified_by or {})
    except ValueError:
        return []
    out = []
    for key, reason in (reasons.items() if isinstance(reasons, dict) else []):
        system = key.startswith("system:")
        term = key.removeprefix("system:")
        label = labels["systems" if system else "topics"].get(term, term)
        why = str(reason)
        m = REGISTRY_REASON.match(why)
        if m:
            why = f"every item from {names.get(m[1], m[1]) if m[1] else 'its source'} is given it"
        elif why == "curated":
            why = "chosen by the person who listed it"
        out.append({"label": label, "why": why})
    return out

