"""How the catalog's cells look in Datasette: links, dates, chips that narrow the resources
table, search snippets, presenters.

Every piece of HTML built here starts from escaped text (``markupsafe.escape``), uses only
http(s) URLs as link targets, and is passed through nh3 with a small allowlist before it is
returned: a harvested title such as ``<script>`` or ``<img onerror=...>`` is shown as text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import nh3
from markupsafe import Markup, escape

from catalog.labels import filter_url, http_url, presenter_names, readable_date, value_label

#: Raw JSON and bookkeeping columns kept out of the default HTML views (exports keep them).
HIDDEN_COLUMNS = frozenset({"extra", "content_hash", "raw", "classified_by"})

DATE_COLUMNS = frozenset({
    "published", "updated", "first_seen", "last_seen", "last_changed", "starts_at", "ends_at", "started_at",
    "finished_at", "updated_at", "checked_at", "last_checked", "last_success", "next_attempt", "fetched_at",
    "link_checked_at", "link_recovered_at",
})
#: Columns shown as chips that narrow the resources table to that value.
CHIP_COLUMNS = {"content_type": "content_type", "organization": "organization", "source_id": "source_id"}
ARRAY_COLUMNS = frozenset({"topics", "systems"})
LINK_COLUMNS = frozenset({"url", "slides_url", "recording_url", "archived_url", "final_url"})
#: Columns that may hold the archived copy of a broken link (issue: link health).
ARCHIVE_COLUMNS = ("archived_url", "archive_url", "wayback_url")
#: FTS snippet markers: private-use characters that harvested text does not use.
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"

_CLEANER = nh3.Cleaner(
    tags={"a", "span", "time", "img", "mark", "ul", "li", "strong", "em", "br"},
    attributes={
        "a": {"href", "class", "title", "lang"},
        "img": {"src", "alt", "class", "loading", "width", "height", "referrerpolicy"},
        "time": {"datetime", "title"},
        "span": {"class", "title"},
        "ul": {"class"},
        "li": {"class"},
        "mark": set(),
    },
    url_schemes={"http", "https"},
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


def clean_html(html: str) -> Markup:
    """HTML made safe by nh3 with illhub's small allowlist (tags, attributes, http(s) URLs)."""
    return Markup(_CLEANER.clean(html))


def json_list(value: Any) -> list[str] | None:
    if not isinstance(value, str) or not value.startswith("["):
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, list):
        return None
    return [str(v) for v in data if v is not None and str(v)]


def _chip(href: str, label: str, css: str) -> str:
    return f'<a class="chip chip-{css}" href="{escape(href)}">{escape(label)}</a>'


def snippet_html(text: str) -> Markup:
    """An FTS5 snippet with its match markers turned into ``<mark>``; everything else escaped."""
    html = str(escape(text)).replace(MARK_OPEN, "<mark>").replace(MARK_CLOSE, "</mark>")
    return clean_html(html)


def _row_get(row: Any, key: str) -> Any:
    try:
        return row[key]
    except (IndexError, KeyError, TypeError):
        return None


def _row_keys(row: Any) -> set[str]:
    try:
        return set(row.keys())
    except AttributeError:
        return set()


def render_cell(*, row: Any, value: Any, column: str, table: str | None, database: str,
                table_url: Callable[[str], str], source_names: Mapping[str, str] | None = None) -> Markup | None:
    """The HTML for one cell of a catalog page, or None to let Datasette render it.

    ``table_url(name)`` gives the URL of a table in the database (for facet chips);
    ``source_names`` maps source ids to their names (for the source chip).
    Only resource-shaped rows (the resources table, or query results with the same
    column names) get special treatment.
    """
    if table not in (None, "resources", "source_health", "link_checks", "harvest_runs", "sources"):
        return None
    if value is None or value == "":
        return None
    if column == "title" and isinstance(value, str):
        link = http_url(_row_get(row, "url")) if "url" in _row_keys(row) else None
        if link:
            return clean_html(f'<a class="resource-title" href="{escape(link)}">{escape(value)}</a>')
        return clean_html(f'<span class="resource-title">{escape(value)}</span>')
    if column in LINK_COLUMNS or column in ARCHIVE_COLUMNS or column == "thumbnail":
        return _link_cell(column, value)
    if column in DATE_COLUMNS:
        text = readable_date(value)
        if text:
            return clean_html(f'<time datetime="{escape(value)}">{escape(text)}</time>')
        return None
    if column == "snippet" and isinstance(value, str):
        return snippet_html(value)
    if table in (None, "resources") and (column in ARRAY_COLUMNS or column in CHIP_COLUMNS):
        return _chip_cell(column, value, table_url("resources"), source_names)
    if column == "link_status" and isinstance(value, str):
        return clean_html(f'<span class="link-status link-status-{escape(value)}">'
                          f"{escape(value_label(column, value))}</span>")
    if column == "presenters" and isinstance(value, str):
        names = presenter_names(value)
        return clean_html(f'<span class="presenters">{escape(names)}</span>' if names else '<span class="none">—</span>')
    if column in HIDDEN_COLUMNS and isinstance(value, str):
        return clean_html(f'<span class="raw-json">{escape(value)}</span>')
    return None


def _link_cell(column: str, value: Any) -> Markup:
    """A link column (an archived copy's link says so), an archive column or a thumbnail; a
    value that is not an http(s) URL is shown as text."""
    link = http_url(value)
    if column in LINK_COLUMNS:
        if link:
            label = "Archived copy" if column in ARCHIVE_COLUMNS else _short_url(link)
            return clean_html(f'<a class="url" href="{escape(link)}">{escape(label)}</a>')
        return clean_html(f'<span class="not-a-link">{escape(str(value))}</span>')
    if column in ARCHIVE_COLUMNS:
        if link:
            return clean_html(f'<a class="archived" href="{escape(link)}">Archived copy</a>')
        return clean_html(f"<span>{escape(str(value))}</span>")
    if link:
        return clean_html(f'<img class="thumb" src="{escape(link)}" alt="" loading="lazy" width="160" '
                          f'height="90" referrerpolicy="no-referrer">')
    return clean_html(f'<span class="not-a-link">{escape(str(value))}</span>')


def _chip_cell(column: str, value: Any, resources: str, source_names: Mapping[str, str] | None) -> Markup | None:
    """Topics and systems as a list of chips, a content type, organization or source as one
    chip: each narrows the resources table (at ``resources``) to that value."""
    if column in ARRAY_COLUMNS:
        items = json_list(value)
        if items is None:
            return None
        if not items:
            return clean_html('<span class="none">—</span>')
        chips = "".join(f"<li>{_chip(filter_url(resources, column, v), value_label(column, v), column)}</li>"
                        for v in items)
        return clean_html(f'<ul class="chips">{chips}</ul>')
    if isinstance(value, dict) and "value" in value:
        # a foreign key Datasette expanded to its label (source_id → the source's name)
        raw, label = str(value["value"]), str(value.get("label") or value["value"])
        return clean_html(_chip(filter_url(resources, column, raw), label, column))
    if isinstance(value, str):
        if column == "source_id" and source_names is not None:
            label = source_names.get(value) or value
        else:
            label = value_label(column, value)
        return clean_html(_chip(filter_url(resources, column, value), label, column))
    return None


def _short_url(url: str, limit: int = 60) -> str:
    text = re.sub(r"^https?://(www\.)?", "", url)
    return text if len(text) <= limit else text[: limit - 1] + "…"
