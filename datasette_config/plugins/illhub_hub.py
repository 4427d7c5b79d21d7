"""The hub's own pages for people (search and browse, topic, system, source, resource and
event pages, Subscribe, Suggest a source) and their feeds, downloads and calendars: the logic
is in :mod:`catalog.hub`, :mod:`catalog.hubroutes` and :mod:`catalog.outputs`; this file only
registers the routes.
"""

from __future__ import annotations

from datasette import hookimpl

from catalog import hubroutes


@hookimpl
def register_routes():
    return hubroutes.ROUTES
