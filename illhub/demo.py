"""The offline demo: a small web of fictional ILL sources served on loopback.

``data/demo/site/`` holds feeds in each format the harvester reads; :class:`DemoServer`
serves it (with YouTube's URL shapes) on a free loopback port. The tests reuse it.

A file ``NAME.tmpl`` is served as ``NAME`` with dates filled in relative to the server's
``today`` (:func:`render_template`), so the demo calendar always has upcoming events.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import threading
import time
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
SITE_DIR = DEMO_DIR / "site"
DEMO_REGISTRY = DEMO_DIR / "registry.yaml"

CONTENT_TYPES = {
    ".rss": "application/rss+xml", ".atom": "application/atom+xml", ".rdf": "application/rdf+xml",
    ".xml": "application/xml", ".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8",
    ".ics": "text/calendar; charset=utf-8", ".json": "application/json", ".pdf": "application/pdf",
}


TEXT_SUFFIXES = {".html", ".xml", ".json", ".txt", ".rss", ".atom", ".rdf"}
WP_API = re.compile(r"^(?P<site>/[A-Za-z0-9_/-]*?)/wp-json/wp/v2/(?P<collection>posts|pages)$")
ZENDESK_API = re.compile(r"^/api/v2/help_center/(?P<locale>[a-z]{2}(?:-[a-z]{2})?)/articles\.json$")


class _Handler(BaseHTTPRequestHandler):
    server: DemoHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet server
        pass

    def _resolve(self) -> Path | None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        path = parts.path
        if path.endswith("/feeds/videos.xml"):
            if "channel_id" in query:
                return SITE_DIR / "youtube" / f"channel-{query['channel_id'][0]}.xml"
            if "playlist_id" in query:
                return SITE_DIR / "youtube" / f"playlist-{query['playlist_id'][0]}.xml"
            return None
        m = re.match(r"^/@([A-Za-z0-9_.-]+)$", path)
        if m:
            return SITE_DIR / "youtube" / f"handle-{m.group(1)}.html"
        if path.endswith("/"):
            path += "index.html"
        target = (SITE_DIR / path.lstrip("/")).resolve()
        if SITE_DIR.resolve() not in target.parents:
            return None
        return target

    def _base(self) -> bytes:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}".encode()

    def _read(self, target: Path) -> bytes:
        """A file's bytes, ``{base}`` replaced by the server's address in text files."""
        body = target.read_bytes()
        if target.suffix in TEXT_SUFFIXES:
            body = body.replace(b"{base}", self._base())
        return body

    def _web_api(self) -> tuple[int, dict[str, str], bytes] | None:
        """The URL shapes of the web kinds' platforms: a WordPress REST API paged with
        ``page`` (files ``…/wp-json/wp/v2/posts/page-N.json``, ``X-WP-TotalPages`` counted
        from them), a Zendesk Help Center API (``articles-page-N.json``) and gzip sitemaps
        (``X.xml.gz`` made from ``X.xml``)."""
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        page = query.get("page", ["1"])[0]
        page = int(page) if page.isdigit() else 1
        m = WP_API.match(parts.path)
        if m:
            folder = (SITE_DIR / m.group("site").lstrip("/") / "wp-json" / "wp" / "v2" / m.group("collection")).resolve()
            if SITE_DIR.resolve() not in folder.parents or not folder.is_dir():
                return None
            total = len(list(folder.glob("page-*.json")))
            target = folder / f"page-{page}.json"
            if not target.is_file():
                error = b'{"code":"rest_post_invalid_page_number","message":"The page number requested is larger than the number of pages available.","data":{"status":400}}'
                return 400, {"Content-Type": "application/json"}, error
            count = sum(len(json.loads(f.read_bytes())) for f in folder.glob("page-*.json"))
            return 200, {"Content-Type": "application/json; charset=UTF-8", "X-WP-TotalPages": str(total),
                         "X-WP-Total": str(count)}, self._read(target)
        m = ZENDESK_API.match(parts.path)
        if m:
            target = SITE_DIR / "api" / "v2" / "help_center" / m.group("locale") / f"articles-page-{page}.json"
            if target.is_file():
                return 200, {"Content-Type": "application/json; charset=utf-8"}, self._read(target)
            return None
        if parts.path.endswith(".xml.gz"):
            plain = (SITE_DIR / parts.path.lstrip("/")[:-3]).resolve()
            if SITE_DIR.resolve() in plain.parents and plain.is_file():
                return 200, {"Content-Type": "application/x-gzip"}, gzip.compress(self._read(plain), mtime=0)
        return None

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self.server.hits.append((self.path, self.headers.get("User-Agent", "")))
        api = self._web_api()
        target = None if api else self._resolve()
        template = target.with_name(target.name + ".tmpl") if target is not None else None
        if api is not None:
            status, headers, body = api
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
        elif target is not None and not target.is_file() and template is not None and template.is_file():
            body = render_template(template.read_text(encoding="utf-8"), self.server.today).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPES.get(target.suffix, "application/octet-stream"))
        elif target is None or not target.is_file():
            body = b"not found"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
        else:
            body = self._read(target)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPES.get(target.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()


_TOKEN = re.compile(r"\{\{(day|date|year)([+-]\d+)?\}\}")


def render_template(text: str, today: date) -> str:
    """Fill ``{{day+N}}`` (YYYYMMDD, as iCalendar wants), ``{{date+N}}`` ("Saturday, December 12,
    2026") and ``{{year+N}}`` with dates N days (or years) from ``today``."""

    def fill(m: re.Match[str]) -> str:
        kind, offset = m.group(1), int(m.group(2) or 0)
        if kind == "year":
            return str(today.year + offset)
        day = today + timedelta(days=offset)
        return day.strftime("%Y%m%d") if kind == "day" else f"{day:%A, %B} {day.day}, {day.year}"

    return _TOKEN.sub(fill, text)


class DemoHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    hits: list[tuple[str, str]]
    today: date


class DemoServer:
    """Serve the demo web on 127.0.0.1 on a free port, in a background thread.

    ``today`` (default: the UTC date when the server starts) anchors the templated demo
    files; it stays fixed while the server runs, so two harvests see the same calendar."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, today: date | None = None):
        self.httpd = DemoHTTPServer((host, port), _Handler)
        self.httpd.today = today or datetime.now(UTC).date()
        self.httpd.hits = []
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def hits(self) -> list[tuple[str, str]]:
        return self.httpd.hits

    def start(self) -> DemoServer:
        self.thread.start()
        wait_ready(self.base + "/robots.txt")
        self.httpd.hits.clear()  # the readiness check is not a harvest request
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_ready(url: str, timeout: float = 10.0) -> None:
    """Poll ``url`` until it answers (a readiness check, not a sleep)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def demo_registry(base: str):
    """The demo registry with ``{base}`` pointing at a running DemoServer."""
    from ruamel.yaml import YAML

    from illhub.registry import parse_registry

    text = DEMO_REGISTRY.read_text(encoding="utf-8").replace("{base}", base)
    return parse_registry(YAML(typ="safe").load(text), DEMO_REGISTRY)


def run_demo(db_path: str | Path | None = None, port: int = 8001, serve: bool = True) -> int:
    from harvesters.guard import Policy
    from illhub.console import RichProgress, err, print_summary
    from illhub.harvest import run_harvest

    db_path = Path(db_path or DEMO_DIR.parent / "demo.db")
    with DemoServer() as server:
        print(f"illhub demo: serving the demo web (fictional sources) at {server.base}", flush=True)
        registry = demo_registry(server.base)
        result = run_harvest(registry, db_path, policy=Policy.LOOPBACK,
                             delay=float(os.environ.get("ILLHUB_DEMO_DELAY", "0.05")), progress=RichProgress(err))
    print_summary(result, db_path)
    print("(demo-moved-feed fails on purpose: it shows how a broken source is reported)")
    if not serve:
        return 0 if len(result.failed) <= 1 else 1
    from illhub.serve import serve_datasette

    print(f"\nBrowse the demo catalog at http://127.0.0.1:{port}/  (Ctrl-C to stop)", flush=True)
    return serve_datasette(db_path, host="127.0.0.1", port=port)
