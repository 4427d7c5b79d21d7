"""illhub.loopback, the server the demo, the tests' StubServer and the benchmarks are built on:
routes, the hit log, requests in flight, readiness and stopping."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time

import pytest

from illhub.loopback import LoopbackServer, Page, wait_ready


def get(server: LoopbackServer, target: str, method: str = "GET", host: str | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    address = host or server.hosts[0]
    conn = http.client.HTTPConnection(address, int(server.url("", address).rsplit(":", 1)[1]), timeout=5)
    try:
        conn.request(method, target, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def get_if_answered(server: LoopbackServer, target: str) -> None:
    with contextlib.suppress(OSError, http.client.HTTPException):
        get(server, target)


def test_routes_with_and_without_query_and_the_hit_log():
    with LoopbackServer() as server:
        server.route("/feed.xml", Page(b"<rss/>", "application/rss+xml"))
        server.route("/feed.xml?page=2", Page(b"<rss>2</rss>", "application/rss+xml"))
        server.route("/api", lambda request: (201, {"X-Page": request.arg("page", "1")}, request.method.encode()))
        assert server.hits() == []  # the readiness check is not logged
        assert get(server, "/feed.xml?page=1")[2] == b"<rss/>"
        assert get(server, "/feed.xml?page=2")[2] == b"<rss>2</rss>"
        status, headers, body = get(server, "/api?page=3", headers={"User-Agent": "probe/1"})
        assert (status, headers["X-Page"], body) == (201, "3", b"GET")
        status, headers, body = get(server, "/feed.xml", method="HEAD")
        assert (status, headers["Content-Length"], body) == (200, "6", b"")
        assert get(server, "/nothing")[0] == 404
        assert server.targets() == ["/feed.xml?page=1", "/feed.xml?page=2", "/api?page=3", "/feed.xml", "/nothing"]
        assert server.paths().count("/feed.xml") == 3 and server.count("/feed.xml?") == 2
        hits = server.hits("/feed.xml")
        assert [h.nth for h in hits] == [1, 2, 3] and [h.method for h in hits] == ["GET", "GET", "HEAD"]
        assert [h.body_bytes for h in hits] == [6, 12, 0] and server.sent("/feed.xml") == 18
        [api] = server.hits("/api")
        assert (api.user_agent, api.status, api.host, api.query) == ("probe/1", 201, "127.0.0.1", "page=3")
        assert api.started <= api.finished
        server.clear()
        assert server.hits() == []
        get(server, "/feed.xml")
        assert [h.nth for h in server.hits()] == [1]


def test_requests_in_flight_at_once_overall_and_per_host():
    release, released = threading.Event(), threading.Event()

    def held(request):
        release.wait(5)
        return 200, {}, b"ok"

    def let_go(request):
        request.release_in_flight()  # the client gave up on it: no longer counted
        released.set()
        release.wait(5)
        return 200, {}, b"late"

    with LoopbackServer("127.0.0.2", "127.0.0.3") as server:
        server.route("/held", held).route("/gone", let_go)
        clients = [threading.Thread(target=get, args=(server, path, "GET", host))
                   for path, host in [("/gone", "127.0.0.3"), ("/held", "127.0.0.2"), ("/held", "127.0.0.3")]]
        clients[0].start()
        assert released.wait(5)
        for c in clients[1:]:
            c.start()
        deadline = time.monotonic() + 5
        while len(server.hits()) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
        for c in clients:
            c.join(5)
    assert sorted(h.host for h in server.hits()) == ["127.0.0.2", "127.0.0.3", "127.0.0.3"]
    assert server.max_in_flight_by_host == {"127.0.0.2": 1, "127.0.0.3": 1} and server.max_in_flight == 2


def test_stop_wakes_waiting_handlers_and_closes_open_connections():
    server = LoopbackServer().start()
    waited = []
    server.route("/wait", lambda request: waited.append(request.stopping(30)) or (200, {}, b"stopped"))
    server.route("/ok", Page(b"ok"))
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    idle.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while not answer.endswith(b"\r\n\r\nok"):  # headers and body may come in two reads
        answer += idle.recv(4096) or b"(closed)"
        assert not answer.endswith(b"(closed)"), answer  # answered, and kept alive
    waiting = threading.Thread(target=get_if_answered, args=(server, "/wait"))
    waiting.start()
    deadline = time.monotonic() + 5
    while len(server.hits()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    t = time.monotonic()
    server.stop()
    waiting.join(5)
    assert waited == [True] and time.monotonic() - t < 5
    assert idle.recv(4096) == b""  # the kept-alive connection was shut
    idle.close()
    with socket.socket() as s, pytest.raises(OSError):
        s.connect(("127.0.0.1", server.port))


def test_wait_ready_gives_up_after_its_timeout():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.monotonic()
    with pytest.raises(OSError):
        wait_ready(f"http://127.0.0.1:{port}/", timeout=0.3)
    assert time.monotonic() - t < 3
