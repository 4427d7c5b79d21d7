"""What is known about each fetched document, so the next harvest fetches only what changed.

One row of ``fetch_cache`` per (source, URL): the validators the server gave (``ETag``,
``Last-Modified``, sent back verbatim as ``If-None-Match`` / ``If-Modified-Since``), a
SHA-256 of the body (for servers that ignore validators), how long ``Cache-Control:
max-age`` says the document stays fresh, and the follow-up requests the document led to
(so that an unchanged sitemap index or channel page still leads to its children).

A row is written only after everything the document produced has been stored, so a crash
between fetching and storing means the document is simply fetched and parsed again.

Pure: takes a ``sqlite_utils.Database``, never touches the network.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from sqlite_utils import Database

from pipeline.normalize import iso_utc

#: Longest freshness honoured from ``Cache-Control: max-age`` (a year-long max-age on a
#: feed must not hide it for a year).
MAX_FRESHNESS = timedelta(days=2)
#: Longest ``Retry-After`` honoured; beyond this the ordinary backoff applies.
MAX_RETRY_AFTER = timedelta(days=7)

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(no-cache|no-store)\b", re.IGNORECASE)


@dataclass
class CachedDocument:
    source_id: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_sha256: str | None = None
    fingerprint: str | None = None
    follow: list[dict[str, Any]] = field(default_factory=list)
    fresh_until: str | None = None
    http_status: int | None = None
    bytes: int = 0
    checked_at: str = ""
    changed_at: str = ""

    def conditional_headers(self) -> dict[str, str]:
        """The validators to send back, verbatim."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers

    def is_fresh(self, now: datetime) -> bool:
        return bool(self.fresh_until) and self.fresh_until > iso_utc(now)


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def source_fingerprint(config: dict[str, Any], version: str) -> str:
    """Changes whenever the source's registry entry or illhub's version changes: a cached
    document is only trusted when it was parsed with the same settings."""
    text = json.dumps(config, sort_keys=True, ensure_ascii=False, default=str) + "\n" + version
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def freshness(cache_control: str | None, age: str | None, now: datetime) -> str | None:
    """``fresh_until`` from ``Cache-Control: max-age`` (minus ``Age``), capped at
    :data:`MAX_FRESHNESS`; None when the response may not be reused without asking."""
    if not cache_control or _NO_CACHE.search(cache_control):
        return None
    m = _MAX_AGE.search(cache_control)
    if not m:
        return None
    seconds = int(m.group(1))
    try:
        seconds -= max(0, int((age or "0").strip()))
    except ValueError:
        pass
    if seconds <= 0:
        return None
    return iso_utc(now + min(timedelta(seconds=seconds), MAX_FRESHNESS))


def parse_retry_after(value: str | bytes | None, now: datetime) -> datetime | None:
    """``Retry-After`` as seconds or an HTTP date → when to try again (capped at
    :data:`MAX_RETRY_AFTER`); None when absent or unreadable."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1", errors="replace")
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        when = now + timedelta(seconds=int(value))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return min(max(when, now), now + MAX_RETRY_AFTER)


_COLUMNS = ("source_id", "url", "etag", "last_modified", "body_sha256", "fingerprint", "follow", "fresh_until",
            "http_status", "bytes", "checked_at", "changed_at")


def load_cache(db: Database, source_ids: list[str]) -> dict[tuple[str, str], CachedDocument]:
    out: dict[tuple[str, str], CachedDocument] = {}
    for i in range(0, len(source_ids), 500):
        chunk = source_ids[i : i + 500]
        rows = db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM fetch_cache WHERE source_id IN ({','.join('?' * len(chunk))})", chunk
        ).fetchall()
        for row in rows:
            data = dict(zip(_COLUMNS, row, strict=True))
            data["follow"] = json.loads(data["follow"] or "[]")
            doc = CachedDocument(**data)
            out[(doc.source_id, doc.url)] = doc
    return out


def save_document(db: Database, doc: CachedDocument) -> None:
    """Insert or replace the row for a document that was fetched and fully stored."""
    row = {c: getattr(doc, c) for c in _COLUMNS}
    row["follow"] = json.dumps(doc.follow, ensure_ascii=False, sort_keys=True)
    with db.atomic():
        db.execute(
            f"INSERT INTO fetch_cache ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
            "ON CONFLICT(source_id, url) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c not in ("source_id", "url")),
            list(row.values()),
        )


def touch_document(db: Database, source_id: str, url: str, *, checked_at: str, fresh_until: str | None,
                   etag: str | None = None, last_modified: str | None = None) -> None:
    """An unchanged document: only the check time, the freshness and any validator the
    server sent with its 304 change."""
    with db.atomic():
        db.execute(
            "UPDATE fetch_cache SET checked_at = ?, fresh_until = ?, etag = coalesce(?, etag), "
            "last_modified = coalesce(?, last_modified) WHERE source_id = ? AND url = ?",
            [checked_at, fresh_until, etag, last_modified, source_id, url],
        )
