"""Prepared entries as the strings stored, and a batch's rows handed to SQLite as JSON arrays
(issue 22).

A batch's new resources, attributions and raw records are each written by one statement over
a JSON array (``json_each``): one call into SQLite instead of one per row, the same rows in
the same order, every trigger (the full-text index with its ``facets`` column, the tag
tables) run for each row as before. A parse worker sends the entries it prepared
(:func:`pipeline.store.prepare_batch`) as :class:`PackedPrepared`: each new resource's row
already as that JSON, rather than resource objects to pickle and unpickle.
(tests/test_feed_fast_paths.py compares catalogs written this way and row by row.)
"""

from __future__ import annotations

import json
import json.encoder
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipeline.resource import Resource

if TYPE_CHECKING:
    from pipeline.store import Encoded, Prepared


def json_encoder(**options: Any) -> Callable[[Any], str]:
    """``json.JSONEncoder(**options).encode``, set up once: ``encode`` builds its C encoder anew
    on every call, with a table of the containers met to detect cycles (values stored are
    trees: the same text, without that bookkeeping). Without the C encoder, ``encode``."""
    encoder = json.JSONEncoder(**options)
    make = json.encoder.c_make_encoder
    if make is None or encoder.indent is not None:
        return encoder.encode
    strings = json.encoder.encode_basestring_ascii if encoder.ensure_ascii else json.encoder.encode_basestring
    chunks = make(None, encoder.default, strings, None, encoder.key_separator, encoder.item_separator,
                  encoder.sort_keys, encoder.skipkeys, encoder.allow_nan)

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


#: A row as JSON: strings stay strings exactly (not ``ensure_ascii``: a lone surrogate fails
#: to encode as it would as a bound parameter, instead of being stored escaped).
encode_row = json_encoder(ensure_ascii=False)

#: A new resource's row (:func:`row`): the columns in order.
ROW_COLUMNS = ("id", "url", "title", "description", "content_type", "organization", "source_id", "published",
               "updated", "topics", "systems", "author", "language", "thumbnail", "excerpt", "extra",
               "content_hash", "classified_by")

_COLUMNS = ("id, url, title, description, content_type, organization, source_id, published, updated, topics, "
            "systems, author, language, thumbnail, excerpt, extra, status, content_hash, first_seen, last_seen, "
            "last_changed, classified_by")

#: New resources, a batch at a time: one statement over a JSON array of rows (:func:`row`),
#: so SQLite runs the whole insert (its triggers: the full-text index, the tag tables) in one
#: call instead of one per row. Rows go in in the array's order, as ``executemany`` put them.
INSERT_RESOURCES = (
    f"INSERT INTO resources ({_COLUMNS}) SELECT "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(16))
    + ", 'active', json_extract(value, '$[16]'), ?2, ?2, ?2, json_extract(value, '$[17]') "
    "FROM json_each(?1) ORDER BY key"
)
#: The same, a row at a time (for rows :data:`INSERT_RESOURCES` would not read exactly).
INSERT_RESOURCE = f"INSERT INTO resources ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'active',?,?,?,?,?)"
#: A batch's attributions and raw records, one statement each (?1: a JSON array of ids, or of
#: [id, raw record] pairs; ``WHERE true`` lets SQLite read the ``ON CONFLICT``).
UPSERT_ATTRIBUTION = (
    "INSERT INTO resource_sources (resource_id, source_id, first_seen, last_seen, last_run_id) "
    "SELECT value, ?2, ?3, ?3, ?4 FROM json_each(?1) WHERE true ORDER BY key "
    "ON CONFLICT(resource_id, source_id) DO UPDATE SET "
    "last_seen = excluded.last_seen, last_run_id = excluded.last_run_id, missed_runs = 0"
)
UPSERT_RAW = (
    "INSERT INTO raw_entries (resource_id, source_id, raw, base_url, fetched_at) "
    "SELECT json_extract(value, '$[0]'), ?2, json_extract(value, '$[1]'), ?3, ?4 FROM json_each(?1) "
    "WHERE true ORDER BY key "
    "ON CONFLICT(resource_id, source_id) DO UPDATE SET raw = excluded.raw, "
    "base_url = excluded.base_url, fetched_at = excluded.fetched_at WHERE raw_entries.raw != excluded.raw"
)


def insert_rows(conn: sqlite3.Connection, rows: list[str], now: str) -> None:
    """Insert new resources' rows (each :func:`row` as JSON) in order, first seen ``now``.
    SQLite's ``json_extract`` ends a string at a NUL character (``\\u0000``): a batch with one
    anywhere is inserted row by row, as bound parameters keep it."""
    if not rows:
        return
    text = "[" + ",".join(rows) + "]"
    if "\\u0000" not in text:
        conn.execute(INSERT_RESOURCES, [text, now])
        return
    conn.executemany(INSERT_RESOURCE, [[*r[:17], now, now, now, r[17]] for r in json.loads(text)])


def row(rid: str, r: Resource, encoded: Encoded) -> list[Any]:
    """A new resource's row in :data:`ROW_COLUMNS` order (the times of the write aside)."""
    topics_json, systems_json, extra_json, why, h = encoded
    return [rid, r.url, r.title, r.description, r.content_type, r.organization, r.source_id, r.published, r.updated,
            topics_json, systems_json, r.author, r.language, r.thumbnail, r.excerpt, extra_json, h, why]


def row_json(rid: str, r: Resource, encoded: Encoded) -> str:
    return encode_row(row(rid, r, encoded))


def new_row(rid: str, entry: tuple[Any, ...]) -> tuple[str, Resource | None]:
    """A new resource's row as JSON, from a prepared or a packed entry, and the resource when
    it may be an event (whose columns :func:`pipeline.store.write_event_columns` then writes:
    a packed entry is unpacked only when its row names ``session_type``)."""
    r, _raw, _reasons, encoded = entry
    if r is not None:
        return row_json(rid, r, encoded), r
    text = encoded[0]
    return text, (unpacked(entry)[0] if "session_type" in text else None)


class PackedPrepared(dict):
    """Prepared entries kept as strings, for sending from a parse worker to the harvest
    process: each is stored as ``(None, raw, None, (row,))``, ``row`` being what
    :func:`pipeline.store.write_prepared` inserts for a new resource (:func:`row`, as JSON).
    Pickling and unpickling resource objects and their reasons took several times longer than
    the strings (a 500-feed harvest: 0.17 s of the harvest process's time, now 0.02 s);
    ``write_prepared`` rebuilds them from ``row`` only for a resource it already holds (or an
    event). Read as a mapping, the entries are as ``prepare_batch`` gives them."""

    def __getitem__(self, rid: str) -> tuple[Resource, str, dict[str, str], Encoded]:
        return unpacked(dict.__getitem__(self, rid))

    def get(self, rid: str, default: Any = None) -> Any:
        return self[rid] if rid in self else default

    def values(self) -> list[tuple[Resource, str, dict[str, str], Encoded]]:  # type: ignore[override]
        return [unpacked(entry) for entry in dict.values(self)]

    def items(self) -> list[tuple[str, tuple[Resource, str, dict[str, str], Encoded]]]:  # type: ignore[override]
        return [(rid, unpacked(entry)) for rid, entry in dict.items(self)]

    def __reduce__(self) -> tuple[Any, ...]:
        return PackedPrepared, (list(dict.items(self)),)


def pack_prepared(prepared: Prepared) -> PackedPrepared:
    """``prepared`` as :class:`PackedPrepared`."""
    return PackedPrepared((rid, (None, raw, None, (row_json(rid, r, encoded),)))
                          for rid, (r, raw, _w, encoded) in prepared.items())


def unpacked(entry: tuple[Any, str, Any, tuple[Any, ...]]) -> tuple[Resource, str, dict[str, str], Encoded]:
    """An entry as ``prepare_batch`` gives it, from its packed form (:class:`PackedPrepared`)."""
    f = dict(zip(ROW_COLUMNS, json.loads(entry[3][0]), strict=True))
    r = Resource(url=f["url"], title=f["title"], description=f["description"], content_type=f["content_type"],
                 source_id=f["source_id"], organization=f["organization"], published=f["published"],
                 updated=f["updated"], topics=json.loads(f["topics"]), systems=json.loads(f["systems"]),
                 author=f["author"], language=f["language"], thumbnail=f["thumbnail"], excerpt=f["excerpt"],
                 extra=json.loads(f["extra"]))
    encoded = (f["topics"], f["systems"], f["extra"], f["classified_by"], f["content_hash"])
    return r, entry[1], json.loads(f["classified_by"]), encoded
