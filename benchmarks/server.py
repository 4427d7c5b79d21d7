"""A fast loopback HTTP server for benchmarks, on many addresses (127.0.0.x) at once.

asyncio, in a background thread of the benchmark process (the harvester under test runs as a
subprocess, so the two do not share a GIL). Content is generated in memory by a callable;
every hit is recorded with its host, path, time and how many requests to that host were in
flight, so politeness can be measured at the server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

Handler = Callable[[str, str, dict[str, str]], tuple[int, dict[str, str], bytes]]


@dataclass
class Hit:
    host: str
    path: str
    t: float
    in_flight: int
    bytes: int = 0
    user_agent: str = ""


@dataclass
class Stats:
    hits: list[Hit] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def by_host(self) -> dict[str, list[Hit]]:
        out: dict[str, list[Hit]] = defaultdict(list)
        for h in self.hits:
            out[h.host].append(h)
        return out


class BenchServer:
    """Serve ``handler(host, path, headers) -> (status, headers, body)`` on each address."""

    def __init__(self, handler: Handler, addresses: list[str], latency: float = 0.0):
        self.handler = handler
        self.addresses = addresses
        self.latency = latency
        self.stats = Stats()
        self.ports: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._servers: list[asyncio.base_events.Server] = []

    def url(self, address: str, path: str = "/") -> str:
        return f"http://{address}:{self.ports[address]}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                headers: dict[str, str] = {}
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = line.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                self.stats.in_flight[address] += 1
                n = self.stats.in_flight[address]
                self.stats.max_in_flight[address] = max(self.stats.max_in_flight[address], n)
                hit = Hit(address, path, time.monotonic(), n, user_agent=headers.get("user-agent", ""))
                self.stats.hits.append(hit)
                try:
                    if self.latency:
                        await asyncio.sleep(self.latency)
                    status, extra, body = self.handler(address, path, headers)
                finally:
                    self.stats.in_flight[address] -= 1
                hit.bytes = len(body)
                head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
                head += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
                if method != "HEAD":
                    writer.write(body)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, ValueError):
            return
        finally:
            writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            for address in self.addresses:
                server = await asyncio.start_server(
                    lambda r, w, a=address: self._serve(r, w, a), address, 0, backlog=1024
                )
                self.ports[address] = server.sockets[0].getsockname()[1]
                self._servers.append(server)

        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> BenchServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("benchmark server did not start")
        return self

    def stop(self) -> None:
        def shutdown() -> None:
            for s in self._servers:
                s.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(shutdown)
        self._thread.join(5)

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def loopback_addresses(n: int, first: int = 2) -> list[str]:
    """n distinct loopback hosts: 127.0.0.2, 127.0.0.3, … (all of 127/8 is loopback on Linux)."""
    return [f"127.0.{(first + i) // 250}.{(first + i) % 250 + 1}" for i in range(n)]
