"""One handler per source kind: how its requests start and how each response is read.

A handler is data-driven: everything it needs comes from the source's registry entry.
``start(source)`` yields Requests (or Batches, for kinds that need no network);
``parse(response, source)`` yields Batches and follow-up Requests. The spider adds the
callbacks, the bookkeeping and the error handling; handlers stay small and testable.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any, Protocol

from scrapy import Request
from scrapy.http import Response

from pipeline.resource import Batch


class KindHandler(Protocol):
    def start(self, source: Any) -> Iterable[Request | Batch]: ...

    def parse(self, response: Response, source: Any) -> Iterable[Request | Batch]: ...


HANDLERS: dict[str, KindHandler] = {}


def register(kind: str):
    def wrap(cls):
        HANDLERS[kind] = cls()
        return cls

    return wrap


def response_content_type(response: Response) -> str | None:
    value = response.headers.get(b"Content-Type")
    return value.decode("latin-1") if value else None


#: The kinds, each in the module of its name (harvesters/kinds/<kind>.py).
KINDS = ("conference", "crawl", "feed", "ical", "manual", "sitemap", "wordpress", "youtube", "zendesk")


def load(kinds: Iterable[str] | None = None) -> dict[str, KindHandler]:
    """Import the modules of these kinds (all when None) so that each registers its
    handler. A harvest of feeds only does not pay for the HTML extractors' imports."""
    for kind in KINDS if kinds is None else kinds:
        if kind in KINDS and kind not in HANDLERS:
            importlib.import_module(f"harvesters.kinds.{kind}")
    return HANDLERS


def load_all() -> dict[str, KindHandler]:
    """Import every kind module so that each registers its handler."""
    return load(None)
