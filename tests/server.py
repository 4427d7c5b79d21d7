"""The tests' loopback web server, on :mod:`illhub.loopback`: routes a test sets (and changes
between harvests), API-like handlers, and faults on demand, with one hit log at the server.

    with StubServer() as srv:  # StubServer("127.0.0.2"), … run side by side as other hosts
        srv.add("/robots.txt", "User-agent: *\\nDisallow: /private/\\n", "text/plain")
        srv.add("/feed.rss", rss([...]), RSS, etag='"v1"')  # If-None-Match: "v1" gets a 304
        srv.add_file("/sitemap.xml.gz", FIXTURES / "sitemap.xml", "application/x-gzip", gzip=True)
        srv.route("/api/items.json", lambda req: (200, {"Content-Type": "application/json"}, b"[]"))
        srv.route("/flaky.rss", Sequence(status(503), ok(body)))  # the behaviours below
        ... harvest srv.base ...
        assert srv.count("/private/") == 0 and [h.status for h in srv.hits("/flaky.rss")] == [503, 200]

``{base}`` in a text body becomes the server's address. A route is a path (any query string)
or a path with its query string (that one only). The hit log (:meth:`StubServer.hits`) has each
request's path, query, headers, status, body bytes sent, start and end times; ``nth`` counts
the requests to a path since the last :meth:`StubServer.clear`, which :class:`Sequence` uses.

Behaviours (handlers for :meth:`StubServer.route`): :func:`ok`, :func:`status`,
:func:`redirect`, :func:`slow`, :class:`Sequence`, :func:`never_answer`, :func:`drip`,
:func:`reset_mid_body`, :func:`short_body`, :func:`stream`, :func:`gzip_bomb`.
"""

from __future__ import annotations

import gzip as gzip_module
import select
import socket
import struct
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from illhub.loopback import Handler, LoopbackServer, Page, Reply, Request

MiB = 1024 * 1024
RSS = "application/rss+xml"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


@dataclass
class Doc(Page):
    """A fixed reply, with validators and a hold if asked.

    Validators are compared verbatim, as a strict origin server would: a matching
    If-None-Match (or, when none is sent, a matching If-Modified-Since) gets a 304 with no
    body. With ``hold``, the headers and half the body are sent, the rest once the event is
    set (or the server stops)."""

    etag: str | None = None
    last_modified: str | None = None
    hold: threading.Event | None = None

    def __call__(self, request: Request) -> Reply | None:
        status, headers, body = super().__call__(request)
        if self.etag:
            headers["ETag"] = self.etag
        if self.last_modified:
            headers["Last-Modified"] = self.last_modified
        inm, ims = request.hit.if_none_match, request.hit.if_modified_since
        if status == 200 and ((self.etag and inm == self.etag)
                              or (not inm and self.last_modified and ims == self.last_modified)):
            return 304, {k: v for k, v in headers.items() if k != "Content-Type"}, b""
        if self.hold is None or status != 200:
            return status, headers, body
        request.start(status, {**headers, "Content-Length": str(len(body))})
        request.write(body[: len(body) // 2])
        self.hold.wait(30)
        request.write(body[len(body) // 2:])
        return None


class StubServer(LoopbackServer):
    """The test server: ``with StubServer() as srv: srv.add(...)``; see the module docstring."""

    def add(self, target: str, body: str | bytes = b"", content_type: str | None = HTML, *, status: int = 200,
            headers: dict[str, str] | None = None, gzip: bool = False, etag: str | None = None,
            last_modified: str | None = None, hold: threading.Event | None = None) -> Doc:
        """Serve a fixed reply at ``target`` (replacing what was there)."""
        data = body.replace("{base}", self.base).encode("utf-8") if isinstance(body, str) else body
        if gzip:
            data = gzip_module.compress(data, mtime=0)
        doc = Doc(data, content_type, status, dict(headers or {}), etag, last_modified, hold)
        self.route(target, doc)
        return doc

    def add_file(self, target: str, file: Path, content_type: str | None = HTML, **kw: object) -> Doc:
        """Serve a text file (``{base}`` filled in)."""
        return self.add(target, file.read_text(encoding="utf-8"), content_type, **kw)  # type: ignore[arg-type]

    def stop(self) -> None:
        for handler in list(self.routes.values()):
            if isinstance(handler, Doc) and handler.hold is not None:
                handler.hold.set()
        super().stop()


# -- behaviours ------------------------------------------------------------------------------


def ok(body: bytes | str, content_type: str = RSS, headers: dict[str, str] | None = None) -> Doc:
    return Doc(body.encode("utf-8") if isinstance(body, str) else body, content_type, 200, dict(headers or {}))


def status(code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Doc:
    return Doc(body, TEXT, code, dict(headers or {}))


def redirect(location: str, code: int = 302) -> Doc:
    return Doc(b"", "text/plain", code, {"Location": location})


def slow(behaviour: Handler, seconds: float) -> Handler:
    """Think for ``seconds`` before answering (to make concurrent requests overlap)."""

    def answer(request: Request) -> Reply | None:
        request.stopping(seconds)
        return behaviour(request)

    return answer


class Sequence:
    """The n-th request to a path gets the n-th behaviour; the last one repeats."""

    def __init__(self, *behaviours: Handler):
        self.behaviours = behaviours

    def __call__(self, request: Request) -> Reply | None:
        return self.behaviours[min(request.hit.nth, len(self.behaviours)) - 1](request)


def never_answer() -> Handler:
    """Read the request, then say nothing until the client gives up (or the server stops)."""

    def answer(request: Request) -> None:
        request.close_after()
        while not request.server.stopping.is_set():
            readable, _, _ = select.select([request.connection], [], [], 0.05)
            if readable and not request.connection.recv(1, socket.MSG_PEEK):
                return  # the client closed its end: this request is no longer in flight

    return answer


def drip(interval: float = 0.25, length: int = 4096, content_type: str = RSS) -> Handler:
    """Headers at once, then one byte every ``interval`` seconds (of ``length``): an idle
    timeout never fires, only a deadline on the whole download stops it."""

    def answer(request: Request) -> None:
        request.start(200, {"Content-Type": content_type, "Content-Length": str(length)})
        for _ in range(length):
            if request.stopping(interval):
                break
            request.write(b" ")
        request.close_after()

    return answer


def reset_mid_body(body: bytes, content_type: str = RSS) -> Handler:
    """Announce the whole body, send half of it, then reset the connection (RST)."""

    def answer(request: Request) -> None:
        request.start(200, {"Content-Type": content_type, "Content-Length": str(len(body))})
        request.write(body[: len(body) // 2])
        request.stopping(0.05)
        request.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        request.connection.close()
        request.close_after()

    return answer


def short_body(body: bytes, content_type: str = RSS) -> Handler:
    """Content-Length promises twice the body; the server sends the body and closes."""

    def answer(request: Request) -> None:
        request.start(200, {"Content-Type": content_type, "Content-Length": str(len(body) * 2),
                            "Connection": "close"})
        request.write(body)
        request.close_after()

    return answer


def _chunks(total: int, chunk: bytes) -> Iterable[bytes]:
    sent = 0
    while sent < total:
        piece = chunk[: total - sent]
        sent += len(piece)
        yield piece


FEED_START = b'<?xml version="1.0"?><rss version="2.0"><channel><title>'


def stream(total: int, *, content_length: bool = True, content_type: str = RSS, start: bytes = FEED_START) -> Handler:
    """``total`` bytes (a never-ending feed by default), generated on the fly (never stored);
    without ``content_length`` the body runs until the connection closes. To HEAD: headers only."""
    filler = b"x" * (256 * 1024)

    def answer(request: Request) -> None:
        headers = {"Content-Type": content_type}
        headers.update({"Content-Length": str(total)} if content_length else {"Connection": "close"})
        request.start(200, headers)
        request.close_after()
        if request.method == "HEAD":
            return
        request.write(start)
        for piece in _chunks(total - len(start), filler):
            request.write(piece)

    return answer


_BOMBS: dict[int, bytes] = {}
_BOMBS_LOCK = threading.Lock()


def _bomb(expanded: int) -> bytes:
    """``expanded`` zero bytes inside an XML start, gzip-compressed in memory, 1 MiB at a
    time (about 1 KiB per MiB; 512 MiB take half a second), cached for the session."""
    with _BOMBS_LOCK:
        if expanded not in _BOMBS:
            comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip container
            out = [comp.compress(FEED_START)]
            zero = bytes(MiB)
            out += [comp.compress(piece) for piece in _chunks(expanded, zero)]
            out.append(comp.flush())
            _BOMBS[expanded] = b"".join(out)
        return _BOMBS[expanded]


def gzip_bomb(expanded: int, content_type: str = RSS) -> Doc:
    """A small gzip body (Content-Encoding: gzip) that expands to ``expanded`` bytes."""
    return Doc(_bomb(expanded), content_type, 200, {"Content-Encoding": "gzip"})


# -- content for the feed tests --------------------------------------------------------------


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
