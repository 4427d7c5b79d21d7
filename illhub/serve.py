"""``illhub serve``: the catalog's Datasette app (:mod:`catalog.app`) run by uvicorn in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from catalog.app import make_datasette


def serve_datasette(db_path: Path, *, host: str = "127.0.0.1", port: int = 8001, **options: Any) -> int:
    """Serve the catalog in this process (uvicorn), as ``datasette serve`` would.

    ``options`` are those of :func:`datasette_kwargs`.
    """
    import asyncio

    import uvicorn

    ds = make_datasette(db_path, **options)
    asyncio.run(ds.invoke_startup())
    config = uvicorn.Config(ds.app(), host=host, port=port, log_level="warning", lifespan="on")
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        return 0
    return 0
