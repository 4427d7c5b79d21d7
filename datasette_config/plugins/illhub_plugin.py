"""illhub's Datasette plugin: friendly cells, the front page's data, the search page's
narrowing facets, the CSV guard, what the public profile shows, the load guard (heavy requests
held to a limit, requests whose client left cancelled), error pages logged in one line,
robots.txt and the "how to add a source" page.

The logic lives in the ``catalog`` package (``labels``, ``cells``, ``pages``, ``public``); this
file only connects it to Datasette's hooks.
Options (metadata ``plugins: illhub:``), set by ``illhub serve``:

- ``robots``: ``allow`` | ``pages`` | ``block`` (see ``catalog.public.ROBOTS_RULES``)
- ``neutralize_csv``: true (default) to neutralize formula-like CSV cells
"""

from __future__ import annotations

from datasette import hookimpl
from datasette.utils.asgi import Response

from catalog import cells, errors, labels, load, pages, public

PLUGIN = "illhub"

errors.replace_default_handler()


def _config(datasette) -> dict:
    return datasette.plugin_config(PLUGIN) or {}


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    def table_url(name):
        return datasette.urls.table(database, name)

    if column == "source_id" and isinstance(value, str):
        async def with_names():
            return cells.render_cell(row=row, value=value, column=column, table=table, database=database,
                                     table_url=table_url, source_names=await pages.source_names(datasette, database))

        return with_names
    return cells.render_cell(row=row, value=value, column=column, table=table, database=database,
                             table_url=table_url)


@hookimpl
def prepare_jinja2_environment(env, datasette):
    env.filters["column_label"] = labels.column_label
    env.filters["value_label"] = lambda value, column: labels.value_label(column, value)
    env.filters["readable_date"] = labels.readable_date
    env.filters["http_url"] = labels.http_url
    env.filters["presenter_names"] = labels.presenter_names
    env.filters["renderer_label"] = labels.renderer_label
    env.globals["illhub_hidden_columns"] = cells.HIDDEN_COLUMNS


@hookimpl
def extra_css_urls(datasette):
    return [datasette.urls.path("/static/illhub.css")]


@hookimpl
def extra_template_vars(template, database, table, view_name, request, datasette):
    async def inner():
        context = {"illhub_public": bool(_config(datasette).get("public")),
                   "illhub_nav": await pages.nav_context(datasette, request),
                   "illhub_feeds": pages.feed_links(datasette)}
        if template == "index.html":
            context.update(await pages.hub_context(datasette, request))
        elif template.startswith("query") and request is not None and database:
            name = (request.url_vars or {}).get("table")
            if name == "search":
                context.update(await pages.search_context(datasette, database, request))
        return context

    return inner


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        app = load.load_guard(app, datasette)
        if _config(datasette).get("public"):
            app = public.public_guard(app)
        if _config(datasette).get("neutralize_csv", True):
            app = public.csv_guard(app)
        return app

    return wrap


@hookimpl
def permission_allowed(datasette, actor, action, resource):
    return public.permission(actor, action, resource, bool(_config(datasette).get("public")))


@hookimpl
def forbidden(datasette, request, message):
    from datasette.utils.asgi import Forbidden

    async def inner():
        return await errors.error_response(datasette, request, Forbidden(message))

    return inner


@hookimpl
def handle_exception(datasette, request, exception):
    async def inner():
        return await errors.error_response(datasette, request, exception)

    return inner


async def robots_txt(datasette):
    mode = _config(datasette).get("robots", "allow")
    return Response.text(public.ROBOTS_RULES.get(mode, public.ROBOTS_RULES["allow"]))


async def add_source_page(datasette, request):
    db = await pages.catalog_database(datasette)
    return Response.html(await datasette.render_template(
        "illhub_add_source.html", {"catalog": db.name if db else None}, request=request))


async def not_public(datasette, request):
    from datasette.utils.asgi import NotFound

    raise NotFound("not found")


@hookimpl
def register_routes(datasette):
    routes = [(r"^/robots\.txt$", robots_txt), (r"^/-/add-a-source$", add_source_page)]
    if _config(datasette).get("public"):
        routes.append((public.PRIVATE_SPECIAL, not_public))
    return routes
