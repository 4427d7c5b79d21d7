"""illhub's facets (``tags``, ``values``), their counts kept until the catalog changes, and the
``_topic=`` / ``_system=`` filters of the resources table: the logic is in
:mod:`catalog.facets` and :mod:`catalog.facetcache`; this file only connects it to Datasette's
hooks. ``/-/facet-cache.json`` reports the cache's hits and misses and the warmer's progress.
"""

from __future__ import annotations

from datasette import hookimpl
from datasette.utils.asgi import Response

from catalog import facetcache, facets


@hookimpl
def filters_from_request(request, database, table, datasette):
    return facets.tag_filters(request, database, table, datasette)


@hookimpl
def register_facet_classes():
    return [facets.ValuesFacet, facets.TagsFacet]


async def facet_cache_stats(datasette):
    if (datasette.plugin_config("illhub") or {}).get("public"):
        from datasette.utils.asgi import NotFound

        raise NotFound("not found")  # the public profile shows none of Datasette's /-/ pages
    return Response.json(facetcache.cache_stats(datasette))


@hookimpl
def register_routes():
    return [(r"^/-/facet-cache\.json$", facet_cache_stats)]
