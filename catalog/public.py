"""What the public profile adds to Datasette: robots.txt rules, and CSV exports whose
formula-like cells a spreadsheet will not run (:func:`csv_guard`, an ASGI middleware).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pipeline.export import neutralize_cell

ROBOTS_RULES = {
    "allow": "User-agent: *\nDisallow:\n",
    "block": "User-agent: *\nDisallow: /\n",
    # Pages for people may be indexed; exports, custom SQL and facet permutations may not.
    "pages": ("User-agent: *\nDisallow: /*.csv\nDisallow: /*.json\nDisallow: /*?sql=\nDisallow: /*?*_facet\n"
              "Disallow: /*?*_sort\nDisallow: /*?*_next\nDisallow: /-/\n"),
}
ROBOTS_CHOICES = tuple(ROBOTS_RULES)

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def neutralize_csv_cell(value: str) -> str:
    """A cell a spreadsheet will not run: formula-like text gets a leading quote (numbers stay)."""
    if _NUMBER.match(value):
        return value
    return neutralize_cell(value)


class CsvRewriter:
    """Rewrites a CSV byte stream record by record, neutralizing formula-like cells.

    Chunks may split records (and multi-byte characters) anywhere; quoted fields may hold
    line breaks. A record is complete at a line break outside quotes.
    """

    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""
        self.in_quotes = False
        self.scanned = 0

    def feed(self, chunk: bytes, final: bool = False) -> bytes:
        self.pending += self.decoder.decode(chunk, final=final)
        cut = 0
        i = self.scanned
        text = self.pending
        while i < len(text):
            c = text[i]
            if c == '"':
                self.in_quotes = not self.in_quotes
            elif c == "\n" and not self.in_quotes:
                cut = i + 1
            i += 1
        self.scanned = len(text)
        if final:
            cut = len(text)
        complete, self.pending = text[:cut], text[cut:]
        self.scanned -= cut
        if not complete:
            return b""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        for record in csv.reader(io.StringIO(complete, newline="")):
            writer.writerow([neutralize_csv_cell(cell) for cell in record])
        return out.getvalue().encode("utf-8")


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
