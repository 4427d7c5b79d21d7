"""The hub's own pages for people (search and browse, topic, system, source, resource and
event pages, Subscribe, Suggest a source) and their feeds, downloads and calendars: the logic
is in :mod:`catalog.hub`, :mod:`catalog.hubroutes` and :mod:`catalog.outputs`; this file only
registers the routes, and the SQL function ``illhub_topic`` the "Resources by topic" query
uses to read a topic's name as well as its id.
"""

from __future__ import annotations

from datasette import hookimpl

from catalog import hubroutes, wording


@hookimpl
def register_routes():
    return hubroutes.ROUTES


@hookimpl
def prepare_connection(conn):
    conn.create_function("illhub_topic", 1, wording.topic_id, deterministic=True)
