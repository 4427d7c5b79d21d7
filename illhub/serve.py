"""``illhub serve``: the catalog's Datasette app (:mod:`catalog.app`) run by uvicorn in this
process, or (``--workers N``) in N worker processes under uvicorn's own supervisor
(:mod:`illhub.serve_worker` builds each worker's app)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from catalog.app import make_datasette

#: On SIGTERM or Ctrl-C, how long requests still running (a CSV stream, say) may go on
#: before they are cancelled and the server stops (seconds).
GRACEFUL_SHUTDOWN = 5
#: Most worker processes ``--workers`` accepts.
MAX_WORKERS = 64


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (already in use, an unknown address), or None.

    Checked before anything says "serving": binding the way uvicorn does (SO_REUSEADDR), then
    letting go at once."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        return f"cannot listen on {host}: {e.strerror} (give an address of this machine to --host)"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return (f"port {port} on {host} is already in use (another 'illhub serve' or 'make demo', or "
                        f"another program): stop it, or choose another port with --port {port + 1 if port < 65535 else 8001}")
            if e.errno == errno.EACCES:
                return f"not allowed to listen on port {port} (ports below 1024 need root): choose --port 8001"
            return f"cannot listen on {host}:{port}: {e.strerror}"
    return None


def serve_log() -> logging.Logger:
    """The server's log (logger ``illhub.serve``): errors and refused requests, one line each
    on stderr. Set up in the serving process and in each worker."""
    log = logging.getLogger("illhub.serve")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    return log


def serve_datasette(db_path: Path, *, host: str = "127.0.0.1", port: int = 8001, workers: int = 1,
                    **options: Any) -> int:
    """Serve the catalog in this process (uvicorn), as ``datasette serve`` would; with
    ``workers`` > 1, in that many worker processes (:func:`serve_workers`).

    ``options`` are those of :func:`datasette_kwargs`. Errors and refused requests are
    logged one line each on stderr (logger ``illhub.serve``).
    """
    if workers > 1:
        return serve_workers(db_path, host=host, port=port, workers=workers, **options)
    import asyncio

    import uvicorn

    serve_log()
    ds = make_datasette(db_path, **options)
    asyncio.run(ds.invoke_startup())
    config = uvicorn.Config(ds.app(), host=host, port=port, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN)
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        return 0
    return 0


def serve_workers(db_path: Path, *, host: str, port: int, workers: int, **options: Any) -> int:
    """Serve the catalog in ``workers`` processes sharing one listening socket, under uvicorn's
    supervisor (a worker that dies is replaced). Each worker builds its own Datasette from the
    same options (:func:`illhub.serve_worker.app`, which reads them from the environment) and
    so keeps its own facet-count cache and warmer.

    SIGTERM or Ctrl-C stops every worker (each within :data:`GRACEFUL_SHUTDOWN`) before this
    returns 0; 1 when a worker could not start (it says why on stderr)."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from illhub.serve_worker import OPTIONS_ENV

    serve_log()
    os.environ[OPTIONS_ENV] = json.dumps({"db_path": str(db_path), "workers": workers, "options": options})
    config = uvicorn.Config("illhub.serve_worker:app", factory=True, host=host, port=port, workers=workers,
                            log_level="warning", lifespan="on", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN)
    sock = config.bind_socket()
    supervisor = Multiprocess(config, sockets=[sock])
    try:
        supervisor.run()
    finally:
        sock.close()
    return 1 if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes) else 0
