"""The hub's pages for people: search and browse, a page per topic, system, source and resource
(an event's with "add to calendar"), the topics index, upcoming events, Subscribe and Suggest a
source. They speak the practitioner's words (names, not ids or column names), link to each
other wherever a name appears, and offer the list they show as a feed, a spreadsheet and a
LibGuide snippet (:mod:`catalog.outputs`); Datasette's own tables stay one click further for
data users. The routes are wired in ``datasette_config/plugins/illhub_hub.py``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from datasette.database import QueryInterrupted
from datasette.utils.asgi import NotFound, Response

from catalog import listing, wording
from catalog.cards import card, highlight, json_list, path, type_label, type_plural, why_tagged
from catalog.labels import readable_date, term_labels
from catalog.pages import catalog_database, source_names


async def database(datasette: Any) -> Any:
    db = await catalog_database(datasette)
    if db is None:
        raise NotFound("No catalog is served yet")
    return db


async def render(datasette: Any, request: Any, template: str, context: dict[str, Any], status: int = 200) -> Response:
    html = await datasette.render_template(template, context, request=request)
    return Response.html(html, status=status)


def subject(kind: str, key: str) -> dict[str, Any]:
    """What a topic or system page is about, from the taxonomy (NotFound when unknown)."""
    from pipeline.taxonomy import default_taxonomy

    tax = default_taxonomy()
    term = (tax.topics if kind == "topic" else tax.systems).get(key)
    if term is None:
        raise NotFound(f"No {kind} called {key!r}")
    info = {"kind": kind, "id": key, "label": term.label, "description": term.description}
    if kind == "system":
        info["vendor"] = term.vendor
        info["names"] = [k for k in term.keywords if k.lower() != term.label.lower()]
    return info


async def source_info(datasette: Any, db: Any, key: str) -> dict[str, Any]:
    rows = list(await db.execute("select * from sources where id = ?", [key]))
    if not rows:
        raise NotFound(f"No source called {key!r}")
    info = dict(rows[0])
    if await db.table_exists("source_health") or "source_health" in await db.view_names():
        health = list(await db.execute("select * from source_health where source_id = ?", [key]))
        if health:
            h = dict(health[0])
            info["health"] = {
                "last_run": readable_date(h.get("last_run")), "status": h.get("last_status"),
                "failures": h.get("consecutive_failures"), "last_success": readable_date(h.get("last_success")),
                "items": h.get("items"), "days_since_new": h.get("days_since_new"),
                "needs_attention": bool(h.get("needs_attention")),
            }
    info["topic_links"] = [{"label": term_labels()["topics"].get(t, t), "url": path(datasette, "topic", t)}
                           for t in json_list(info.get("topics"))]
    return info


def _fixed(kind: str, key: str) -> dict[str, str]:
    return {kind: key} if kind in ("topic", "system", "source") else {}


async def list_context(datasette: Any, request: Any, kind: str, key: str = "") -> dict[str, Any]:
    """Everything a list page shows: its subject, its resources (one page), facets, choices,
    and its outputs; when a query is interrupted by the time limit, :func:`interrupted_context`."""
    try:
        return await _list_context(datasette, request, kind, key)
    except QueryInterrupted:
        return await interrupted_context(datasette, request, kind, key)


async def interrupted_context(datasette: Any, request: Any, kind: str, key: str = "") -> dict[str, Any]:
    """The list page of a list whose query missed the time limit: no resources, a plain
    message and the ways to narrow it (a topic, a type, a date), nothing that asks the
    catalog again but the source's own row."""
    db = await database(datasette)
    a = listing.ListArgs.from_request(request.args, **_fixed(kind, key))
    base = request.path
    page: dict[str, Any] = {
        "kind": kind, "args": a, "total": 0, "partial": False, "cards": [], "facets": [],
        "active": _active(a, base, {}), "choices": _choices(a, base), "pages": _pages(a, base, 0),
        "outputs": outputs(datasette, db.name, kind, key, a), "expansions": [],
        "interrupted": {
            "topics": path(datasette, "topics"),
            "types": [{"label": type_plural(t).capitalize(), "url": f"{base}?{a.query(type=t)}"} for t in TYPES
                      if t != a.type],
            "dates": _choices(a, base)["when"],
        },
    }
    if kind in ("topic", "system"):
        page.update(subject=subject(kind, key), highlights={}, sources=[])
    elif kind == "source":
        try:
            page["subject"] = await source_info(datasette, db, key)
        except QueryInterrupted:
            page["subject"] = {"name": key}
    return {"page": page, "types": {t: type_label(t) for t in TYPES}}


#: The content types a list can be narrowed to.
TYPES = ("article", "document", "documentation", "event", "page", "video")


async def _list_context(datasette: Any, request: Any, kind: str, key: str) -> dict[str, Any]:
    db = await database(datasette)
    a = listing.ListArgs.from_request(request.args, **_fixed(kind, key))
    result = await listing.fetch(db, a)
    names = await source_names(datasette, db.name)
    base = request.path
    page: dict[str, Any] = {
        "kind": kind, "args": a, "total": result.total, "partial": result.partial,
        "estimated": result.window, "count": count_text(result.total, result.window),
        "cards": [card(datasette, r, names) for r in result.rows],
        "facets": _facets(raw_facets := await listing.facet_counts(db, result, a), a, base, names),
        "active": _active(a, base, names), "choices": _choices(a, base),
        "pages": _pages(a, base, result.total), "outputs": outputs(datasette, db.name, kind, key, a),
        "expansions": result.plan.expansions() if result.plan else [],
    }
    if result.sample is not None and len(result.sample) < result.total and page["facets"]:
        page["facet_sample"] = len(result.sample)
    if result.plan:
        words = {w for c in result.plan.concepts for ph in c.phrases for w in ph.split() if len(w) > 2}
        for c in page["cards"]:
            c["title_html"] = highlight(c["title"], words)
    if a.q and result.total == 0:
        page["suggest"] = _suggestions(datasette, a.q, base)
    if kind in ("topic", "system"):
        page["subject"] = subject(kind, key)
        page["highlights"] = await _highlights(datasette, db, a, names)
        page["sources"] = await _feeding_sources(datasette, db, raw_facets)
    elif kind == "source":
        page["subject"] = await source_info(datasette, db, key)
    return {"page": page, "types": {t: type_label(t) for t in TYPES}}


def count_text(total: int, window: int) -> str:
    """"1,234 resources", or for a count scaled from the newest ``window`` resources "about
    1,200 resources" (two significant figures)."""
    if not window:
        return f"{total:,} resource{'s' if total != 1 else ''}"
    rounded = int(float(f"{total:.2g}")) if total >= 100 else total
    return f"about {rounded:,} resources"


def _facets(facets: list[dict[str, Any]], a: listing.ListArgs, base: str, names: dict[str, str]) -> list[dict[str, Any]]:
    labels = term_labels()
    titles = {"type": "Type", "topic": "Topic", "system": "System", "organization": "Organization", "source": "Source"}
    out = []
    for f in facets:
        def label(v: str, p: str = f["param"]) -> str:
            return {"type": type_label(v), "topic": labels["topics"].get(v, v), "system": labels["systems"].get(v, v),
                    "source": names.get(v, v)}.get(p, v)
        out.append({"title": titles[f["param"]], "param": f["param"],
                    "values": [{"label": label(v), "count": n, "url": f"{base}?{a.query(**{f['param']: v})}"}
                               for v, n in f["values"]]})
    return out


def _active(a: listing.ListArgs, base: str, names: dict[str, str]) -> list[dict[str, str]]:
    """The narrowing the visitor chose, each with a link that removes it."""
    labels = term_labels()
    shown = {"q": lambda v: f"Words: “{v}”", "topic": lambda v: "Topic: " + labels["topics"].get(v, v),
             "system": lambda v: "System: " + labels["systems"].get(v, v), "type": lambda v: "Type: " + type_label(v),
             "organization": lambda v: f"Organization: {v}", "source": lambda v: "Source: " + names.get(v, v),
             "when": lambda v: "Published: " + listing.WHEN[v][0].lower(), "since": lambda v: f"Published since {v}",
             "until": lambda v: f"Published until {v}", "added": lambda v: "Added " + listing.WHEN[v][0].lower()}
    return [{"label": fn(getattr(a, p)), "remove": f"{base}?{a.query(**{p: None})}".rstrip("?")}
            for p, fn in shown.items() if getattr(a, p) and p not in a.fixed]


def _choices(a: listing.ListArgs, base: str) -> dict[str, Any]:
    return {
        "sorts": [{"value": k, "label": v[0], "url": f"{base}?{a.query(sort=k)}", "current": a.order == k}
                  for k, v in listing.SORTS.items() if k != "relevance" or a.q],
        "when": [{"value": k, "label": v[0], "url": f"{base}?{a.query(when=k, since=None, until=None)}",
                  "current": a.when == k} for k, v in listing.WHEN.items()],
        "any_time": f"{base}?{a.query(when=None, since=None, until=None)}".rstrip("?"),
    }


def _pages(a: listing.ListArgs, base: str, total: int) -> dict[str, Any]:
    last = min(listing.MAX_PAGE, max(1, -(-total // listing.PAGE_SIZE)))
    first_shown = (a.page - 1) * listing.PAGE_SIZE + 1 if total else 0
    return {"page": a.page, "last": last, "from": first_shown,
            "to": min(total, a.page * listing.PAGE_SIZE),
            "prev": f"{base}?{a.query(page=a.page - 1)}".rstrip("?") if a.page > 1 else None,
            "next": f"{base}?{a.query(page=a.page + 1)}" if a.page < last else None,
            "capped": total > listing.MAX_PAGE * listing.PAGE_SIZE}


def _suggestions(datasette: Any, q: str, base: str) -> dict[str, Any]:
    s = wording.suggestions(q)
    labels = term_labels()
    return {"spelling": [{"text": f, "url": f"{base}?{urlencode({'q': f})}"} for f in s["spelling"]],
            "topics": [{"label": labels["topics"].get(t, t), "url": path(datasette, "topic", t)} for t in s["topics"]],
            "systems": [{"label": labels["systems"].get(x, x), "url": path(datasette, "system", x)}
                        for x in s["systems"]],
            "all_topics": path(datasette, "topics")}


async def _highlights(datasette: Any, db: Any, a: listing.ListArgs, names: dict[str, str]) -> dict[str, Any]:
    """A topic's or system's newest videos and upcoming events."""
    bare = listing.ListArgs(topic=a.topic, system=a.system)
    videos = await listing.fetch(db, replace(bare, type="video"), limit=4)
    where, params = listing.filters(bare, frozenset({"topics", "systems"}))  # asked of each event only
    events = await listing.upcoming_events(db, where, params, limit=5)
    return {"videos": [card(datasette, r, names) for r in videos.rows], "videos_total": videos.total,
            "videos_all": (f"All videos (about {count_text(videos.total, videos.window).split()[1]})" if videos.window
                           else f"All {videos.total:,} videos"),
            "videos_url": f"?{bare.query(type='video')}",
            "events": [card(datasette, r, names) for r in events]}


async def _feeding_sources(datasette: Any, db: Any, facets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sources of the list's resources, most first: its source facet (counted, for a large
    list, over its most recently added resources, as the facets say)."""
    counts = next((f["values"] for f in facets if f["param"] == "source"), [])
    if not counts:
        return []
    ids = [v for v, _n in counts]
    info = {r["id"]: r for r in await db.execute(
        f"select id, name, organization from sources where id in ({', '.join('?' for _ in ids)})", ids)}
    return [{"name": info[v]["name"], "organization": info[v]["organization"], "count": n,
             "url": path(datasette, "source", v)} for v, n in counts if v in info]


def outputs(datasette: Any, database_name: str, kind: str, key: str, a: listing.ListArgs) -> dict[str, Any]:
    """The list's feed, downloads and calendar, and Datasette's full tables for data users."""
    here = (kind, key) if kind in ("topic", "system", "source") else ("search",)
    query = a.query()
    out = {
        "atom": path(datasette, *here, "feed.atom", query=query),
        "csv": path(datasette, *here, "list.csv", query=query),
        "snippet": path(datasette, *here, "libguide", query=query),
        "ics": path(datasette, *here, "events.ics", query=query) if kind in ("topic", "system") else None,
    }
    table = datasette.urls.table(database_name, "resources")
    full = {}
    for param, arg in (("topic", "_topic"), ("system", "_system"), ("type", "content_type"),
                       ("organization", "organization"), ("q", "_search")):
        if getattr(a, param):
            full[arg] = getattr(a, param)
    if a.source:
        full["source_id"] = a.source
    suffix = ("&" + urlencode(full)) if full else ""
    out["full_csv"] = f"{table}.csv?_stream=on&_size=max{suffix}"
    out["full_json"] = f"{table}.json?_shape=array{suffix}"
    return out


async def topics_context(datasette: Any) -> dict[str, Any]:
    """Every topic and system with how many resources it has."""
    from pipeline.taxonomy import default_taxonomy

    db = await database(datasette)
    counts, type_counts = await listing.term_counts(db)
    tax = default_taxonomy()
    topics = [{"label": t.label, "description": t.description, "count": counts.get(("topics", t.id), 0),
               "url": path(datasette, "topic", t.id)} for t in tax.topics.values()]
    systems = [{"label": s.label, "vendor": s.vendor, "count": counts.get(("systems", s.id), 0),
                "url": path(datasette, "system", s.id)} for s in tax.systems.values()]
    types = [{"label": type_plural(r[0]).capitalize(), "count": r[1], "url": path(datasette, "search", query=urlencode(
        {"type": r[0]}))} for r in type_counts]
    return {"topics": [t for t in topics if t["count"]], "systems": [s for s in systems if s["count"]], "types": types}


async def resource_context(datasette: Any, key: str) -> dict[str, Any]:
    db = await database(datasette)
    rows = list(await db.execute(f"select {listing.COLUMNS}, r.updated, r.language, r.session_id, r.classified_by "
                                 "from resources r where r.id = ?", [key]))
    if not rows:
        raise NotFound("No such resource")
    row = dict(rows[0])
    names = await source_names(datasette, db.name)
    c = card(datasette, row, names)
    c["description_full"] = c["description"]
    c["why"] = why_tagged(row.get("classified_by"), term_labels(), names)
    c["sources"] = [{"name": names.get(r[0], r[0]), "url": path(datasette, "source", r[0])} for r in await db.execute(
        "select source_id from resource_sources where resource_id = ? order by first_seen", [key])]
    related = []
    if row.get("session_id"):
        related += list(await db.execute("select id, title, content_type from resources where id = ?",
                                          [row["session_id"]]))
    related += list(await db.execute("select id, title, content_type from resources where session_id = ? limit 10",
                                     [key]))
    c["related"] = [{"title": r["title"], "type": type_label(r["content_type"]), "url": path(datasette, "resource", r["id"])}
                    for r in related]
    c["full_json"] = datasette.urls.row(db.name, "resources", key) + ".json"
    return {"resource": c}
