"""Full-text search on a large catalog: memory-mapped reads, and Datasette's count and first
page of a plain search answered by equivalent, cheaper SQL; pages after the first, newest
first, read through the index. The logic is in :mod:`catalog.search` and
:mod:`catalog.keyset`; this file only connects it to Datasette's hooks.
"""

from __future__ import annotations

from datasette import hookimpl

from catalog import keyset, search


@hookimpl
def prepare_connection(conn, database, datasette):
    search.map_into_memory(conn)


@hookimpl
def startup(datasette):
    async def inner():
        for db in datasette.databases.values():
            keyset.install(db)  # first: the search's rewrites see Datasette's own queries
            search.install(db)

    return inner
