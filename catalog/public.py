"""What the public profile adds to Datasette: robots.txt rules, CSV exports whose
formula-like cells a spreadsheet will not run (:func:`csv_guard`, an ASGI middleware), and
what a public catalog shows (:func:`public_guard`, :func:`permission`).

A public catalog shows the resources, their sources, which source lists each, events (they
are resources), link health (the resources' link columns and the link canned queries) and a
harvest-health summary without error texts (``harvest_summary``). Everything else is a
maintainer's: the fetch cache, raw entries, source state, harvest runs and their full error
texts (which can name internal hosts), link-check runs, Datasette's own ``/-/`` pages (the
database's path in ``/-/databases.json``, threads, versions, settings, plugins, metadata).
Facets are offered on the columns people facet by (:data:`PUBLIC_FACETS`), never on unique
or long text columns, whose counts cost a pass over every row and tell nothing.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from pipeline.export import neutralize_cell
from pipeline.ftsfacets import CONTENT_VIEW

ROBOTS_RULES = {
    "allow": "User-agent: *\nDisallow:\n",
    "block": "User-agent: *\nDisallow: /\n",
    # Pages for people may be indexed; exports, custom SQL and facet permutations may not.
    # (and the hub's search results, narrowed lists and downloads: endless permutations of one catalog)
    "pages": ("User-agent: *\nDisallow: /*.csv\nDisallow: /*.json\nDisallow: /*?sql=\nDisallow: /*?*_facet\n"
              "Disallow: /*?*_sort\nDisallow: /*?*_next\nDisallow: /-/\nDisallow: /search\nDisallow: /*?*sort=\n"
              "Disallow: /*?*page=\nDisallow: /*/libguide\nDisallow: /*/list.html\nDisallow: /*.ics\n"),
}
ROBOTS_CHOICES = tuple(ROBOTS_RULES)

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FORMULA_START = frozenset("=+-@\t\r")
#: Where a cell may begin with a formula character: the start of a record or a field, or
#: inside an opening quote. Records without a match pass through untouched (most of them).
_RISKY = re.compile(r'(?:^|[,"\n])(?:[=+\-@\t]|\r(?!\n))')
_QUOTE_OR_NEWLINE = re.compile(r'["\n]')
#: The same, as plain substrings (a field separator, a quote or a line break, then a formula
#: character): ``in`` tests are several times cheaper than the regex on a clean record.
_RISKY_PAIRS = tuple(a + b for a in ',"\n' for b in "=+-@\t")


def _may_be_risky(text: str) -> bool:
    if text[:1] in _FORMULA_START or any(pair in text for pair in _RISKY_PAIRS):
        return True
    return "\r" in text and text.count("\r") != text.count("\r\n")


def neutralize_csv_cell(value: str) -> str:
    """A cell a spreadsheet will not run: formula-like text gets a leading quote (numbers stay)."""
    if not value or value[0] not in _FORMULA_START or _NUMBER.match(value):
        return value
    return neutralize_cell(value)


def _split_records(text: str) -> list[str]:
    """Complete CSV records (each with its line break), split at line breaks outside quotes."""
    records, start, in_quotes = [], 0, False
    for m in _QUOTE_OR_NEWLINE.finditer(text):
        if m.group() == '"':
            in_quotes = not in_quotes
        elif not in_quotes:
            records.append(text[start:m.end()])
            start = m.end()
    if start < len(text):
        records.append(text[start:])
    return records


def _rewrite_record(record: str) -> str:
    """The record with its formula-like cells neutralized; the record itself, byte for byte,
    when none is (so the output does not depend on how the stream was cut into chunks)."""
    if not _may_be_risky(record) or not _RISKY.search(record):
        return record
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    changed = False
    for row in csv.reader(io.StringIO(record, newline="")):
        cells = [neutralize_csv_cell(cell) for cell in row]
        changed = changed or cells != row
        writer.writerow(cells)
    return out.getvalue() if changed else record


class CsvRewriter:
    """Rewrites a CSV byte stream record by record, neutralizing formula-like cells.

    Chunks may split records (and multi-byte characters) anywhere; quoted fields may hold
    line breaks. A record is complete at a line break outside quotes. Datasette writes a
    record per chunk: a chunk that ends a record, with balanced quotes, and holds nothing
    formula-like is passed on as it is, without parsing (a stream of 200,000 resources spent
    most of its time here, scanning each character in Python).
    """

    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""

    def feed(self, chunk: bytes, final: bool = False) -> bytes:
        text = self.pending + self.decoder.decode(chunk, final=final)
        if final or (text.endswith("\n") and text.count('"') % 2 == 0):
            complete, self.pending = text, ""
        else:
            records = _split_records(text)
            last = records[-1] if records else ""
            if not last.endswith("\n") or last.count('"') % 2:
                records = records[:-1]  # the last one is not complete yet
            cut = sum(len(r) for r in records)
            complete, self.pending = text[:cut], text[cut:]
        if not complete:
            return b""
        if not _may_be_risky(complete) or not _RISKY.search(complete):
            return complete.encode("utf-8")
        return "".join(_rewrite_record(r) for r in _split_records(complete)).encode("utf-8")


def is_csv_request(scope: Mapping[str, Any]) -> bool:
    path = scope.get("path", "")
    query = scope.get("query_string", b"").decode("latin-1")
    return path.endswith(".csv") or bool(re.search(r"(^|&)_format=csv(&|$)", query))


def csv_guard(app: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """ASGI middleware: every CSV that Datasette sends has its formula-like cells neutralized."""

    async def wrapped(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http" or not is_csv_request(scope):
            await app(scope, receive, send)
            return
        rewriter: CsvRewriter | None = None

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal rewriter
            if message["type"] == "http.response.start":
                if message.get("status") == 200:
                    rewriter = CsvRewriter()
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"]
                    message = {**message, "headers": headers}
                await send(message)
                return
            if message["type"] == "http.response.body" and rewriter is not None:
                more = message.get("more_body", False)
                body = rewriter.feed(message.get("body", b""), final=not more)
                await send({**message, "body": body})
                return
            await send(message)

        await app(scope, receive, guarded_send)

    return wrapped


#: The tables a public catalog shows (every other table and view answers 403).
PUBLIC_TABLES = frozenset({"resources", "sources", "resource_sources"})
#: Canned queries a public catalog leaves out: they show harvest errors (``harvest_summary``
#: is their public counterpart).
PRIVATE_QUERIES = frozenset({"harvest_health", "source_health"})
#: Datasette's ``/-/`` pages a public catalog does not answer: all but static files and
#: illhub's own page (a route of illhub's plugin, matched before Datasette's own, inside its
#: CSRF protection: a cross-site POST is still refused as such).
PRIVATE_SPECIAL = r"^/-/(?!static/|static-plugins/|add-a-source$).*$"
#: The columns a public catalog facets by, per table (the metadata's facets and a few more
#: with few values). Title, description, URL, id and the other long or unique columns cost
#: a full pass over the table per request and are refused.
PUBLIC_FACETS: dict[str, frozenset[str]] = {
    "resources": frozenset({"content_type", "organization", "source_id", "topics", "systems", "link_status", "status",
                            "language", "event_name", "event_year", "session_type", "timezone", "link_http_status"}),
    "sources": frozenset({"kind", "organization", "enabled", "schedule"}),
    "resource_sources": frozenset({"source_id", "missed_runs"}),
}
#: The most values a public facet lists (``_facet_size``).
MAX_FACET_SIZE = 50


#: Views of the schema's machinery that no profile shows (Datasette lists every view, with no
#: ``hidden``): the text and facet tokens the full-text index reads (pipeline/ftsfacets.py).
INTERNAL_VIEWS = frozenset({CONTENT_VIEW})


def permission(actor: Any, action: str, resource: Any, public: bool) -> bool | None:
    """The ``permission_allowed`` answer: no view of :data:`INTERNAL_VIEWS`; in the public
    profile, no table or view outside :data:`PUBLIC_TABLES`; otherwise no opinion."""
    if action == "view-table" and isinstance(resource, (tuple, list)) and len(resource) == 2:
        if resource[1] in INTERNAL_VIEWS:
            return False
        if public:
            return False if resource[1] not in PUBLIC_TABLES else None
    return None


def drop_private_queries(queries: dict[str, Any]) -> None:
    for name in [k for k in queries if k in PRIVATE_QUERIES]:
        del queries[name]


def refusal(scope: Mapping[str, Any]) -> tuple[int, str] | None:
    """Why the public profile turns this request away (status, one-line reason), or None."""
    parts = scope.get("path", "").split("/")
    if len(parts) != 3 or not parts[2]:
        return None
    table = unquote(parts[2].rsplit(".", 1)[0] if "." in parts[2] else parts[2])
    allowed = PUBLIC_FACETS.get(table, frozenset())
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if key == "_facet_size":
            if not (value.isdigit() and int(value) <= MAX_FACET_SIZE):
                return 400, f"_facet_size must be a number up to {MAX_FACET_SIZE} on this catalog"
        elif key.startswith("_facet"):
            column = value
            if value.startswith("{"):
                try:
                    column = str(json.loads(value).get("simple") or json.loads(value).get("column"))
                except (ValueError, AttributeError):
                    return 400, f"{key}={value!r} is not a facet"
            if column not in allowed:
                offered = ", ".join(sorted(allowed)) or "none"
                return 400, f"facets by {column!r} are not offered on this catalog (facets: {offered})"
        elif key == "_through":
            try:
                through = json.loads(value).get("table")
            except (ValueError, AttributeError):
                return 400, "_through is not valid JSON"
            if through not in PUBLIC_TABLES:
                return 400, f"_through {through!r} is not offered on this catalog"
    return None


def public_guard(app: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """ASGI middleware of the public profile: facets outside :data:`PUBLIC_FACETS` (and a
    ``_through`` a private table) answer 400, in a short reply."""

    async def wrapped(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        why = refusal(scope) if scope.get("type") == "http" else None
        if why is None:
            await app(scope, receive, send)
            return
        from catalog.errors import log_line

        log_line(scope.get("method", "?"), scope.get("path", ""), *why)
        await short_reply(send, scope, *why)

    return wrapped


async def short_reply(send: Callable, scope: Mapping[str, Any], status: int, message: str,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A small JSON or text answer (JSON for a ``.json`` path)."""
    if scope.get("path", "").endswith(".json"):
        body = json.dumps({"ok": False, "error": message, "status": status}).encode()
        content_type = b"application/json; charset=utf-8"
    else:
        body = (message + "\n").encode()
        content_type = b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
