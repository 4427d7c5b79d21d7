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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from illhub.loopback import LoopbackServer, Reply, Request

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


def _resolve(path: str, query: dict[str, list[str]]) -> Path | None:
    """The site file a request asks for (YouTube's feed and @handle URLs mapped to files)."""
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


def _read(target: Path, base: str) -> bytes:
    """A file's bytes, ``{base}`` replaced by the server's address in text files."""
    body = target.read_bytes()
    if target.suffix in TEXT_SUFFIXES:
        body = body.replace(b"{base}", base.encode())
    return body


def _web_api(request: Request, base: str) -> Reply | None:
    """The URL shapes of the web kinds' platforms: a WordPress REST API paged with
    ``page`` (files ``…/wp-json/wp/v2/posts/page-N.json``, ``X-WP-TotalPages`` counted
    from them), a Zendesk Help Center API (``articles-page-N.json``) and gzip sitemaps
    (``X.xml.gz`` made from ``X.xml``)."""
    page = request.arg("page", "1") or "1"
    page = int(page) if page.isdigit() else 1
    m = WP_API.match(request.path)
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
                     "X-WP-Total": str(count)}, _read(target, base)
    m = ZENDESK_API.match(request.path)
    if m:
        target = SITE_DIR / "api" / "v2" / "help_center" / m.group("locale") / f"articles-page-{page}.json"
        if target.is_file():
            return 200, {"Content-Type": "application/json; charset=utf-8"}, _read(target, base)
        return None
    if request.path.endswith(".xml.gz"):
        plain = (SITE_DIR / request.path.lstrip("/")[:-3]).resolve()
        if SITE_DIR.resolve() in plain.parents and plain.is_file():
            return 200, {"Content-Type": "application/x-gzip"}, gzip.compress(_read(plain, base), mtime=0)
    return None


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


class DemoServer(LoopbackServer):
    """Serve the demo web on a free loopback port, in a background thread:
    ``with DemoServer() as server: ... server.base ...``; every request is in its hit log
    (:meth:`~illhub.loopback.LoopbackServer.hits`).

    ``today`` (default: the UTC date when the server starts) anchors the templated demo
    files; it stays fixed while the server runs, so two harvests see the same calendar."""

    def __init__(self, host: str = "127.0.0.1", today: date | None = None):
        super().__init__(host, fallback=self.serve_site)
        self.today = today or datetime.now(UTC).date()

    def serve_site(self, request: Request) -> Reply:
        api = _web_api(request, self.base)
        if api is not None:
            return api
        target = _resolve(request.path, request.query)
        if target is not None and target.is_file():
            return 200, {"Content-Type": _content_type(target)}, _read(target, self.base)
        template = target.with_name(target.name + ".tmpl") if target is not None else None
        if template is not None and template.is_file():
            body = render_template(template.read_text(encoding="utf-8"), self.today).encode("utf-8")
            return 200, {"Content-Type": _content_type(target)}, body
        return 404, {"Content-Type": "text/plain"}, b"not found"


def _content_type(target: Path) -> str:
    return CONTENT_TYPES.get(target.suffix, "application/octet-stream")


def demo_registry(base: str):
    """The demo registry with ``{base}`` pointing at a running DemoServer."""
    from ruamel.yaml import YAML

    from illhub.registry import parse_registry

    text = DEMO_REGISTRY.read_text(encoding="utf-8").replace("{base}", base)
    return parse_registry(YAML(typ="safe").load(text), DEMO_REGISTRY)


def run_demo(db_path: str | Path | None = None, port: int = 8001, serve: bool = True) -> int:
    """Serve the demo web, harvest it into ``db_path`` and (unless ``serve`` is false) serve the
    catalog. The demo web keeps serving for as long as the catalog is served, so the demo
    resources that live on it (help pages, PDFs, documentation) open when clicked."""
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

        print(f"\nBrowse the demo catalog at http://127.0.0.1:{port}/  (Ctrl-C to stop; the demo web at "
              f"{server.base} stops with it)", flush=True)
        return serve_datasette(db_path, host="127.0.0.1", port=port)
