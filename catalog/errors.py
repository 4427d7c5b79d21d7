"""Error pages without tracebacks in the log.

Datasette 0.65's default error handler prints every exception with Rich, locals included,
when Rich is installed (illhub's CLI uses it): a bad URL such as ``/db/resources.atom`` (a
table without Atom columns) logged some 500 lines per request. :func:`error_response` renders
the same page (or JSON) and logs one line: the method, the path, the status and the message.
An unexpected error (a 500: a bug) still logs its traceback, once, without locals.

Datasette awaits every ``handle_exception`` hook and uses the first response, so its default
handler would still print; :func:`replace_default_handler` unregisters it (illhub's plugin
does, when Datasette loads it), leaving this one.
"""

from __future__ import annotations

import logging
from typing import Any

from datasette.utils import add_cors_headers
from datasette.utils.asgi import Base400, Response
from datasette.views.base import DatasetteError
from markupsafe import Markup

logger = logging.getLogger("illhub.serve")


def log_line(method: str, path: str, status: int, message: str) -> None:
    text = " ".join(str(message).split())
    logger.warning("%s %s -> %d: %s", method, path, status, text[:300])


async def error_response(datasette: Any, request: Any, exception: BaseException) -> Response:
    """Datasette's error page for ``exception``, logged in one line (with a traceback only
    for an unexpected error)."""
    title = None
    info: dict[str, Any] = {}
    if isinstance(exception, Base400):
        status, message = exception.status, exception.args[0] if exception.args else str(exception)
    elif isinstance(exception, DatasetteError):
        status, info, message, title = exception.status, dict(exception.error_dict), exception.message, exception.title
        # Datasette raises its own deliberate errors about the request ("Cannot sort table by
        # x", "Invalid _next") with its default status, 500: they are the request's fault
        status = 400 if status >= 500 else status
        if exception.message_is_html:
            message = Markup(message)
    else:
        status, message = 500, str(exception)
    path = request.path if request is not None else "?"
    if status >= 500:
        logger.error("%s %s -> %d", getattr(request, "method", "?"), path, status, exc_info=exception)
    else:
        log_line(getattr(request, "method", "?"), path, status, str(message))
    info.update({"ok": False, "error": message, "status": status, "title": title})
    headers: dict[str, str] = {}
    if datasette.cors:
        add_cors_headers(headers)
    if path.split("?")[0].endswith(".json"):
        return Response.json(info, status=status, headers=headers)
    template = datasette.jinja_env.select_template([f"{status}.html", "error.html"])
    html = await template.render_async(dict(info, urls=datasette.urls, app_css_hash=datasette.app_css_hash(),
                                            menu_links=lambda: []))
    return Response.html(html, status=status, headers=headers)


def replace_default_handler() -> None:
    """Take Datasette's default exception handler out (this module's replaces it)."""
    import datasette.handle_exception as default
    from datasette.plugins import pm

    if pm.is_registered(default):
        pm.unregister(default)
