"""The hub's routes: each answers one address with a page (:mod:`catalog.hub`) or an output
(:mod:`catalog.outputs`). ``ROUTES`` is what ``datasette_config/plugins/illhub_hub.py`` registers;
Datasette matches a plugin's routes before its own, so ``/topic/copyright`` is the hub's page.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from datasette.database import QueryInterrupted
from datasette.utils.asgi import NotFound, Response

from catalog import hub, listing, outputs
from catalog.cards import path
from catalog.labels import term_labels

LIST_OUT = r"(?:/(?P<out>feed\.atom|list\.csv|list\.html|libguide|events\.ics))?"


def _absolute(request: Any, url: str) -> str:
    return f"{request.scheme}://{request.host}{url}"


def feed_content_type(request: Any) -> str:
    """Atom's own type for feed readers; for a browser (which asks for HTML first) an XML type,
    so it applies the feed's stylesheet instead of showing the source (Chromium shows
    ``application/atom+xml`` as plain text)."""
    accept = request.headers.get("accept", "")
    if accept.startswith("text/html") or "application/xhtml+xml" in accept.split(",")[0:2]:
        return "application/xml; charset=utf-8"
    return "application/atom+xml; charset=utf-8"


def _title(kind: str, key: str, a: listing.ListArgs, names: dict[str, str] | None = None) -> str:
    labels = term_labels()
    if kind == "topic":
        return labels["topics"].get(key, key)
    if kind == "system":
        return labels["systems"].get(key, key)
    if kind == "source":
        return (names or {}).get(key, key)
    return f"Search: {a.q}" if a.q else "All resources"


async def list_route(datasette: Any, request: Any) -> Response:
    """``/search``, ``/topic/ID``, ``/system/ID``, ``/source/ID`` and their outputs."""
    v = request.url_vars
    kind = v.get("kind") or "search"
    key = v.get("key") or ""
    out = v.get("out")
    if kind in ("topic", "system"):
        hub.subject(kind, key)  # NotFound for an unknown one
    if not out:
        context = await hub.list_context(datasette, request, kind, key)
        return await hub.render(datasette, request, "hub_list.html", context)
    try:
        return await _list_output(datasette, request, kind, key, out)
    except QueryInterrupted:  # a feed reader or a download retries later; nothing half-made
        return Response.text(TOO_BROAD + "\n", status=503, headers={"retry-after": "3600"})


#: What a list's output says when its query missed the time limit.
TOO_BROAD = "This search matched too much to finish in time; narrow it by topic, type or date."


async def _list_output(datasette: Any, request: Any, kind: str, key: str, out: str) -> Response:
    db = await hub.database(datasette)
    fixed = {kind: key} if kind in ("topic", "system", "source") else {}
    a = listing.ListArgs.from_request(request.args, **fixed)
    names = None
    if kind == "source":
        from catalog.pages import source_names

        # only whether it exists: the source page's health and freshness are not part of its outputs
        if not list(await db.execute("select 1 from sources where id = ?", [key])):
            raise NotFound(f"No source called {key!r}")
        names = await source_names(datasette, db.name)
    title = _title(kind, key, a, names)
    page_url = path(datasette, *((kind, key) if fixed else ("search",)), query=a.query())
    if out == "feed.atom":
        feed_args = listing.replace(a, sort="newest") if not a.q else a
        result = await listing.fetch(db, feed_args, limit=outputs.FEED_SIZE, offset=0)
        body = outputs.atom(result.rows, title=f"illhub: {title}", self_url=_absolute(request, request.full_path),
                            page_url=_absolute(request, page_url), stylesheet=datasette.urls.path("/static/feed.xsl"),
                            feed_id=_absolute(request, request.full_path))
        return Response(body, content_type=feed_content_type(request))
    if out == "events.ics":
        return await _calendar_response(datasette, request, db, a, f"illhub: {title}")
    result = await listing.fetch(db, a, limit=outputs.CSV_LIMIT, offset=0)
    if out == "list.csv":
        filename = quote(f"illhub-{key or 'search'}.csv")
        return Response(outputs.spreadsheet_csv(result.rows), content_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f"attachment; filename={filename}"})
    code = outputs.snippet(result.rows, heading=title)
    if out == "libguide":  # the code to copy, how to paste it, and what it will look like
        return await hub.render(datasette, request, "hub_libguide.html", {
            "title": title, "code": code, "count": len(result.rows), "back": page_url,
            "raw": path(datasette, *((kind, key) if fixed else ("search",)), "list.html", query=a.query())})
    # as text, so the browser shows the code to copy into a LibGuide's HTML editor
    return Response.text(code)


async def _calendar_response(datasette: Any, request: Any, db: Any, a: listing.ListArgs, name: str) -> Response:
    where, params = listing.filters(a)
    rows = await listing.upcoming_events(db, where, params, limit=500)
    body = outputs.calendar(rows, name=name, page_url=lambda rid: _absolute(request, path(datasette, "resource", rid)))
    return Response(body, content_type="text/calendar; charset=utf-8")


async def resource_route(datasette: Any, request: Any) -> Response:
    key = request.url_vars["key"]
    if request.url_vars.get("out"):
        db = await hub.database(datasette)
        rows = [dict(r) for r in await db.execute(f"select {listing.COLUMNS} from resources r where r.id = ?", [key])]
        if not rows or not rows[0].get("starts_at"):
            raise NotFound("No such event")
        body = outputs.calendar(rows, name=rows[0]["title"] or "illhub event",
                                page_url=lambda rid: _absolute(request, path(datasette, "resource", rid)))
        return Response(body, content_type="text/calendar; charset=utf-8",
                        headers={"content-disposition": f"attachment; filename=illhub-event-{key[:12]}.ics"})
    return await hub.render(datasette, request, "hub_resource.html", await hub.resource_context(datasette, key))


async def topics_route(datasette: Any, request: Any) -> Response:
    return await hub.render(datasette, request, "hub_topics.html", await hub.topics_context(datasette))


async def events_route(datasette: Any, request: Any) -> Response:
    """Upcoming events, with the calendar of them all and of each topic."""
    db = await hub.database(datasette)
    if request.url_vars.get("out"):
        return await _calendar_response(datasette, request, db, listing.ListArgs(), "illhub: upcoming events")
    from catalog.cards import card
    from catalog.pages import source_names

    names = await source_names(datasette, db.name)
    cards = [card(datasette, r, names) for r in await listing.upcoming_events(db, limit=200)]
    topics = sorted({(t["label"], t["id"]) for c in cards for t in c["topics"]})
    return await hub.render(datasette, request, "hub_events.html", {
        "cards": cards, "ics": path(datasette, "events", "upcoming.ics"),
        "topic_calendars": [{"label": label, "url": path(datasette, "topic", tid, "events.ics"),
                             "page": path(datasette, "topic", tid)} for label, tid in topics]})


async def subscribe_route(datasette: Any, request: Any) -> Response:
    context = await hub.topics_context(datasette)
    return await hub.render(datasette, request, "hub_subscribe.html", {
        **context, "feed": path(datasette, "search", "feed.atom"), "ics": path(datasette, "events", "upcoming.ics"),
        "opml": path(datasette, "sources.opml"), "host": _absolute(request, "")})


async def sources_route(datasette: Any, request: Any) -> Response:
    db = await hub.database(datasette)
    rows = [dict(r) for r in await db.execute(
        "select s.*, (select count(*) from resource_sources rs where rs.source_id = s.id) as n from sources s "
        "order by s.organization, s.name")]
    if request.url_vars.get("out"):
        return Response(outputs.opml(rows), content_type="text/x-opml; charset=utf-8",
                        headers={"content-disposition": "inline; filename=illhub-sources.opml"})
    for r in rows:
        r["page"] = path(datasette, "source", r["id"])
    return await hub.render(datasette, request, "hub_sources.html", {
        "sources": rows, "opml": path(datasette, "sources.opml")})


def registry_contact(path: str = "registry.yaml") -> str | None:
    """The contact in the registry's ``defaults:`` (a URL or an e-mail address), or None."""
    from pathlib import Path

    from ruamel.yaml import YAML

    try:
        data = YAML(typ="safe").load(Path(path).read_text(encoding="utf-8")) or {}
        contact = (data.get("defaults") or {}).get("contact")
    except Exception:  # noqa: BLE001 - no contact: the page says where else to go
        return None
    return str(contact) if contact else None


async def suggest_route(datasette: Any, request: Any) -> Response:
    from catalog.labels import http_url

    contact = (datasette.plugin_config("illhub") or {}).get("contact") or registry_contact()
    href = None
    if contact:
        address = contact.removeprefix("mailto:")
        href = http_url(contact) or (f"mailto:{address}" if re.fullmatch(r"[^@\s:/]+@[^@\s:/]+", address) else None)
    return await hub.render(datasette, request, "hub_suggest.html",
                            {"contact": contact.removeprefix("mailto:") if href else None, "contact_href": href})


ROUTES = [
    (r"^/search" + LIST_OUT + "$", list_route),
    (r"^/(?P<kind>topic|system|source)/(?P<key>[^/]+)" + LIST_OUT + "$", list_route),
    (r"^/resource/(?P<key>[^/]+?)(?:/(?P<out>event\.ics))?$", resource_route),
    (r"^/topics$", topics_route),
    (r"^/events(?:/(?P<out>upcoming\.ics))?$", events_route),
    (r"^/sources(?P<out>\.opml)?$", sources_route),
    (r"^/subscribe$", subscribe_route),
    (r"^/suggest-a-source$", suggest_route),
]
