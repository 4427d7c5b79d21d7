"""A loopback HTTP server that misbehaves on demand and counts what it receives.

Each path is given a *behaviour* (a callable that answers one request: a normal
response, a status sequence, silence, a byte drip, a reset, a short body, a redirect,
a stream of hundreds of MiB or a gzip bomb generated on the fly, …). Every request is
recorded as a :class:`Hit` (path, User-Agent, Host header, arrival and end times), and
the server tracks the largest number of requests in flight at once.

Several servers can run side by side on different loopback addresses (127.0.0.2, …):
Scrapy keys its per-host slot on the host name, so each address is a separate "host".
"""

from __future__ import annotations

import gzip
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Behaviour = Callable[["FaultHandler"], None]

MiB = 1024 * 1024


@dataclass
class Hit:
    path: str
    user_agent: str
    host: str
    started: float
    finished: float | None = None
    status: int | None = None


class FaultHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass

    # -- helpers for behaviours ----------------------------------------------------

    def send(self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8",
             headers: dict[str, str] | None = None) -> None:
        self.hit.status = status
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def stopping(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True if the server is shutting down."""
        return self.server.fault.stopping.wait(seconds)

    def count_sent(self, n: int) -> None:
        with self.server.fault.lock:
            self.server.fault.sent[self.route_path] = self.server.fault.sent.get(self.route_path, 0) + n

    # -- dispatch ------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        fault = self.server.fault
        self.route_path = urlsplit(self.path).path
        self.hit = Hit(self.path, self.headers.get("User-Agent", ""), self.headers.get("Host", ""), time.monotonic())
        with fault.lock:
            fault.hits.append(self.hit)
            fault.inflight += 1
            fault.max_inflight = max(fault.max_inflight, fault.inflight)
            n = fault.counts[self.route_path] = fault.counts.get(self.route_path, 0) + 1
        try:
            behaviour = fault.routes.get(self.path) or fault.routes.get(self.route_path)
            if behaviour is None:
                behaviour = status(404, b"not found")
            if isinstance(behaviour, Sequence):
                behaviour = behaviour.pick(n)
            behaviour(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with fault.lock:
                fault.inflight -= 1
            self.hit.finished = time.monotonic()

    do_HEAD = do_GET


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    fault: FaultServer


class FaultServer:
    """``with FaultServer("127.0.0.2") as s: s.route("/feed", ok(body)) ...``"""

    def __init__(self, host: str = "127.0.0.1"):
        self.routes: dict[str, Behaviour | Sequence] = {}
        self.hits: list[Hit] = []
        self.counts: dict[str, int] = {}
        self.sent: dict[str, int] = {}
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0
        self.stopping = threading.Event()
        self.httpd = _Server((host, 0), FaultHandler)
        self.httpd.fault = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, behaviour: Behaviour | Sequence) -> FaultServer:
        self.routes[path] = behaviour
        return self

    def reset_counters(self) -> None:
        with self.lock:
            self.hits.clear()
            self.counts.clear()
            self.sent.clear()
            self.max_inflight = 0

    def hits_for(self, path: str) -> list[Hit]:
        return [h for h in self.hits if urlsplit(h.path).path == path]

    def paths(self) -> list[str]:
        return [urlsplit(h.path).path for h in self.hits]

    def start(self) -> FaultServer:
        self.thread.start()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Readiness check: the listening socket accepts a connection and answers."""
        self.route("/__ready__", status(204))
        deadline = time.monotonic() + timeout
        host, port = self.httpd.server_address[:2]
        while True:
            try:
                with socket.create_connection((host, port), timeout=1) as s:
                    s.sendall(b"GET /__ready__ HTTP/1.1\r\nHost: ready\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 204"):
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        del self.routes["/__ready__"]
        self.reset_counters()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- behaviours --------------------------------------------------------------------


def ok(body: bytes | str, content_type: str = "application/rss+xml",
       headers: dict[str, str] | None = None) -> Behaviour:
    data = body.encode("utf-8") if isinstance(body, str) else body

    def answer(h: FaultHandler) -> None:
        h.send(200, data, content_type, headers)

    return answer


def status(code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Behaviour:
    def answer(h: FaultHandler) -> None:
        h.send(code, body, "text/plain; charset=utf-8", headers)

    return answer


def slow(behaviour: Behaviour, seconds: float) -> Behaviour:
    """Think for ``seconds`` before answering (to make concurrent requests overlap)."""

    def answer(h: FaultHandler) -> None:
        h.stopping(seconds)
        behaviour(h)

    return answer


class Sequence:
    """The n-th request to a path gets the n-th behaviour; the last one repeats."""

    def __init__(self, *behaviours: Behaviour):
        self.behaviours = behaviours

    def pick(self, n: int) -> Behaviour:
        return self.behaviours[min(n, len(self.behaviours)) - 1]


def redirect(location: str, code: int = 302) -> Behaviour:
    def answer(h: FaultHandler) -> None:
        h.send(code, b"", "text/plain", {"Location": location})

    return answer


def never_answer() -> Behaviour:
    """Read the request, then say nothing until the client gives up (or the server stops)."""

    def answer(h: FaultHandler) -> None:
        h.close_connection = True
        while not h.server.fault.stopping.is_set():
            readable, _, _ = select.select([h.connection], [], [], 0.05)
            if readable and not h.connection.recv(1, socket.MSG_PEEK):
                return  # the client closed its end: this request is no longer in flight

    return answer


def drip(interval: float = 0.25, length: int = 4096, content_type: str = "application/rss+xml") -> Behaviour:
    """Headers at once, then one byte every ``interval`` seconds (of ``length``): an idle
    timeout never fires, only a deadline on the whole download stops it."""

    def answer(h: FaultHandler) -> None:
        h.hit.status = 200
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(length))
        h.end_headers()
        h.wfile.flush()
        for _ in range(length):
            if h.stopping(interval):
                break
            h.wfile.write(b" ")
            h.wfile.flush()
            h.count_sent(1)
        h.close_connection = True

    return answer


def reset_mid_body(body: bytes, content_type: str = "application/rss+xml") -> Behaviour:
    """Announce the whole body, send half of it, then reset the connection (RST)."""

    def answer(h: FaultHandler) -> None:
        h.hit.status = 200
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[: len(body) // 2])
        h.wfile.flush()
        h.stopping(0.05)
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()
        h.close_connection = True

    return answer


def short_body(body: bytes, content_type: str = "application/rss+xml") -> Behaviour:
    """Content-Length promises twice the body; the server sends the body and closes."""

    def answer(h: FaultHandler) -> None:
        h.hit.status = 200
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body) * 2))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()
        h.close_connection = True

    return answer


def _chunks(total: int, chunk: bytes) -> Iterable[bytes]:
    sent = 0
    while sent < total:
        piece = chunk[: total - sent]
        sent += len(piece)
        yield piece


def stream(total: int, *, content_length: bool = True, content_type: str = "application/rss+xml") -> Behaviour:
    """``total`` bytes of a never-ending feed, generated on the fly (never stored)."""
    head = b'<?xml version="1.0"?><rss version="2.0"><channel><title>'
    filler = b"x" * (256 * 1024)

    def answer(h: FaultHandler) -> None:
        h.hit.status = 200
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        if content_length:
            h.send_header("Content-Length", str(total))
        else:
            h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(head)
        h.count_sent(len(head))
        for piece in _chunks(total - len(head), filler):
            h.wfile.write(piece)
            h.count_sent(len(piece))
        h.close_connection = True

    return answer


_BOMBS: dict[int, bytes] = {}
_BOMBS_LOCK = threading.Lock()


def _bomb(expanded: int) -> bytes:
    """``expanded`` zero bytes inside an XML start, gzip-compressed in memory, 1 MiB at a
    time (about 1 KiB per MiB; 512 MiB take half a second), cached for the session."""
    with _BOMBS_LOCK:
        if expanded not in _BOMBS:
            comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip container
            out = [comp.compress(b'<?xml version="1.0"?><rss version="2.0"><channel><title>')]
            zero = bytes(MiB)
            out += [comp.compress(piece) for piece in _chunks(expanded, zero)]
            out.append(comp.flush())
            _BOMBS[expanded] = b"".join(out)
        return _BOMBS[expanded]


def gzip_bomb(expanded: int, content_type: str = "application/rss+xml") -> Behaviour:
    """A small gzip body (Content-Encoding: gzip) that expands to ``expanded`` bytes."""
    body = _bomb(expanded)

    def answer(h: FaultHandler) -> None:
        h.send(200, body, content_type, {"Content-Encoding": "gzip"})
        h.count_sent(len(body))

    return answer


def gzipped(body: bytes) -> bytes:
    return gzip.compress(body)
