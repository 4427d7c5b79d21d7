"""A small loopback HTTP server for tests: fixed routes (with or without a query string),
callables for API-like routes, a hit log kept at the server, and a readiness check.

    with RouteServer() as srv:
        srv.add("/robots.txt", "User-agent: *\\nDisallow: /private/\\n", "text/plain")
        srv.add_file("/sitemap.xml.gz", FIXTURES / "sitemap.xml", gzip=True)  # {base} filled in
        srv.add_handler("/api/items.json", lambda req: (200, {"Content-Type": "application/json"}, b"[]"))
        ... harvest srv.base ...
        assert srv.count("/private/") == 0
"""

from __future__ import annotations

import gzip as gzip_module
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from illhub.demo import wait_ready


@dataclass
class Req:
    path: str
    query: dict[str, list[str]]
    raw: str
    headers: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, [default])[0]


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Route:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    handler: Callable[[Req], Reply] | None = None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        parts = urlsplit(self.path)
        with self.server.lock:
            self.server.hits.append(self.path)
        req = Req(parts.path, parse_qs(parts.query), self.path, dict(self.headers.items()))
        route = self.server.routes.get(self.path) or self.server.routes.get(parts.path)
        if route is None:
            status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
        elif route.handler is not None:
            status, headers, body = route.handler(req)
        else:
            status, headers, body = route.status, route.headers, route.body
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Route]
    hits: list[str]
    lock: threading.Lock


class RouteServer:
    """Serve routes on 127.0.0.1 on a free port; ``{base}`` in bodies becomes the server's address."""

    def __init__(self) -> None:
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.routes = {}
        self.httpd.hits = []
        self.httpd.lock = threading.Lock()
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.add("/__ready", "ok", "text/plain")

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def hits(self) -> list[str]:
        with self.httpd.lock:
            return list(self.httpd.hits)

    def count(self, prefix: str) -> int:
        """Requests whose path (with query) starts with ``prefix``."""
        return sum(1 for h in self.hits if h.startswith(prefix))

    def page_hits(self) -> list[str]:
        """Every request except robots.txt."""
        return [h for h in self.hits if h != "/robots.txt"]

    def clear(self) -> None:
        with self.httpd.lock:
            self.httpd.hits.clear()

    def add(self, path: str, body: str | bytes, content_type: str = "text/html; charset=utf-8", *,
            status: int = 200, headers: dict[str, str] | None = None, gzip: bool = False) -> None:
        data = body.replace("{base}", self.base).encode("utf-8") if isinstance(body, str) else body
        if gzip:
            data = gzip_module.compress(data, mtime=0)
        self.httpd.routes[path] = Route(status, {"Content-Type": content_type, **(headers or {})}, data)

    def add_file(self, path: str, file: Path, content_type: str = "text/html; charset=utf-8", **kw) -> None:
        self.add(path, file.read_text(encoding="utf-8"), content_type, **kw)

    def add_handler(self, path: str, handler: Callable[[Req], Reply]) -> None:
        self.httpd.routes[path] = Route(handler=handler)

    def start(self) -> RouteServer:
        self.thread.start()
        wait_ready(self.base + "/__ready")
        self.clear()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> RouteServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
