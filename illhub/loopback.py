"""A small loopback HTTP server to build on: the demo web (:mod:`illhub.demo`), the test
server (``tests/server.py``) and the benchmarks' server are made from it.

- It listens on one or more loopback addresses (127.0.0.1 by default; 127.0.0.2, … are
  other "hosts" to a crawler), each on a free port chosen by the system, never a fixed one.
  One thread accepts on every address; each connection is served by a thread of its own,
  HTTP/1.1 with keep-alive. It logs no requests.
- ``with LoopbackServer() as server:`` starts it and returns once it answers (a readiness
  check, :func:`wait_ready`, not a sleep); leaving the block stops it, sets
  :attr:`LoopbackServer.stopping` (handlers that wait, wait on it) and shuts the connections
  still open, so a handler still at work fails on its next read or write.
- A route maps a request target to a handler: ``"/feed.xml"`` matches with any query string,
  ``"/feed.xml?page=2"`` only that one and wins over the former. A handler gets the
  :class:`Request` and returns a reply ``(status, headers, body)``, or answers by hand
  (:meth:`Request.start` and :meth:`Request.write`) and returns None. A :class:`Page` is a
  fixed reply; requests no route takes go to the server's ``fallback`` (404 by default).
- Every request is kept in a hit log at the server (:class:`Hit`: path, query, headers,
  status, body bytes sent, start and end times), with the largest number of requests in
  flight at once, overall and per host name.
"""

from __future__ import annotations

import http.client
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit

#: What a handler returns: status, headers, body.
Reply = tuple[int, dict[str, str], bytes]
Handler = Callable[["Request"], "Reply | None"]

#: The target the readiness check asks for; answered 204, never routed nor logged.
READY_TARGET = "/__loopback_ready__"


@dataclass
class Hit:
    """One request as the server saw it."""

    method: str
    path: str
    query: str
    #: The host name the client asked for (the Host header without its port).
    host: str
    headers: Message
    started: float
    #: 1 for the first request to this path since the log was last cleared, 2 for the next, …
    nth: int = 1
    status: int | None = None
    body_bytes: int = 0
    finished: float | None = None

    @property
    def target(self) -> str:
        """The path with its query string, as requested."""
        return self.path + ("?" + self.query if self.query else "")

    @property
    def user_agent(self) -> str:
        return self.headers.get("User-Agent", "")

    @property
    def if_none_match(self) -> str | None:
        return self.headers.get("If-None-Match")

    @property
    def if_modified_since(self) -> str | None:
        return self.headers.get("If-Modified-Since")


class Request:
    """The request a handler answers, and the means to answer it by hand."""

    def __init__(self, exchange: _Exchange, hit: Hit):
        self._exchange = exchange
        self.hit = hit
        self.server: LoopbackServer = exchange.server.owner
        self.in_flight = True

    @property
    def method(self) -> str:
        return self.hit.method

    @property
    def path(self) -> str:
        return self.hit.path

    @property
    def target(self) -> str:
        return self.hit.target

    @property
    def headers(self) -> Message:
        return self.hit.headers

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.hit.query)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter."""
        return self.query.get(name, [default])[0]

    @property
    def connection(self) -> socket.socket:
        return self._exchange.connection

    def reply(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        """A whole response; Content-Length is the body's unless the headers give one."""
        headers = dict(headers or {})
        if status not in (204, 304) and not any(k.lower() == "content-length" for k in headers):
            headers["Content-Length"] = str(len(body))
        self.start(status, headers)
        self.write(body)

    def start(self, status: int, headers: dict[str, str] | None = None) -> None:
        """The status line and headers; the body follows with :meth:`write`."""
        self.hit.status = status
        self._exchange.send_response(status)
        for k, v in (headers or {}).items():
            self._exchange.send_header(k, v)
        self._exchange.end_headers()

    def write(self, data: bytes) -> None:
        """Send body bytes (none to a HEAD request), counted in the hit log once sent."""
        if data and self.method != "HEAD":
            self._exchange.wfile.write(data)
            self.hit.body_bytes += len(data)

    def close_after(self) -> None:
        """Close the connection once this request is done."""
        self._exchange.close_connection = True

    def stopping(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True as soon as the server is stopping."""
        return self.server.stopping.wait(seconds)

    def release_in_flight(self) -> None:
        """Stop counting this request as in flight (its client has given up on it, while the
        handler carries on: a slow answer, a long body nobody reads to the end)."""
        if self.in_flight:
            self.in_flight = False
            self.server._leave(self.hit)


def not_found(request: Request) -> Reply:
    return 404, {"Content-Type": "text/plain"}, b"not found"


@dataclass
class Page:
    """A fixed reply."""

    body: bytes = b""
    content_type: str | None = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def __call__(self, request: Request) -> Reply:
        content_type = {"Content-Type": self.content_type} if self.content_type else {}
        return self.status, {**content_type, **self.headers}, self.body


class _Exchange(BaseHTTPRequestHandler):
    """One connection: http.server parses each request, the owner's routes answer it."""

    server: _Listener
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: without TCP_NODELAY, Nagle's algorithm holds
    # the body back until the client's delayed ACK (40 ms a response on a kept-alive connection).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - a quiet server
        pass

    def setup(self) -> None:
        super().setup()
        self.server.owner._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._closed(self.connection)

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        if self.path == READY_TARGET:
            self.send_response(204)
            self.end_headers()
            return
        owner = self.server.owner
        parts = urlsplit(self.path)
        host = (urlsplit("//" + self.headers.get("Host", "")).hostname or self.server.server_address[0])
        hit = owner._arrive(Hit(self.command, parts.path, parts.query, host, self.headers, time.monotonic()))
        request = Request(self, hit)
        try:
            reply = owner.handler_for(self.path, parts.path)(request)
            if reply is not None:
                request.reply(*reply)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            hit.finished = time.monotonic()
            request.release_in_flight()

    do_HEAD = do_GET  # noqa: N815


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # a crawler opens many connections at once
    timeout = 0.5  # handle_request() after a spurious wake-up: give up rather than block
    owner: LoopbackServer

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client gone away is no error
            super().handle_error(request, client_address)


class LoopbackServer:
    """``with LoopbackServer("127.0.0.2") as server: server.route("/feed", Page(b"..."))``"""

    def __init__(self, *hosts: str, fallback: Handler = not_found):
        self.routes: dict[str, Handler] = {}
        self.fallback = fallback
        self.stopping = threading.Event()
        self.max_in_flight = 0
        self.max_in_flight_by_host: dict[str, int] = {}
        self._lock = threading.Lock()
        self._hits: list[Hit] = []
        self._nth: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._in_flight_total = 0
        self._connections: set[socket.socket] = set()
        self._listeners: list[_Listener] = []
        for host in hosts or ("127.0.0.1",):
            listener = _Listener((host, 0), _Exchange)
            listener.owner = self
            self._listeners.append(listener)
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"loopback {self.base}")

    # -- addresses -----------------------------------------------------------------------

    @property
    def hosts(self) -> list[str]:
        return [listener.server_address[0] for listener in self._listeners]

    @property
    def port(self) -> int:
        return self._listeners[0].server_address[1]

    @property
    def base(self) -> str:
        """``http://host:port`` of the first address."""
        return self.url("")

    def url(self, path: str = "/", host: str | None = None) -> str:
        for listener in self._listeners:
            address, port = listener.server_address[:2]
            if host in (None, address):
                return f"http://{address}:{port}{path}"
        raise KeyError(f"not served here: {host}")

    # -- routes --------------------------------------------------------------------------

    def route(self, target: str, handler: Handler) -> Self:
        """Answer ``target`` (a path, or a path with its query string) with ``handler``."""
        self.routes[target] = handler
        return self

    def handler_for(self, target: str, path: str) -> Handler:
        return self.routes.get(target) or self.routes.get(path) or self.fallback

    # -- the hit log ---------------------------------------------------------------------

    def hits(self, path: str | None = None) -> list[Hit]:
        """The requests so far (to ``path`` only, when given), in order of arrival."""
        with self._lock:
            return [h for h in self._hits if path is None or h.path == path]

    def paths(self) -> list[str]:
        return [h.path for h in self.hits()]

    def targets(self) -> list[str]:
        return [h.target for h in self.hits()]

    def count(self, prefix: str) -> int:
        """Requests whose target (path and query) starts with ``prefix``."""
        return sum(1 for t in self.targets() if t.startswith(prefix))

    def sent(self, path: str | None = None) -> int:
        """Body bytes sent (for ``path`` only, when given)."""
        return sum(h.body_bytes for h in self.hits(path))

    def clear(self) -> None:
        """Empty the hit log; request counts per path and the in-flight maxima start again."""
        with self._lock:
            self._hits.clear()
            self._nth.clear()
            self.max_in_flight = self._in_flight_total
            self.max_in_flight_by_host = {h: n for h, n in self._in_flight.items() if n}

    def _arrive(self, hit: Hit) -> Hit:
        with self._lock:
            hit.nth = self._nth[hit.path] = self._nth.get(hit.path, 0) + 1
            self._hits.append(hit)
            n = self._in_flight[hit.host] = self._in_flight.get(hit.host, 0) + 1
            self.max_in_flight_by_host[hit.host] = max(self.max_in_flight_by_host.get(hit.host, 0), n)
            self._in_flight_total += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight_total)
        return hit

    def _leave(self, hit: Hit) -> None:
        with self._lock:
            self._in_flight[hit.host] -= 1
            self._in_flight_total -= 1

    # -- running -------------------------------------------------------------------------

    def _opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            for listener in self._listeners:
                selector.register(listener, selectors.EVENT_READ, listener)
            selector.register(self._wake_r, selectors.EVENT_READ, None)
            while True:
                for key, _ in selector.select():
                    if key.data is None:
                        return
                    key.data.handle_request()

    def start(self) -> Self:
        self._thread.start()
        for host in self.hosts:
            wait_ready(self.url(READY_TARGET, host))
        return self

    def stop(self) -> None:
        """Stop accepting, wake every handler that waits on :attr:`stopping`, and close the
        connections still open (their handlers end on the next read or write)."""
        self.stopping.set()
        if self._thread.is_alive():
            self._wake_w.send(b"x")
            self._thread.join(10)
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for listener in self._listeners:
            listener.server_close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_ready(url: str, timeout: float = 10.0) -> None:
    """Ask for ``url`` until the server answers it, with any status (a readiness check, not a
    sleep); raise the last connection error after ``timeout`` seconds. No proxy is asked."""
    parts = urlsplit(url)
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    deadline = time.monotonic() + timeout
    while True:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=1)
        try:
            connection.request("GET", target, headers={"Connection": "close"})
            connection.getresponse().read()
            return
        except (OSError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
        finally:
            connection.close()
