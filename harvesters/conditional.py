"""Fetch only what changed, for every kind: conditional GET, content hashes, freshness
and ``Retry-After``.

* :class:`ConditionalGetMiddleware` sends back the ``ETag`` and ``Last-Modified`` stored
  for a (source, URL) verbatim as ``If-None-Match`` / ``If-Modified-Since``, and skips the
  request entirely while ``Cache-Control: max-age`` says the last copy is still fresh.
* :class:`RetryAfterMiddleware` stops Scrapy from retrying a ``429``/``503`` that carries
  ``Retry-After`` at once; the spider records the time against the source.
* :class:`FetchState` (used by the spider) decides whether a response is unchanged (a
  304, still fresh, or a body with the same SHA-256 as last time) and builds the record
  saved once everything the document produced is stored.

Nothing here knows about kinds: any handler whose requests go through the spider gets
this by default. A document that led to follow-up requests (a channel page to its feed, a
sitemap index to its sitemaps) remembers them, so when it is unchanged its children are
still requested (each conditionally).
"""

from __future__ import annotations

import json
import logging
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scrapy import Request
from scrapy.http import Response

from pipeline.fetchcache import CachedDocument, body_hash, freshness, save_document, touch_document
from pipeline.normalize import iso_utc

logger = logging.getLogger(__name__)

VALIDATOR_HEADERS = (b"If-None-Match", b"If-Modified-Since")
FRESH_FLAG = "illhub-fresh"


def header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    if not value:
        return None
    return value.decode("latin-1")


def request_spec(request: Request) -> dict[str, Any] | None:
    """A follow-up request as JSON, or None when it cannot be replayed faithfully
    (not a plain GET, or meta that is not plain data)."""
    if request.method != "GET" or request.body:
        return None
    meta = {k: v for k, v in request.meta.items() if not k.startswith("_")}
    try:
        json.dumps(meta)
    except (TypeError, ValueError):
        return None
    spec: dict[str, Any] = {"url": request.url}
    if meta:
        spec["meta"] = meta
    if request.priority:
        spec["priority"] = request.priority
    return spec


#: The spec of each listed request (a crawl's found pages: the same request object for a page
#: every document that links it lists; each spec is read, never changed).
_LISTED_SPECS: weakref.WeakKeyDictionary[Request, dict[str, Any] | None] = weakref.WeakKeyDictionary()


def _follow_spec(request: Request) -> dict[str, Any] | None:
    if not request.meta.get("illhub_listed"):
        return request_spec(request)
    try:
        return _LISTED_SPECS[request]
    except KeyError:
        spec = _LISTED_SPECS[request] = request_spec(request)
        return spec


def request_from_spec(spec: dict[str, Any]) -> Request:
    return Request(spec["url"], meta=dict(spec.get("meta") or {}), priority=int(spec.get("priority", 0)))


@dataclass
class DocumentRecord:
    """A fetched document's cache row, saved once all ``pending`` batches it produced are stored."""

    doc: CachedDocument
    pending: int = 0
    stored: int = 0
    failed: bool = False


@dataclass
class FetchState:
    """The fetch cache of one harvest: rows loaded up front, fingerprints per source."""

    db: Any
    cache: dict[tuple[str, str], CachedDocument]
    fingerprints: dict[str, str]
    #: False with ``illhub harvest --refetch``: no validators, no freshness, no hash skips.
    use_cache: bool = True
    #: False with ``--force``: ask the server even while a copy is still fresh.
    honour_freshness: bool = True
    now: Any = field(default=None)

    def clock(self) -> datetime:
        return self.now() if callable(self.now) else datetime.now(UTC)

    def usable(self, source_id: str, url: str) -> CachedDocument | None:
        if not self.use_cache:
            return None
        doc = self.cache.get((source_id, url))
        if doc is None or doc.fingerprint != self.fingerprints.get(source_id):
            return None
        return doc

    # -- deciding -------------------------------------------------------------------

    def unchanged(self, response: Response, source_id: str) -> tuple[str, CachedDocument] | None:
        """``("not-modified" | "fresh" | "same-body", cached)`` when the document need not be
        parsed; the check time is written at once."""
        request = response.request
        if request is None:
            return None
        doc = self.usable(source_id, request.url)
        if doc is None:
            return None
        now = self.clock()
        if FRESH_FLAG in response.flags:
            return "fresh", doc
        if response.status == 304 and request.meta.get("illhub_conditional"):
            how = "not-modified"
        elif response.status == 200 and doc.body_sha256 and doc.body_sha256 == body_hash(response.body):
            how = "same-body"
        else:
            return None
        fresh_until = freshness(header(response, "Cache-Control"), header(response, "Age"), now)
        touch_document(self.db, source_id, request.url, checked_at=iso_utc(now), fresh_until=fresh_until,
                       etag=header(response, "ETag"), last_modified=header(response, "Last-Modified"))
        doc.checked_at, doc.fresh_until = iso_utc(now), fresh_until
        return how, doc

    def record(self, response: Response, source_id: str, outputs: list[Any]) -> DocumentRecord | None:
        """The cache row for a document that was parsed without error, or None when it
        must be parsed again next time (not a 200 GET, or follow-ups that cannot be replayed)."""
        request = response.request
        if request is None or request.method != "GET" or response.status != 200 or FRESH_FLAG in response.flags:
            return None
        follow = []
        for out in outputs:
            if isinstance(out, Request):
                spec = _follow_spec(out)
                if spec is None:
                    return None
                follow.append(spec)
        now = self.clock()
        doc = CachedDocument(
            source_id=source_id, url=request.url, etag=header(response, "ETag"),
            last_modified=header(response, "Last-Modified"), body_sha256=body_hash(response.body),
            fingerprint=self.fingerprints.get(source_id), follow=follow,
            fresh_until=freshness(header(response, "Cache-Control"), header(response, "Age"), now),
            http_status=response.status, bytes=len(response.body), checked_at=iso_utc(now), changed_at=iso_utc(now),
        )
        return DocumentRecord(doc)

    def save(self, record: DocumentRecord) -> None:
        if record.failed:
            return
        save_document(self.db, record.doc)
        self.cache[(record.doc.source_id, record.doc.url)] = record.doc


class ConditionalGetMiddleware:
    """Adds the stored validators to every request a source makes (robots.txt excluded)
    and answers from freshness alone while ``max-age`` allows. Runs before the robots.txt
    policy, so a harvest of fresh documents asks nothing of the host."""

    def __init__(self, crawler: Any):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> ConditionalGetMiddleware:
        return cls(crawler)

    def _fetch(self) -> FetchState | None:
        context = getattr(self.crawler.spider, "context", None)
        return getattr(context, "fetch", None)

    def process_request(self, request: Request, spider: Any = None) -> Response | None:
        if request.meta.get("illhub_conditional"):  # a redirect hop: the validators were the old URL's
            for name in VALIDATOR_HEADERS:
                request.headers.pop(name, None)
            request.meta["illhub_conditional"] = False
        fetch = self._fetch()
        source_id = request.meta.get("illhub_source")
        if fetch is None or not source_id or request.method != "GET" or request.meta.get("illhub_robots"):
            return None
        doc = fetch.usable(source_id, request.url)
        if doc is None:
            return None
        allowed = list(request.meta.get("handle_httpstatus_list", []))
        if 304 not in allowed:
            request.meta["handle_httpstatus_list"] = [*allowed, 304]
        if fetch.honour_freshness and doc.is_fresh(fetch.clock()):
            self.crawler.stats.inc_value("illhub/conditional/fresh")
            return Response(request.url, status=304, request=request, flags=[FRESH_FLAG])
        headers = doc.conditional_headers()
        if not headers:
            return None
        for name, value in headers.items():
            # Stored as latin-1 text, sent back as the very bytes the server gave.
            request.headers[name] = value.encode("latin-1", errors="replace")
        request.meta["illhub_conditional"] = True
        self.crawler.stats.inc_value("illhub/conditional/sent")
        return None


class RetryAfterMiddleware:
    """A ``429`` or ``503`` with ``Retry-After`` is not retried in this run (Scrapy would
    retry at once); the spider records when the source may be tried again."""

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Response:
        if response.status in (429, 503) and response.headers.get("Retry-After"):
            request.meta["dont_retry"] = True
        return response
