"""How the catalog names things: column and value labels (topics, systems, content types, link
statuses), readable dates, safe link targets, and the links that narrow the resources table to
one value. The page templates use them as Jinja filters (``datasette_config/plugins/illhub_plugin.py``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode, urlsplit

#: Plain-language names for columns, used in headings, facets and row pages.
COLUMN_LABELS = {
    "id": "Id", "url": "Link", "title": "Title", "description": "Description", "content_type": "Type",
    "organization": "Organization", "source_id": "Source", "published": "Published", "updated": "Updated",
    "topics": "Topics", "systems": "Systems", "author": "Author", "language": "Language",
    "thumbnail": "Thumbnail", "excerpt": "Excerpt", "status": "Status", "first_seen": "First harvested",
    "last_seen": "Last seen", "last_changed": "Last changed", "link_status": "Link status",
    "archived_url": "Archived copy", "link_checked_at": "Link checked", "link_failures": "Failed checks in a row",
    "link_recovered_at": "Link recovered", "starts_at": "Starts", "ends_at": "Ends", "location": "Location",
    "event_name": "Event", "session_type": "Session type", "presenters": "Presenters",
    "slides_url": "Slides", "recording_url": "Recording", "snippet": "Match",
    "started_at": "Started", "finished_at": "Finished", "items_seen": "Items seen", "items_new": "New items",
    "items_updated": "Updated items", "http_status": "HTTP status", "error": "Error", "warning": "Warning",
    "kind": "Kind", "name": "Name", "n": "Resources", "source_name": "Source", "resource_id": "Resource",
    "last_status": "Last harvest", "last_run": "Last run", "consecutive_failures": "Failures in a row",
    "last_success": "Last success", "items": "Resources", "stale_items": "No longer listed",
    "days_since_new": "Days since something new", "needs_attention": "Needs attention", "enabled": "Harvested",
    "schedule": "Schedule", "link_http_status": "Link HTTP status", "link_error": "Link error",
    "next_attempt": "Next attempt", "run_group": "Harvest", "requests": "Requests", "bytes": "Bytes",
    "documents": "Documents", "documents_unchanged": "Unchanged documents", "updated_at": "Updated",
    "notes": "Notes", "config": "Settings", "site": "Site", "timezone": "Time zone", "event_year": "Year",
    "link_final_url": "Final URL", "missed_runs": "Missed harvests", "last_run_id": "Last run",
}

CONTENT_TYPE_LABELS = {
    "article": "Article", "document": "Document", "documentation": "Documentation", "event": "Event",
    "page": "Web page", "video": "Video",
}

CONTENT_TYPE_PLURALS = {
    "article": "articles", "document": "documents", "documentation": "documentation pages", "event": "events",
    "page": "web pages", "video": "videos",
}

#: How each kind of source is read, in words (harvesters/kinds/).
SOURCE_KIND_LABELS = {
    "feed": "A blog or news feed (RSS or Atom)", "youtube": "A YouTube channel or playlist",
    "ical": "A calendar (iCalendar)", "conference": "A conference program page", "manual": "A list curated by hand",
    "crawl": "Web pages, followed from a start page", "sitemap": "Web pages listed in the site's sitemap",
    "wordpress": "A WordPress site", "zendesk": "A help center (Zendesk)", "page": "A web page",
}

LINK_STATUS_LABELS = {
    "ok": "Link works", "redirected": "Link redirects", "blocked": "Link may need a browser",
    "broken": "Link broken", "unchecked": "Link not checked yet",
}


def http_url(value: Any) -> str | None:
    """The value as a link target when it is an absolute http(s) URL, else None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or any(c.isspace() or ord(c) < 32 for c in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value


def column_label(column: str) -> str:
    return COLUMN_LABELS.get(column, column.replace("_", " ").capitalize())


def parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def readable_date(value: Any) -> str | None:
    """``2026-11-23T19:00:00Z`` → ``23 Nov 2026, 19:00 UTC`` (the time left out at midnight)."""
    dt = parse_iso(value)
    if dt is None:
        return None
    dt = dt.astimezone(UTC)
    day = f"{dt.day} {dt:%b %Y}"
    if (dt.hour, dt.minute, dt.second) == (0, 0, 0):
        return day
    return f"{day}, {dt:%H:%M} UTC"


@lru_cache(maxsize=1)
def term_labels() -> dict[str, dict[str, str]]:
    """``{"topics": {id: label}, "systems": {id: label}}`` from data/taxonomy.yaml."""
    from pipeline.taxonomy import default_taxonomy

    tax = default_taxonomy()
    return {"topics": {k: t.label for k, t in tax.topics.items()},
            "systems": {k: t.label for k, t in tax.systems.items()}}


def value_label(column: str, value: Any) -> str:
    """A person's name for a stored value: topic and system labels, content types."""
    if value is None or value == "":
        return "(none)"
    value = str(value)
    if column in ("topics", "topic"):
        return term_labels()["topics"].get(value, value)
    if column in ("systems", "system"):
        return term_labels()["systems"].get(value, value)
    if column == "content_type":
        return CONTENT_TYPE_LABELS.get(value, value)
    if column == "link_status":
        return LINK_STATUS_LABELS.get(value, value)
    if column == "kind":
        return SOURCE_KIND_LABELS.get(value, value)
    return value


#: The resources table's parameters that narrow it to one topic or system: the same rows as
#: ``topics__arraycontains=`` (``systems__...``), looked up in the ``resource_tags`` index
#: (migration m1002; ``catalog.facets``) instead of parsing every
#: resource's JSON.
ARRAY_FILTER_PARAMS = {"topics": "_topic", "systems": "_system"}


def filter_arg(column: str) -> str:
    """The query parameter that narrows the resources table to one value of a column."""
    return ARRAY_FILTER_PARAMS.get(column, column)


def filter_url(table_url: str, column: str, value: str) -> str:
    """The resources table narrowed to one value of a column."""
    return f"{table_url}?{urlencode({filter_arg(column): value})}"


def presenter_names(value: Any) -> str:
    """"Jane Doe (Univ. of X), John Roe" from an event's presenters JSON; "" when there are none."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return ""
    if not isinstance(value, list):
        return ""
    names = []
    for p in value:
        if isinstance(p, dict) and p.get("name"):
            names.append(f"{p['name']} ({p['affiliation']})" if p.get("affiliation") else str(p["name"]))
    return ", ".join(names)


#: How export formats are named in the pages' export links.
RENDERER_LABELS = {"json": "JSON", "csv": "CSV", "atom": "Atom feed", "ics": "iCal (calendar)"}


def renderer_label(name: str) -> str:
    return RENDERER_LABELS.get(name, name.upper())

