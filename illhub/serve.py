"""``illhub serve``: the catalog's Datasette app (:mod:`catalog.app`) run by uvicorn in this process."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from catalog.app import make_datasette

#: On SIGTERM or Ctrl-C, how long requests still running (a CSV stream, say) may go on
#: before they are cancelled and the server stops (seconds).
GRACEFUL_SHUTDOWN = 5


def serve_datasette(db_path: Path, *, host: str = "127.0.0.1", port: int = 8001, **options: Any) -> int:
    """Serve the catalog in this process (uvicorn), as ``datasette serve`` would.

    ``options`` are those of :func:`datasette_kwargs`. Errors and refused requests are
    logged one line each on stderr (logger ``illhub.serve``).
    """
    import asyncio

    import uvicorn

    log = logging.getLogger("illhub.serve")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    ds = make_datasette(db_path, **options)
    asyncio.run(ds.invoke_startup())
    config = uvicorn.Config(ds.app(), host=host, port=port, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN)
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        return 0
    return 0
