"""One worker of ``illhub serve --workers N``: uvicorn's supervisor (:func:`illhub.serve.serve_workers`)
starts N processes, and each calls :func:`app` (an app factory) to build its own Datasette
from the options the serving command left in the environment (:data:`OPTIONS_ENV`).

Each worker runs Datasette's startup and starts its facet-count warmer as soon as it starts
(the ASGI lifespan's startup, :func:`with_startup`), so every worker precomputes its own
counts without waiting for its first request; ``/-/facet-cache.json`` says which worker
answered (``pid``) and how many there are (``workers``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

#: The environment variable holding the serving options, as JSON: ``{"db_path": ...,
#: "workers": N, "options": {...}}`` (the keyword arguments of :func:`catalog.app.datasette_kwargs`).
OPTIONS_ENV = "ILLHUB_SERVE_OPTIONS"


class _StartupFailed(Exception):
    pass


def with_startup(ds, app):
    """``app`` (Datasette's ASGI app), running Datasette's startup and starting the facet
    warmer when the server's lifespan starts, in the worker's own event loop. A startup that
    fails is reported to uvicorn in one line (``lifespan.startup.failed``): the worker exits as
    one that could not start."""
    from catalog import facetcache

    async def asgi(scope, receive, send):
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)

        async def receive_after_startup():
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await ds.invoke_startup()
                except Exception as e:  # noqa: BLE001 - said in one line below
                    raise _StartupFailed(f"{type(e).__name__}: {e}") from e
                facetcache.warmer_for(ds).ensure_started(ds)
            return message

        try:
            return await app(scope, receive_after_startup, send)
        except _StartupFailed as e:
            await send({"type": "lifespan.startup.failed", "message": f"worker {os.getpid()} could not start: {e}"})

    return asgi


def _die_with_parent() -> None:
    """Ask Linux to stop this worker if the supervisor itself dies (``kill -9``), so that no
    worker is left serving without it. Elsewhere, nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))
    except (OSError, AttributeError):
        pass


def app() -> Any:
    """The ASGI app of one worker (uvicorn calls it in the worker: ``factory=True``)."""
    from uvicorn.config import STARTUP_FAILURE

    from catalog.app import make_datasette
    from illhub.serve import serve_log

    _die_with_parent()
    log = serve_log()
    try:
        spec: dict[str, Any] = json.loads(os.environ[OPTIONS_ENV])
        ds = make_datasette(Path(spec["db_path"]), **spec["options"])
        asgi = ds.app()
    except Exception as e:  # noqa: BLE001 - said in one line; the supervisor then stops them all
        log.error("worker %s could not start: %s: %s", os.getpid(), type(e).__name__, e)
        sys.exit(STARTUP_FAILURE)
    ds._illhub_workers = spec["workers"]
    return with_startup(ds, asgi)
