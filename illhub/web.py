"""How the catalog looks in Datasette: cell rendering, labels, the front page's data, the
public profile's CSV guard and robots rules.

The Datasette plugin in ``datasette_config/plugins/illhub_plugin.py`` only wires these
functions to Datasette's hooks, so they can be tested on their own.

Every piece of HTML built here starts from escaped text (``markupsafe.escape``), uses only
http(s) URLs as link targets, and is passed through nh3 with a small allowlist before it is
returned: a harvested title such as ``<script>`` or ``<img onerror=...>`` is shown as text.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import nh3
from markupsafe import Markup, escape

from pipeline.export import neutralize_cell

#: Raw JSON and bookkeeping columns kept out of the default HTML views (exports keep them).
HIDDEN_COLUMNS = frozenset({"extra", "content_hash", "raw", "classified_by"})

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
    "kind": "Kind", "name": "Name", "n": "Resources",
}

CONTENT_TYPE_LABELS = {
    "article": "Article", "document": "Document", "documentation": "Documentation", "event": "Event",
    "page": "Web page", "video": "Video",
}

CONTENT_TYPE_PLURALS = {
    "article": "articles", "document": "documents", "documentation": "documentation pages", "event": "events",
    "page": "web pages", "video": "videos",
}

DATE_COLUMNS = frozenset({
    "published", "updated", "first_seen", "last_seen", "last_changed", "starts_at", "ends_at", "started_at",
    "finished_at", "updated_at", "checked_at", "last_checked", "last_success", "next_attempt", "fetched_at",
    "link_checked_at", "link_recovered_at",
})
#: Columns shown as chips that narrow the resources table to that value.
CHIP_COLUMNS = {"content_type": "content_type", "organization": "organization", "source_id": "source_id"}
ARRAY_COLUMNS = frozenset({"topics", "systems"})
LINK_COLUMNS = frozenset({"url", "slides_url", "recording_url", "archived_url", "final_url"})
LINK_STATUS_LABELS = {
    "ok": "Link works", "redirected": "Link redirects", "blocked": "Link may need a browser",
    "broken": "Link broken", "unchecked": "Link not checked yet",
}
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
    return value


#: The resources table's parameters that narrow it to one topic or system: the same rows as
#: ``topics__arraycontains=`` (``systems__...``), looked up in the ``resource_tags`` index
#: (migration m1002; datasette_config/plugins/illhub_facets.py) instead of parsing every
#: resource's JSON.
ARRAY_FILTER_PARAMS = {"topics": "_topic", "systems": "_system"}


def filter_arg(column: str) -> str:
    """The query parameter that narrows the resources table to one value of a column."""
    return ARRAY_FILTER_PARAMS.get(column, column)


def filter_url(table_url: str, column: str, value: str) -> str:
    """The resources table narrowed to one value of a column."""
    return f"{table_url}?{urlencode({filter_arg(column): value})}"


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
    keys = _row_keys(row)
    resources = table_url("resources")
    if value is None or value == "":
        return None
    if column == "title" and isinstance(value, str):
        link = http_url(_row_get(row, "url")) if "url" in keys else None
        if link:
            return clean_html(f'<a class="resource-title" href="{escape(link)}">{escape(value)}</a>')
        return clean_html(f'<span class="resource-title">{escape(value)}</span>')
    if column in LINK_COLUMNS:
        link = http_url(value)
        if link:
            label = "Archived copy" if column in ARCHIVE_COLUMNS else _short_url(link)
            return clean_html(f'<a class="url" href="{escape(link)}">{escape(label)}</a>')
        return clean_html(f'<span class="not-a-link">{escape(str(value))}</span>')
    if column in ARCHIVE_COLUMNS:
        link = http_url(value)
        if link:
            return clean_html(f'<a class="archived" href="{escape(link)}">Archived copy</a>')
        return clean_html(f"<span>{escape(str(value))}</span>")
    if column == "thumbnail":
        link = http_url(value)
        if link:
            return clean_html(f'<img class="thumb" src="{escape(link)}" alt="" loading="lazy" width="160" '
                              f'height="90" referrerpolicy="no-referrer">')
        return clean_html(f'<span class="not-a-link">{escape(str(value))}</span>')
    if column in DATE_COLUMNS:
        text = readable_date(value)
        if text:
            return clean_html(f'<time datetime="{escape(value)}">{escape(text)}</time>')
        return None
    if column == "snippet" and isinstance(value, str):
        return snippet_html(value)
    if table in (None, "resources") and column in ARRAY_COLUMNS:
        items = json_list(value)
        if items is None:
            return None
        if not items:
            return clean_html('<span class="none">—</span>')
        chips = "".join(f"<li>{_chip(filter_url(resources, column, v), value_label(column, v), column)}</li>"
                        for v in items)
        return clean_html(f'<ul class="chips">{chips}</ul>')
    if table in (None, "resources") and column in CHIP_COLUMNS and isinstance(value, dict) and "value" in value:
        # a foreign key Datasette expanded to its label (source_id → the source's name)
        raw, label = str(value["value"]), str(value.get("label") or value["value"])
        return clean_html(_chip(filter_url(resources, column, raw), label, column))
    if table in (None, "resources") and column in CHIP_COLUMNS and isinstance(value, str):
        if column == "source_id" and source_names is not None:
            label = source_names.get(value) or value
        else:
            label = value_label(column, value)
        return clean_html(_chip(filter_url(resources, column, value), label, column))
    if column == "link_status" and isinstance(value, str):
        return clean_html(f'<span class="link-status link-status-{escape(value)}">'
                          f"{escape(value_label(column, value))}</span>")
    if column == "presenters" and isinstance(value, str):
        names = presenter_names(value)
        return clean_html(f'<span class="presenters">{escape(names)}</span>' if names else '<span class="none">—</span>')
    if column in HIDDEN_COLUMNS and isinstance(value, str):
        return clean_html(f'<span class="raw-json">{escape(value)}</span>')
    return None


#: How export formats are named in the pages' export links.
RENDERER_LABELS = {"json": "JSON", "csv": "CSV", "atom": "Atom feed", "ics": "iCal (calendar)"}


def renderer_label(name: str) -> str:
    return RENDERER_LABELS.get(name, name.upper())


def _short_url(url: str, limit: int = 60) -> str:
    text = re.sub(r"^https?://(www\.)?", "", url)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def url_with(path: str, args: Mapping[str, Any], **changes: Any) -> str:
    """``path`` with the query ``args`` changed: a value of None or "" removes that key."""
    merged = {k: v for k, v in args.items()}
    merged.update(changes)
    query = urlencode([(k, v) for k, v in merged.items() if v not in (None, "")])
    return f"{path}?{query}" if query else path


# ---------------------------------------------------------------- front page and search

#: Canned queries (or tables/views) maintainers look at, in the order the front page lists them.
MAINTAINER_LINKS = (
    ("query", "source_health", "Source health", "Which registry entries need fixing"),
    ("table", "source_health", "Source health", "Which registry entries need fixing"),
    ("query", "harvest_health", "Harvest health", "The latest harvest of every source"),
    ("query", "broken_links", "Broken links", "Links that stopped working, with archived copies"),
    ("query", "link_health_by_source", "Link health by source", "Working, blocked and broken links per source"),
    ("query", "blocked_links", "Blocked links", "Links that refuse robots but probably work for a person"),
    ("query", "recovered_links", "Recovered links", "Links that work again"),
    ("table", "harvest_runs", "Harvest runs", "Every run of every source"),
    ("table", "sources", "Sources", "The registry as last loaded"),
)
#: Canned queries for people browsing, shown on the front page when they exist.
BROWSE_QUERIES = ("new_this_week", "videos", "copyright_and_fair_use", "by_topic", "upcoming_events",
                  "past_sessions_with_media", "sessions_by_conference")
#: Feeds people can subscribe to: (canned query, format, label), shown when the query exists.
SUBSCRIBE_FEEDS = (("new_resources_feed", "atom", "New resources (Atom feed for a feed reader)"),
                   ("upcoming_events_calendar", "ics", "Upcoming events (iCal, for a calendar)"))
EVENT_COLUMNS = ("starts_at",)


_SOURCE_NAMES: dict[str, tuple[float, dict[str, str]]] = {}
SOURCE_NAMES_TTL = 60.0


async def source_names(datasette: Any, database: str) -> dict[str, str]:
    """Source id → name for a database, cached for a minute (the sources table is small)."""
    import time

    key = f"{id(datasette)}:{database}"
    hit = _SOURCE_NAMES.get(key)
    if hit and time.monotonic() - hit[0] < SOURCE_NAMES_TTL:
        return hit[1]
    names: dict[str, str] = {}
    try:
        db = datasette.get_database(database)
        if await db.table_exists("sources"):
            names = {r[0]: r[1] for r in await db.execute("select id, name from sources")}
    except Exception:  # noqa: BLE001 - without names the chip shows the id
        names = {}
    _SOURCE_NAMES[key] = (time.monotonic(), names)
    return names


async def table_columns(db: Any, table: str) -> list[str]:
    try:
        return await db.table_columns(table)
    except Exception:  # noqa: BLE001 - a missing table simply has no columns
        return []


async def catalog_database(datasette: Any) -> Any | None:
    """The first served database that holds a resources table."""
    for name, db in datasette.databases.items():
        if name.startswith("_"):
            continue
        if await db.table_exists("resources"):
            return db
    return None


async def nav_context(datasette: Any, request: Any) -> dict[str, Any] | None:
    """Where the header's search box sends people (the ranked search when it exists)."""
    db = await catalog_database(datasette)
    if db is None:
        return None
    queries = await datasette.get_canned_queries(db.name, request.actor if request else None)
    if "search" in queries:
        return {"search_url": datasette.urls.query(db.name, "search"), "search_param": "q"}
    return {"search_url": datasette.urls.table(db.name, "resources"), "search_param": "_search"}


async def hub_context(datasette: Any, request: Any) -> dict[str, Any]:
    """Everything the front page shows, from the catalog database (empty when there is none)."""
    db = await catalog_database(datasette)
    if db is None:
        return {"hub": None}
    name = db.name
    urls = datasette.urls
    resources_url = urls.table(name, "resources")
    total = (await db.execute("select count(*) from resources")).first()[0]
    topic_counts = {r[0]: r[1] for r in await db.execute(
        "select j.value, count(*) from resources, json_each(resources.topics) j group by j.value")}
    system_counts = {r[0]: r[1] for r in await db.execute(
        "select j.value, count(*) from resources, json_each(resources.systems) j group by j.value")}
    type_counts = [(r[0], r[1]) for r in await db.execute(
        "select content_type, count(*) from resources group by content_type order by count(*) desc")]
    labels = term_labels()
    from pipeline.taxonomy import default_taxonomy

    tax = default_taxonomy()
    topics = [{"id": t.id, "label": t.label, "description": t.description, "count": topic_counts.get(t.id, 0),
               "url": filter_url(resources_url, "topics", t.id)}
              for t in tax.topics.values() if topic_counts.get(t.id)]
    systems = [{"id": s.id, "label": s.label, "count": system_counts.get(s.id, 0),
                "url": filter_url(resources_url, "systems", s.id)}
               for s in tax.systems.values() if system_counts.get(s.id)]
    types = [{"id": t, "label": value_label("content_type", t), "count": n,
              "plural": CONTENT_TYPE_PLURALS.get(t, f"{t} resources"),
              "url": filter_url(resources_url, "content_type", t)} for t, n in type_counts]
    new_rows = [dict(r) for r in await db.execute(
        "select id, title, url, content_type, organization, published, first_seen from resources "
        "where first_seen >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-7 days') "
        "order by coalesce(published, first_seen) desc limit 8")]
    new_count = (await db.execute(
        "select count(*) from resources where first_seen >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-7 days')"
    )).first()[0]
    for r in new_rows:
        r["link"] = http_url(r["url"])
        r["row_url"] = urls.row(name, "resources", quote(r["id"], safe=""))
        r["when"] = readable_date(r["published"] or r["first_seen"])
        r["date"] = r["published"] or r["first_seen"]
        r["type_label"] = value_label("content_type", r["content_type"])
    columns = set(await table_columns(db, "resources"))
    events = None
    if all(c in columns for c in EVENT_COLUMNS):
        extra = ", ".join(c for c in ("location", "event_name", "ends_at") if c in columns)
        rows = await db.execute(
            f"select id, title, url, starts_at{', ' + extra if extra else ''} from resources "
            "where content_type = 'event' and status = 'active' "
            "and coalesce(ends_at, starts_at) >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
            "order by starts_at, title limit 6")
        events = []
        for r in rows:
            e = dict(r)
            e["link"] = http_url(e["url"])
            e["row_url"] = urls.row(name, "resources", quote(e["id"], safe=""))
            e["when"] = readable_date(e["starts_at"])
            events.append(e)
    queries = await datasette.get_canned_queries(name, request.actor if request else None)
    tables = set(await db.table_names()) | set(await db.view_names())
    maintainer, seen = [], set()
    for kind, target, label, description in MAINTAINER_LINKS:
        if label in seen:
            continue
        if kind == "query" and target in queries:
            href = urls.query(name, target)
        elif kind == "table" and target in tables:
            href = urls.table(name, target)
        else:
            continue
        seen.add(label)
        maintainer.append({"label": queries.get(target, {}).get("title") or label if kind == "query" else label,
                           "description": description, "url": href})
    browse = [{"name": q, "title": queries[q].get("title") or q, "description": queries[q].get("description"),
               "url": urls.query(name, q)} for q in BROWSE_QUERIES if q in queries]
    subscribe = [{"label": label, "url": urls.query(name, q, format=fmt)}
                 for q, fmt, label in SUBSCRIBE_FEEDS if q in queries]
    last_harvest = None
    if "harvest_runs" in tables:
        last_harvest = (await db.execute("select max(finished_at) from harvest_runs")).first()[0]
    sources = (await db.execute("select count(*) from sources")).first()[0] if "sources" in tables else None
    return {"hub": {
        "database": name, "resources_url": resources_url, "total": total, "topics": topics, "systems": systems,
        "types": types, "new_this_week": new_rows, "new_count": new_count, "events": events,
        "maintainer_links": maintainer, "browse_queries": browse, "subscribe": subscribe, "search_url": urls.query(name, "search")
        if "search" in queries else resources_url, "search_param": "q" if "search" in queries else "_search",
        "new_url": urls.query(name, "new_this_week") if "new_this_week" in queries else None,
        "last_harvest": readable_date(last_harvest), "sources": sources,
        "add_source_url": "https://github.com/illhub/illhub#adding-a-source",
        "labels": labels,
    }}


#: The search page's narrowing facets: (query parameter, column, is a JSON array).
SEARCH_FACETS = (("content_type", "content_type", False), ("topic", "topics", True),
                 ("system", "systems", True), ("organization", "organization", False))


async def search_context(datasette: Any, database: str, request: Any) -> dict[str, Any]:
    """Counts that narrow the ``search`` canned query (the same filters as its SQL)."""
    from datasette.utils import escape_fts

    db = datasette.get_database(database)
    args = {k: request.args.get(k, "") for k in ("q", *(p for p, _, _ in SEARCH_FACETS))}
    match = escape_fts(args["q"] or "")
    path = request.path
    active = [{"param": p, "label": column_label(col), "value": value_label(col, args[p]),
               "remove_url": url_with(path, args, **{p: None})} for p, col, _ in SEARCH_FACETS if args[p]]
    facets = []
    if not match:
        return {"search": {"q": args["q"], "facets": [], "active": active, "args": args,
                           "table_url": datasette.urls.table(database, "resources")}}
    where = ["resources_fts match :match"]
    params = {"match": match}
    for p, col, is_array in SEARCH_FACETS:
        if args[p]:
            params[p] = args[p]
            where.append(f"exists (select 1 from json_each(r.{col}) where value = :{p})" if is_array
                         else f"r.{col} = :{p}")
    base = ("from resources_fts join resources r on r.rowid = resources_fts.rowid where " + " and ".join(where))
    for p, col, is_array in SEARCH_FACETS:
        if args[p]:
            continue
        if is_array:
            sql = (f"select j.value as v, count(*) as n from resources_fts join resources r on r.rowid = "
                   f"resources_fts.rowid, json_each(r.{col}) j where {' and '.join(where)} "
                   "group by j.value order by n desc, v limit 12")
        else:
            sql = f"select r.{col} as v, count(*) as n {base} and r.{col} is not null group by v order by n desc, v limit 12"
        try:
            rows = await db.execute(sql, params)
        except Exception:  # noqa: BLE001 - a facet that fails (time limit) is left out, the page still renders
            continue
        values = [{"label": value_label(col, r["v"]), "count": r["n"], "url": url_with(path, args, **{p: r["v"]})}
                  for r in rows]
        if values:
            facets.append({"param": p, "label": column_label(col), "values": values})
    table_args = {"_search": args["q"]}
    for p, col, _ in SEARCH_FACETS:
        if args[p]:
            table_args[filter_arg(col)] = args[p]
    return {"search": {
        "q": args["q"], "facets": facets, "active": active, "args": args,
        "table_url": datasette.urls.table(database, "resources") + "?" + urlencode(table_args),
    }}


# ---------------------------------------------------------------- public profile: robots and CSV

ROBOTS_RULES = {
    "allow": "User-agent: *\nDisallow:\n",
    "block": "User-agent: *\nDisallow: /\n",
    # Pages for people may be indexed; exports, custom SQL and facet permutations may not.
    "pages": ("User-agent: *\nDisallow: /*.csv\nDisallow: /*.json\nDisallow: /*?sql=\nDisallow: /*?*_facet\n"
              "Disallow: /*?*_sort\nDisallow: /*?*_next\nDisallow: /-/\n"),
}
ROBOTS_CHOICES = tuple(ROBOTS_RULES)

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def neutralize_csv_cell(value: str) -> str:
    """A cell a spreadsheet will not run: formula-like text gets a leading quote (numbers stay)."""
    if _NUMBER.match(value):
        return value
    return neutralize_cell(value)


class CsvRewriter:
    """Rewrites a CSV byte stream record by record, neutralizing formula-like cells.

    Chunks may split records (and multi-byte characters) anywhere; quoted fields may hold
    line breaks. A record is complete at a line break outside quotes.
    """

    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""
        self.in_quotes = False
        self.scanned = 0

    def feed(self, chunk: bytes, final: bool = False) -> bytes:
        self.pending += self.decoder.decode(chunk, final=final)
        cut = 0
        i = self.scanned
        text = self.pending
        while i < len(text):
            c = text[i]
            if c == '"':
                self.in_quotes = not self.in_quotes
            elif c == "\n" and not self.in_quotes:
                cut = i + 1
            i += 1
        self.scanned = len(text)
        if final:
            cut = len(text)
        complete, self.pending = text[:cut], text[cut:]
        self.scanned -= cut
        if not complete:
            return b""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        for record in csv.reader(io.StringIO(complete, newline="")):
            writer.writerow([neutralize_csv_cell(cell) for cell in record])
        return out.getvalue().encode("utf-8")


def is_csv_request(scope: Mapping[str, Any]) -> bool:
    path = scope.get("path", "")
    query = scope.get("query_string", b"").decode("latin-1")
    return path.endswith(".csv") or bool(re.search(r"(^|&)_format=csv(&|$)", query))


def csv_guard(app: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """ASGI middleware: every CSV that Datasette sends has its formula-like cells neutralized."""

    async def wrapped(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http" or not is_csv_request(scope):
            await app(scope, receive, send)
            return
        rewriter: CsvRewriter | None = None

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal rewriter
            if message["type"] == "http.response.start":
                if message.get("status") == 200:
                    rewriter = CsvRewriter()
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"]
                    message = {**message, "headers": headers}
                await send(message)
                return
            if message["type"] == "http.response.body" and rewriter is not None:
                more = message.get("more_body", False)
                body = rewriter.feed(message.get("body", b""), final=not more)
                await send({**message, "body": body})
                return
            await send(message)

        await app(scope, receive, guarded_send)

    return wrapped
