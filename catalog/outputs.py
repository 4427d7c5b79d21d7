"""What the hub's lists give people to take away: an Atom feed (which a browser shows as a
readable page through ``/static/feed.xsl``), a spreadsheet-ready CSV (UTF-8 with a byte order
mark, topic and system names joined by "; ", no highlight characters, formula-like cells made
inert), an HTML ``<ul>`` to paste into a LibGuide, iCalendar files (one event, or a topic's
upcoming events: LOCATION, URL, DESCRIPTION and each speaker as an RFC 9073 ``PARTICIPANT``
of type SPEAKER, times in the event's own zone) and the OPML list of the served sources.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from icalendar import Calendar, Component, Event
from markupsafe import escape

from catalog.cards import clean_text, event_description, json_list, people, type_label, zone
from catalog.labels import http_url, parse_iso, term_labels
from pipeline.export import neutralize_cell

ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_SIZE = 50
CSV_COLUMNS = ("Title", "URL", "Description", "Type", "Organization", "Published", "Topics", "Systems")
CSV_LIMIT = 10_000


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def atom(rows: list[dict[str, Any]], *, title: str, self_url: str, page_url: str, stylesheet: str,
         feed_id: str) -> bytes:
    """An Atom 1.0 feed of ``rows`` (newest first), with an ``xml-stylesheet`` that makes it a
    readable page in a browser."""
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    sub(feed, "title", title)
    sub(feed, "subtitle", "New resources in illhub, the interlibrary loan resource hub")
    sub(feed, "id", feed_id)
    sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    sub(feed, "link", rel="alternate", type="text/html", href=page_url)
    dates = [r.get("first_seen") or r.get("published") for r in rows]
    sub(feed, "updated", max([d for d in dates if d] or [_now()]))
    sub(sub(feed, "author"), "name", "illhub")
    labels = term_labels()
    for r in rows:
        entry = sub(feed, "entry")
        sub(entry, "title", clean_text(r.get("title")) or "(untitled)")
        sub(entry, "id", f"urn:illhub:resource:{r['id']}")
        link = http_url(r.get("url"))
        if link:
            sub(entry, "link", rel="alternate", type="text/html", href=link)
        sub(entry, "updated", r.get("first_seen") or r.get("published") or _now())
        if r.get("published"):
            sub(entry, "published", r["published"])
        sub(sub(entry, "author"), "name", r.get("organization") or r.get("author") or "illhub")
        summary = clean_text(r.get("description"))
        sub(entry, "summary", f"{type_label(r.get('content_type'))}. {summary}".strip(), type="text")
        for t in json_list(r.get("topics")):
            sub(entry, "category", term=t, label=labels["topics"].get(t, t))
    ET.indent(feed, space="  ")
    head = f'<?xml version="1.0" encoding="utf-8"?>\n<?xml-stylesheet type="text/xsl" href="{escape(stylesheet)}"?>\n'
    return (head + ET.tostring(feed, encoding="unicode") + "\n").encode("utf-8")


def spreadsheet_csv(rows: list[dict[str, Any]]) -> bytes:
    """The list as a CSV a spreadsheet opens: a byte order mark, names instead of ids."""
    labels = term_labels()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([neutralize_cell(v) for v in (
            clean_text(r.get("title")), r.get("url") or "", clean_text(r.get("description")),
            type_label(r.get("content_type")), r.get("organization") or "", (r.get("published") or "")[:10],
            "; ".join(labels["topics"].get(t, t) for t in json_list(r.get("topics"))),
            "; ".join(labels["systems"].get(s, s) for s in json_list(r.get("systems"))))])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def snippet(rows: list[dict[str, Any]], *, heading: str) -> str:
    """A ``<ul>`` of links with their descriptions, to paste into a LibGuide or a web page."""
    lines = [f"<!-- {escape(heading)}: from illhub, the interlibrary loan resource hub -->", '<ul class="illhub-list">']
    for r in rows:
        link = http_url(r.get("url"))
        title = escape(clean_text(r.get("title")) or "(untitled)")
        item = f'<a href="{escape(link)}">{title}</a>' if link else str(title)
        meta = ", ".join(x for x in (type_label(r.get("content_type")), r.get("organization") or "") if x)
        desc = clean_text(r.get("description"))
        if len(desc) > 300:
            desc = desc[:297].rsplit(" ", 1)[0] + "…"
        lines.append(f"  <li>{item} <small>({escape(meta)})</small>" + (f"<br>{escape(desc)}" if desc else "") + "</li>")
    lines.append("</ul>")
    return "\n".join(lines) + "\n"


def _event(r: dict[str, Any], page_url: str | None) -> Event | None:
    start = parse_iso(r.get("starts_at"))
    if start is None:
        return None
    z = zone(r.get("timezone")) or UTC
    ev = Event()
    ev.add("uid", f"{r['id']}@illhub")
    ev.add("dtstamp", datetime.now(UTC))
    ev.add("summary", clean_text(r.get("title")) or "(untitled)")
    ev.add("dtstart", start.astimezone(z))
    end = parse_iso(r.get("ends_at"))
    if end is not None:
        ev.add("dtend", end.astimezone(z))
    if r.get("location"):
        ev.add("location", r["location"])
    link = http_url(r.get("url")) or page_url
    if link:
        ev.add("url", link)
    desc = [event_description(r.get("description"), r.get("presenters"))]
    if r.get("event_name"):
        desc.append(f"Part of {r['event_name']}.")
    if page_url:
        desc.append(f"In illhub: {page_url}")
    ev.add("description", "\n\n".join(d for d in desc if d))
    if r.get("event_name"):
        ev.add("categories", [r["event_name"]])
    for i, p in enumerate(people(r.get("presenters"))):
        part = Component()
        part.name = "PARTICIPANT"
        part.add("uid", f"{r['id']}-speaker-{i}@illhub")
        part.add("participant-type", "SPEAKER")
        part.add("summary", p["name"])
        if p.get("affiliation"):
            part.add("description", p["affiliation"])
        ev.add_component(part)
    return ev


def calendar(rows: list[dict[str, Any]], *, name: str, page_url: Any) -> bytes:
    """An iCalendar file of events; ``page_url(id)`` is each event's page in the hub."""
    cal = Calendar()
    cal.add("prodid", "-//illhub//interlibrary loan resource hub//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    for r in rows:
        ev = _event(r, page_url(r["id"]))
        if ev is not None:
            cal.add_component(ev)
    cal.add_missing_timezones()
    return cal.to_ical()


def opml(rows: list[dict[str, Any]]) -> str:
    """The served catalog's sources as OPML (the same document ``illhub opml`` writes)."""
    from illhub.opml import build_opml

    sources = []
    for r in rows:
        try:
            config = json.loads(r.get("config") or "{}")
        except ValueError:
            config = {}
        sources.append(SimpleNamespace(
            id=r["id"], name=r["name"], kind=r["kind"], url=r.get("url"), organization=r.get("organization"),
            enabled=bool(r.get("enabled", 1)), topics=json_list(r.get("topics")), notes=r.get("notes"),
            channel_id=config.get("channel_id"), playlist_id=config.get("playlist_id")))
    root, _ = build_opml(SimpleNamespace(sources=sources), title="illhub: the sources of this catalog")
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
