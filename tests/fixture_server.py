"""A scriptable loopback HTTP server for harvest tests: each path has a route whose body,
validators, status and headers a test can change between harvests; every request is
counted with the bytes of body sent and the conditional headers received."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from illhub.demo import wait_ready


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/rss+xml"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: When set, the response headers are sent and the body is held back until the event is set.
    hold: threading.Event | None = None


@dataclass
class Hit:
    path: str
    status: int
    body_bytes: int
    if_none_match: str | None
    if_modified_since: str | None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        with self.server.lock:
            route = self.server.routes.get(path)
        inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
        if route is None:
            status, body, headers = 404, b"not found", {"Content-Type": "text/plain"}
        else:
            headers = {"Content-Type": route.content_type, **route.headers}
            if route.etag:
                headers["ETag"] = route.etag
            if route.last_modified:
                headers["Last-Modified"] = route.last_modified
            status, body = route.status, route.body
            # Validators are compared verbatim, as a strict origin server would.
            if status == 200 and ((route.etag and inm == route.etag)
                                  or (not inm and route.last_modified and ims == route.last_modified)):
                status, body = 304, b""
        self.send_response(status)
        for k, v in headers.items():
            if status == 304 and k == "Content-Type":
                continue
            self.send_header(k, v)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with self.server.lock:
            self.server.hits.append(Hit(path, status, len(body), inm, ims))
        if route is not None and route.hold is not None and status == 200:
            half = len(body) // 2
            self.wfile.write(body[:half])
            self.wfile.flush()
            route.hold.wait(30)
            body = body[half:]
        if body:
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Route]
    hits: list[Hit]
    lock: threading.Lock


class FixtureServer:
    def __init__(self) -> None:
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.routes = {"/robots.txt": Route(b"User-agent: *\nAllow: /\n", "text/plain")}
        self.httpd.hits = []
        self.httpd.lock = threading.Lock()
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, **kw: object) -> Route:
        with self.httpd.lock:
            r = self.httpd.routes.setdefault(path, Route())
            for k, v in kw.items():
                setattr(r, k, v)
            return r

    def hits(self, path: str | None = None) -> list[Hit]:
        with self.httpd.lock:
            return [h for h in self.httpd.hits if path is None or h.path == path]

    def clear(self) -> None:
        with self.httpd.lock:
            self.httpd.hits.clear()

    def __enter__(self) -> FixtureServer:
        self.thread.start()
        wait_ready(self.base + "/robots.txt")
        self.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        for r in self.httpd.routes.values():
            if r.hold is not None:
                r.hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def rss(items: list[tuple[str, str, str]], base: str = "https://ill.example.org") -> bytes:
    """An RSS 2.0 feed of (slug, title, RFC 822 date) items."""
    entries = "".join(
        f"<item><title>{title}</title><link>{base}/{slug}/</link><guid>{base}/{slug}/</guid>"
        f"<pubDate>{date}</pubDate><description>About {title}.</description></item>"
        for slug, title, date in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Fixture feed</title>'
        f"<link>{base}/</link><description>fixture</description>{entries}</channel></rss>"
    ).encode()


def registry_yaml(base: str, sources: list[tuple[str, str]]) -> str:
    """A registry of feed sources: (id, path)."""
    lines = ["defaults:", "  schedule: nightly", "sources:"]
    for sid, path in sources:
        lines += [f"  - id: {sid}", f"    name: Fixture {sid}", "    kind: feed", f'    url: "{base}{path}"',
                  "    organization: Fixture Library"]
    return "\n".join(lines) + "\n"
