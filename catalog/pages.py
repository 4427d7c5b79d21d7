"""The catalog's own pages: the front page's data (:func:`hub_context`), the header's search
box (:func:`nav_context`) and the counts that narrow the ranked search (:func:`search_context`),
read from the served catalog database.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from catalog.labels import (
    CONTENT_TYPE_PLURALS,
    column_label,
    filter_arg,
    http_url,
    readable_date,
    term_labels,
    value_label,
)
from catalog.public import PUBLIC_TABLES

#: Canned queries (or tables/views) maintainers look at, in the order the front page lists them.
MAINTAINER_LINKS = (
    ("query", "source_health", "Source health", "Which registry entries need fixing"),
    ("table", "source_health", "Source health", "Which registry entries need fixing"),
    ("query", "harvest_health", "Harvest health", "The latest harvest of every source"),
    ("query", "harvest_summary", "Harvest health", "How each source's harvests are going"),
    ("query", "broken_links", "Broken links", "Links that stopped working, with archived copies"),
    ("query", "link_health_by_source", "Link health by source", "Working, blocked and broken links per source"),
    ("query", "blocked_links", "Blocked links", "Links that refuse robots but probably work for a person"),
    ("query", "recovered_links", "Recovered links", "Links that work again"),
    ("table", "harvest_runs", "Harvest runs", "Every run of every source"),
    ("table", "sources", "Sources", "The registry as last loaded"),
)
#: The hub's lists for people browsing, on the front page: (key, path, title, description).
HUB_LISTS = (
    ("new_this_week", "/search?added=week&sort=newest", "New this week", "Resources first harvested in the last seven days"),
    ("videos", "/search?type=video", "Videos", "Recorded webinars, sessions and how-tos"),
    ("copyright", "/topic/copyright", "Copyright and fair use", "CONTU, Section 108, fair use and compliance"),
    ("topics", "/topics", "Every topic and system", "The catalog by subject, by name"),
    ("events", "/events", "Upcoming events", "Sessions and webinars, each with “Add to calendar”"),
    ("sources", "/sources", "Sources", "What the catalog reads, how fresh each source is"),
)
#: Feeds people can subscribe to, on the front page: (path, label).
HUB_FEEDS = (("/search/feed.atom", "New resources (Atom feed for a feed reader)"),
             ("/events/upcoming.ics", "Upcoming events (iCal, for a calendar)"),
             ("/subscribe", "More feeds and calendars: per topic, system, source or search"))
EVENT_COLUMNS = ("starts_at",)

#: The last harvest in four numbers, for the front page's status line and ``illhub status``:
#: when it finished, and among the enabled sources how many failed in their latest run and
#: how many need attention (3 failures in a row).
HARVEST_STATUS_SQL = """
SELECT
  (SELECT max(finished_at) FROM harvest_runs WHERE status NOT IN ('skipped', 'running')) AS last_finished,
  (SELECT count(*) FROM source_health WHERE enabled AND last_status = 'failed') AS failing,
  (SELECT count(*) FROM source_health WHERE enabled AND needs_attention) AS attention,
  (SELECT count(*) FROM sources WHERE enabled) AS sources
"""
#: A catalog whose last harvest finished longer ago than this (a nightly run missed) is stale.
STALE_AFTER_HOURS = 36


def age_text(seconds: float | None) -> str | None:
    """``3 hours ago`` and the like."""
    if seconds is None:
        return None
    if seconds < 90:
        return "just now"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} minutes ago"
    hours = minutes / 60
    return f"{hours:.0f} hours ago" if hours < 36 else f"{hours / 24:.0f} days ago"


def harvest_banner(row: Mapping[str, Any], now: Any) -> dict[str, Any]:
    """The front page's status line from a :data:`HARVEST_STATUS_SQL` row."""
    from catalog.labels import parse_iso

    finished = parse_iso(row.get("last_finished"))
    age = (now - finished).total_seconds() if finished is not None else None
    stale = age is not None and age > STALE_AFTER_HOURS * 3600
    return {**row, "last_finished_readable": readable_date(row.get("last_finished")), "age_seconds": age,
            "age": age_text(age), "stale": stale, "alarm": bool(row.get("failing") or row.get("attention") or stale)}


async def _harvest_status(db: Any, tables: set[str], urls: Any, queries: Mapping[str, Any],
                          public: bool) -> dict[str, Any] | None:
    if not {"harvest_runs", "source_health", "sources"} <= tables:
        return None
    from datetime import UTC, datetime

    result = await db.execute(HARVEST_STATUS_SQL)
    banner = harvest_banner(dict(zip(result.columns, result.first(), strict=True)), datetime.now(UTC))
    # Maintainers get the errors themselves; the public profile has the summary without them.
    order = ("harvest_summary",) if public else ("harvest_health", "harvest_summary")
    health = next((q for q in order if q in queries), None)
    banner["health_url"] = urls.query(db.name, health) if health else None
    banner["public"] = public
    return banner


def _public(datasette: Any) -> bool:
    return bool((datasette.plugin_config("illhub") or {}).get("public"))


_SOURCE_NAMES: dict[str, tuple[float, dict[str, str]]] = {}
SOURCE_NAMES_TTL = 60.0


async def source_names(datasette: Any, database: str) -> dict[str, str]:
    """Source id → name for a database, cached for a minute (the sources table is small)."""
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
    """The first served database that holds a resources table (remembered while it is served:
    every page asks, some twice)."""
    found = getattr(datasette, "_illhub_catalog", None)
    if found is not None and datasette.databases.get(found.name) is found:
        return found
    for name, db in datasette.databases.items():
        if name.startswith("_"):
            continue
        if await db.table_exists("resources"):
            datasette._illhub_catalog = db
            return db
    return None


async def nav_context(datasette: Any, request: Any) -> dict[str, Any] | None:
    """Where the header's search box sends people (the ranked search when it exists)."""
    db = await catalog_database(datasette)
    if db is None:
        return None
    links = [{"label": label, "url": datasette.urls.path(p)} for p, label in HUB_NAV]
    return {"search_url": datasette.urls.path("/search"), "search_param": "q", "links": links}


#: The hub's menu in every page's header: (path, label).
HUB_NAV = (("/topics", "Topics"), ("/events", "Events"), ("/subscribe", "Subscribe"),
           ("/suggest-a-source", "Suggest a source"))


def feed_links(datasette: Any) -> list[dict[str, str]]:
    """The feed every page announces to feed readers (autodiscovery)."""
    return [{"title": "illhub: new resources", "url": datasette.urls.path("/search/feed.atom")}]


async def hub_context(datasette: Any, request: Any) -> dict[str, Any]:
    """Everything the front page shows, from the catalog database (empty when there is none)."""
    db = await catalog_database(datasette)
    if db is None:
        return {"hub": None}
    name = db.name
    urls = datasette.urls
    resources_url = urls.table(name, "resources")
    total = (await db.execute("select count(*) from resources")).first()[0]
    tiles = await _tiles(db, datasette)
    new_rows, new_count = await _new_this_week(db, datasette)
    events = await _upcoming_events(db, datasette)
    queries = await datasette.get_canned_queries(name, request.actor if request else None)
    tables = set(await db.table_names()) | set(await db.view_names())
    visible = tables if not _public(datasette) else tables & PUBLIC_TABLES
    browse = [{"name": key, "title": title, "description": description, "url": urls.path(target)}
              for key, target, title, description in HUB_LISTS]
    subscribe = [{"label": label, "url": urls.path(target)} for target, label in HUB_FEEDS]
    # the sources that brought something in, not every one the registry lists (a volunteer's
    # two new sources in a catalog of their own read "from 95 sources")
    sources = (await db.execute("select count(*) from sources s where exists (select 1 from resource_sources r "
                                "where r.source_id = s.id)")).first()[0] if "sources" in tables else None
    status = await _harvest_status(db, tables, urls, queries, _public(datasette))
    return {"hub": {
        "database": name, "resources_url": resources_url, "total": total, **tiles,
        "new_this_week": new_rows, "new_count": new_count, "events": events,
        "maintainer_links": _maintainer_links(urls, name, queries, visible), "browse_queries": browse,
        "subscribe": subscribe, "search_url": urls.path("/search"), "search_param": "q",
        "browse_url": urls.path("/search"), "subscribe_url": urls.path("/subscribe"),
        "new_url": urls.path("/search?added=week&sort=newest"),
        "sources": sources, "status": status,
        "add_source_url": urls.path("/suggest-a-source"),
        "labels": term_labels(),
    }}


async def _tiles(db: Any, datasette: Any) -> dict[str, list[dict[str, Any]]]:
    """The front page's topic, system and content type tiles, with their counts (those with
    resources only), each linking to its page in the hub."""
    from catalog.cards import path
    from catalog.listing import term_counts
    from pipeline.taxonomy import default_taxonomy

    counts, type_counts = await term_counts(db)
    tax = default_taxonomy()
    topics = [{"id": t.id, "label": t.label, "description": t.description, "count": counts.get(("topics", t.id), 0),
               "url": path(datasette, "topic", t.id)}
              for t in tax.topics.values() if counts.get(("topics", t.id))]
    systems = [{"id": s.id, "label": s.label, "count": counts.get(("systems", s.id), 0),
                "url": path(datasette, "system", s.id)}
               for s in tax.systems.values() if counts.get(("systems", s.id))]
    types = [{"id": t, "label": value_label("content_type", t), "count": n,
              "plural": CONTENT_TYPE_PLURALS.get(t, f"{t} resources"),
              "url": path(datasette, "search", query=urlencode({"type": t}))} for t, n in type_counts]
    return {"topics": topics, "systems": systems, "types": types}


def _card(row: Any, datasette: Any, date: str | None) -> dict[str, Any]:
    """A resource as the front page lists it: its columns, its link, its page in the hub and
    the date shown (readable)."""
    from catalog.cards import path

    card = dict(row)
    card["link"] = http_url(card["url"])
    card["row_url"] = path(datasette, "resource", card["id"])
    card["when"] = readable_date(date)
    return card


async def _new_this_week(db: Any, datasette: Any) -> tuple[list[dict[str, Any]], int]:
    """The newest of the resources first harvested in the last seven days, and how many there are."""
    new_rows = []
    for r in await db.execute(
            "select id, title, url, content_type, organization, published, first_seen from resources "
            "where first_seen >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-7 days') "
            "order by coalesce(published, first_seen) desc limit 8"):
        card = _card(r, datasette, r["published"] or r["first_seen"])
        card["date"] = card["published"] or card["first_seen"]
        card["type_label"] = value_label("content_type", card["content_type"])
        new_rows.append(card)
    new_count = (await db.execute(
        "select count(*) from resources where first_seen >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-7 days')"
    )).first()[0]
    return new_rows, new_count


async def _upcoming_events(db: Any, datasette: Any) -> list[dict[str, Any]] | None:
    """The next active events (None when the catalog has no event columns)."""
    columns = set(await table_columns(db, "resources"))
    if not all(c in columns for c in EVENT_COLUMNS):
        return None
    extra = ", ".join(c for c in ("location", "event_name", "ends_at", "timezone") if c in columns)
    rows = await db.execute(
        f"select id, title, url, starts_at{', ' + extra if extra else ''} from resources "
        "where content_type = 'event' and status = 'active' "
        "and coalesce(ends_at, starts_at) >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
        "order by starts_at, title limit 6")
    from catalog.cards import event_times, path

    cards = []
    for r in rows:
        card = _card(r, datasette, r["starts_at"])
        times = event_times(r["starts_at"], r["ends_at"] if "ends_at" in r.keys() else None,
                            r["timezone"] if "timezone" in r.keys() else None)
        card["when"] = times["local"] if times else card["when"]
        card["ics"] = path(datasette, "resource", r["id"], "event.ics")
        cards.append(card)
    return cards


def _maintainer_links(urls: Any, database: str, queries: Mapping[str, Any], tables: set[str]) -> list[dict[str, Any]]:
    """The pages maintainers look at that this catalog has (a canned query before a table of
    the same name)."""
    maintainer, seen = [], set()
    for kind, target, label, description in MAINTAINER_LINKS:
        if label in seen:
            continue
        if kind == "query" and target in queries:
            href = urls.query(database, target)
        elif kind == "table" and target in tables:
            href = urls.table(database, target)
        else:
            continue
        seen.add(label)
        maintainer.append({"label": queries.get(target, {}).get("title") or label if kind == "query" else label,
                           "description": description, "url": href})
    return maintainer


#: The search page's narrowing facets: (query parameter, column, is a JSON array).
SEARCH_FACETS = (("content_type", "content_type", False), ("topic", "topics", True),
                 ("system", "systems", True), ("organization", "organization", False))


async def search_context(datasette: Any, database: str, request: Any) -> dict[str, Any]:
    """Counts that narrow the ``search`` canned query (the same filters as its SQL)."""
    from datasette.utils import escape_fts

    args = {k: request.args.get(k, "") for k in ("q", *(p for p, _, _ in SEARCH_FACETS))}
    match = escape_fts(args["q"] or "")
    path = request.path
    active = [{"param": p, "label": column_label(col), "value": value_label(col, args[p]),
               "remove_url": url_with(path, args, **{p: None})} for p, col, _ in SEARCH_FACETS if args[p]]
    if not match:
        return {"search": {"q": args["q"], "facets": [], "active": active, "args": args,
                           "table_url": datasette.urls.table(database, "resources")}}
    facets = await _search_facets(datasette.get_database(database), match, args, path)
    table_args = {"_search": args["q"]}
    for p, col, _ in SEARCH_FACETS:
        if args[p]:
            table_args[filter_arg(col)] = args[p]
    return {"search": {
        "q": args["q"], "facets": facets, "active": active, "args": args,
        "table_url": datasette.urls.table(database, "resources") + "?" + urlencode(table_args),
    }}


async def _search_facets(db: Any, match: str, args: Mapping[str, str], path: str) -> list[dict[str, Any]]:
    """The counts of each facet not chosen yet among the search's matches (narrowed by the
    facets chosen), each value linking to the search narrowed to it."""
    where = ["resources_fts match :match"]
    params = {"match": match}
    for p, col, is_array in SEARCH_FACETS:
        if args[p]:
            params[p] = args[p]
            where.append(f"exists (select 1 from json_each(r.{col}) where value = :{p})" if is_array
                         else f"r.{col} = :{p}")
    base = ("from resources_fts join resources r on r.rowid = resources_fts.rowid where " + " and ".join(where))
    facets = []
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
    return facets


def url_with(path: str, args: Mapping[str, Any], **changes: Any) -> str:
    """``path`` with the query ``args`` changed: a value of None or "" removes that key."""
    merged = {k: v for k, v in args.items()}
    merged.update(changes)
    query = urlencode([(k, v) for k, v in merged.items() if v not in (None, "")])
    return f"{path}?{query}" if query else path
