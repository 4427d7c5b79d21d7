"""The SQLite catalog: opening it, and writing sources, runs and resources idempotently."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from pipeline import migrations
from pipeline.classify import classify_resource, classify_text
from pipeline.events import event_columns
from pipeline.normalize import normalize_resource, now_iso
from pipeline.packed import UPSERT_ATTRIBUTION, UPSERT_RAW, encode_row, insert_rows, json_encoder, new_row, unpacked
from pipeline.resource import Batch, Resource
from pipeline.taxonomy import Taxonomy, default_taxonomy
from pipeline.urls import resource_id, same_site
from pipeline.writelock import env_seconds, writer_lock

#: ``extra`` keys that change often without the resource changing (not in the content hash).
VOLATILE_EXTRA = frozenset({"views", "star_rating", "rating_count", "classified_by"})

CONTENT_FIELDS = (
    "url", "title", "description", "content_type", "organization", "published", "updated",
    "topics", "systems", "author", "language", "thumbnail", "excerpt",
)


#: How long a statement waits for another connection's write lock before "database is
#: locked" (seconds; env ILLHUB_BUSY_TIMEOUT). Between illhub's own commands the writer lock
#: (:mod:`pipeline.writelock`) already serializes writes; this covers other programs.
DEFAULT_BUSY_TIMEOUT = 10.0


#: The catalog connection's page cache (KiB): see :func:`open_db`.
CACHE_KIB = 8192


def busy_timeout() -> float:
    return env_seconds("ILLHUB_BUSY_TIMEOUT", DEFAULT_BUSY_TIMEOUT)


def open_db(path: str | Path, *, migrate: bool = True, lock_wait: float | None = None) -> Database:
    """Open (creating if needed) the catalog: WAL mode, a busy timeout, migrations applied.

    Pending migrations are applied under the catalog's writer lock (waiting at most
    ``lock_wait`` seconds for it: :func:`pipeline.writelock.writer_lock`), each in a
    transaction that checks again that it is still pending, so two processes opening a new
    or older catalog at once migrate it once."""
    path = Path(path)
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
        # usable from another thread: a harvest with parse workers writes from a thread of its
        # own (harvesters/writebehind.py), never at the same time as the reactor's thread
        db = Database(sqlite3.connect(str(path), check_same_thread=False))
    else:
        db = Database(sqlite3.connect(":memory:", check_same_thread=False))
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout() * 1000)}")
        if str(path) != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        # statement and savepoint journals in memory, not temporary files (a harvest's
        # transactions hold a savepoint per document)
        db.execute("PRAGMA temp_store = MEMORY")
        # A page cache (at most 8 MiB, used as needed) that holds what a harvest's transaction
        # changes: the resources table's indexes, the full-text index and the tag tables are
        # keyed by hashed ids, so a batch touches pages all over them. SQLite's default, 2 MB,
        # spilled changed pages to the WAL mid-transaction and read them back (a 500-feed
        # harvest: 120,000 page writes and 83,000 reads; now 67,000 and 20,000).
        db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        if migrate and migrations.pending(db):
            with writer_lock(path, "migrate", wait=lock_wait):
                migrations.apply(db)
    except BaseException:
        db.close()
        raise
    return db


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to the catalog (``mode=ro``: it may be written meanwhile), or,
    where even that cannot open it (a WAL catalog on a read-only file system, whose ``-shm``
    cannot be created), an immutable one (nobody can be writing to it there)."""
    uri = "file:" + urllib.parse.quote(str(Path(path).resolve()))
    for mode in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(f"{uri}?{mode}", uri=True, check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as e:
            conn.close()
            if mode == "immutable=1" or getattr(e, "sqlite_errorname", "") != "SQLITE_CANTOPEN":
                raise
        except BaseException:
            conn.close()
            raise
    raise AssertionError("unreachable")


def open_for_reading(path: str | Path) -> Database:
    """The catalog for a command that only reads it (``export``): opened as a harvest would
    (an older catalog is migrated), or read-only when this user cannot write to it."""
    try:
        return open_db(path)
    except (sqlite3.OperationalError, PermissionError) as e:
        name = getattr(e, "sqlite_errorname", "")
        if not (isinstance(e, PermissionError) or name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN"))):
            raise
    return Database(connect_readonly(path))


#: ``json.dumps(value, ensure_ascii=False, sort_keys=True)``, without building an encoder for
#: each of the six values an entry stores (a parse worker's CPU stage)
_encode = json_encoder(ensure_ascii=False, sort_keys=True)


def to_json(value: Any) -> str:
    return _encode(value)


def content_hash(r: Resource) -> str:
    data = {f: getattr(r, f) for f in CONTENT_FIELDS}
    data["extra"] = {k: v for k, v in r.extra.items() if k not in VOLATILE_EXTRA}
    return hashlib.sha1(to_json(data).encode("utf-8")).hexdigest()


def stored_hash(db: Database, rid: str, topics: list[str], systems: list[str]) -> str:
    """The content hash of a stored resource once its topics and systems are these: the
    content stays the owning source's, so the hash is computed from the row itself."""
    names = [f for f in CONTENT_FIELDS if f not in ("topics", "systems")]
    row = db.execute(f"SELECT extra, {', '.join(names)} FROM resources WHERE id = ?", [rid]).fetchone()
    r = Resource(url="", extra=json.loads(row[0] or "{}"), topics=list(topics), systems=list(systems))
    for name, value in zip(names, row[1:], strict=True):
        setattr(r, name, value)
    return content_hash(r)


def sync_sources(db: Database, sources: Iterable[dict[str, Any]]) -> None:
    """Mirror registry sources into the ``sources`` table (never deletes: old runs keep their source)."""
    now = now_iso()
    with db.atomic():
        for s in sources:
            row = {
                "id": s["id"], "name": s["name"], "kind": s["kind"], "url": s.get("url"),
                "organization": s.get("organization"), "topics": to_json(s.get("topics", [])),
                "systems": to_json(s.get("systems") or []),
                "schedule": s.get("schedule"), "enabled": 1 if s.get("enabled", True) else 0,
                "notes": s.get("notes"), "config": to_json(s.get("config", {})), "updated_at": now,
            }
            cols = ", ".join(row)
            db.execute(
                f"INSERT INTO sources ({cols}) VALUES ({', '.join('?' for _ in row)}) "
                "ON CONFLICT(id) DO UPDATE SET "
                + ", ".join(f"{c}=excluded.{c}" for c in row if c != "id"),
                list(row.values()),
            )


def write_event_columns(db: Database, rid: str, r: Resource) -> None:
    """The event columns of an event resource, from its ``extra``. A slides or recording link
    linked later (:mod:`pipeline.event_links`) is kept while the source names none."""
    row = event_columns(r.extra)
    if row is None:
        return
    keep = ("slides_url", "recording_url")
    db.execute(
        "UPDATE resources SET "
        + ", ".join(f"{c} = coalesce(?, {c})" if c in keep else f"{c} = ?" for c in row)
        + " WHERE id = ?",
        [*row.values(), rid],
    )


def start_run(db: Database, source_id: str, run_group: str, started_at: str | None = None) -> int:
    with db.atomic():
        cur = db.execute(
            "INSERT INTO harvest_runs (run_group, source_id, started_at, status) VALUES (?, ?, ?, 'running')",
            [run_group, source_id, started_at or now_iso()],
        )
    return int(cur.lastrowid)


def finish_run(db: Database, run_id: int, **fields: Any) -> None:
    fields.setdefault("finished_at", now_iso())
    with db.atomic():
        db.execute(
            f"UPDATE harvest_runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
            [*fields.values(), run_id],
        )


def mark_interrupted_runs(db: Database) -> int:
    """Runs left 'running' by a killed harvest become 'interrupted'."""
    with db.atomic():
        cur = db.execute(
            "UPDATE harvest_runs SET status = 'interrupted', finished_at = ?, "
            "error = coalesce(error, 'the harvest process stopped before this source finished') "
            "WHERE status = 'running'",
            [now_iso()],
        )
    return cur.rowcount


def prepare_resource(
    raw: Resource,
    *,
    source_id: str,
    base_url: str | None = None,
    source_topics: list[str] | None = None,
    source_systems: list[str] | None = None,
    organization: str | None = None,
    taxonomy: Taxonomy | None = None,
    on_topic_only: bool = False,
) -> tuple[Resource, dict[str, str]] | str | None:
    """Normalize and classify one parsed entry as its source would store it.

    Returns the clean resource and, separately, why each topic and system was given
    (``classified_by``); None when the entry has no usable link; :data:`OFF_TOPIC` when
    ``on_topic_only`` and its own words give it no topic or system (the source's registry
    topics do not count). Used by harvests and by ``illhub reprocess`` alike, so both give the
    same result.
    """
    r = normalize_resource(raw, base_url=base_url)
    if r is None:
        return None
    r.source_id = source_id
    if not r.organization and organization:
        r.organization = organization
    taxonomy = taxonomy or default_taxonomy()
    matched = classify_text(taxonomy, r)
    if on_topic_only and not (matched[0] or matched[1]):
        return OFF_TOPIC
    classify_resource(r, source_topics, taxonomy, source_systems=source_systems, source_id=source_id,
                      matched=matched)
    reasons = r.extra.pop("classified_by", {})
    return r, reasons


#: What :func:`prepare_resource` returns for an entry that ``on_topic_only`` leaves out.
OFF_TOPIC = "off topic"


def merge_reasons(topics: list[str], systems: list[str], *reason_maps: dict[str, str]) -> dict[str, str]:
    """One ``classified_by`` object for the final topics and systems (first reason wins)."""
    keep = set(topics) | {f"system:{s}" for s in systems}
    out: dict[str, str] = {}
    for reasons in reason_maps:
        for k, v in (reasons or {}).items():
            if k in keep:
                out.setdefault(k, v)
    return {k: out[k] for k in sorted(out)}


class StoreResult(dict):
    """Counts of one batch: seen, new, updated, unchanged, skipped."""


#: What a new row stores, encoded in the CPU stage: topics, systems, extra and classified_by
#: as JSON, and the content hash (a parse worker computes them; the writer uses them as they are
#: for new resources, and recomputes what merging with a stored row changes).
Encoded = tuple[str, str, str, str, str]
#: id → (clean resource, the parser's raw record as JSON, classified_by, Encoded)
Prepared = dict[str, tuple[Resource, str, dict[str, str], Encoded]]


def prepare_batch(
    batch: Batch,
    *,
    source_topics: list[str] | None = None,
    organization: str | None = None,
    taxonomy: Taxonomy | None = None,
    source_systems: list[str] | None = None,
    on_topic_only: bool = False,
) -> tuple[Prepared, StoreResult]:
    """The CPU stage of storing: normalize and classify every entry, derive its id, drop
    entries without a usable link, duplicates within the batch and, for a source that keeps
    only what is on topic, entries whose own words give no topic or system. Touches no
    database."""
    result = StoreResult(seen=0, new=0, updated=0, unchanged=0, skipped=0)
    prepared: Prepared = {}
    for raw in batch.resources:
        result["seen"] += 1
        done = prepare_resource(raw, source_id=batch.source_id, base_url=batch.url, source_topics=source_topics,
                                source_systems=source_systems, organization=organization, taxonomy=taxonomy,
                                on_topic_only=on_topic_only)
        if done is None or done == OFF_TOPIC:
            result["skipped"] += 1
            if done == OFF_TOPIC:
                result["off_topic"] = result.get("off_topic", 0) + 1  # said in the harvest's summary
            continue
        r, reasons = done
        rid = resource_id(r.url)
        if rid in prepared:
            continue
        raw_dict = raw.to_dict()
        raw_dict.pop("raw", None)
        raw_dict["raw"] = raw.raw
        encoded = (to_json(r.topics), to_json(r.systems), to_json(r.extra), to_json(reasons), content_hash(r))
        prepared[rid] = (r, to_json(raw_dict), reasons, encoded)
    return prepared, result


_UPDATE_ATTRIBUTION = (
    "UPDATE resources SET topics = ?, systems = ?, classified_by = ?, content_hash = ?, last_seen = ?, "
    "last_changed = ?, status = 'active' WHERE id = ?"
)
_TOUCH = "UPDATE resources SET last_seen = ?, status = 'active' WHERE id = ?"
_UPDATE_CONTENT = (
    "UPDATE resources SET url=?, title=?, description=?, content_type=?, organization=?, "
    "published=?, updated=?, topics=?, systems=?, author=?, language=?, thumbnail=?, excerpt=?, "
    "extra=?, content_hash=?, last_seen=?, last_changed=?, classified_by=?, source_id=?, status='active' WHERE id=?"
)
_TOUCH_UNCHANGED = "UPDATE resources SET last_seen = ?, extra = ?, classified_by = ?, status = 'active' WHERE id = ?"

class _HomeSites:
    """Which source owns a resource's content when several list it: the one whose own site
    the resource is on (a blog's feed, not the newsletter that links to the post), else the
    first that stored it. So the catalog is the same whatever order the sources come in.

    A source's sites are its registry URL and the site its documents say they belong to (a
    feed's own link, remembered in ``sources.site``: a feed served by a feed host or a proxy
    still belongs to its blog)."""

    def __init__(self, db: Database, source_id: str, site: str | None):
        self.db = db
        self.sites: dict[str, tuple[str, ...]] = {}
        stored = self._sites(source_id)
        self.new_site = bool(site) and site not in stored
        if site:
            self.sites[source_id] = (*stored, site)

    def _sites(self, source_id: str) -> tuple[str, ...]:
        if source_id not in self.sites:
            row = self.db.execute("SELECT url, site FROM sources WHERE id = ?", [source_id]).fetchone()
            self.sites[source_id] = tuple(s for s in (row or ()) if s)
        return self.sites[source_id]

    def is_home(self, source_id: str, url: str) -> bool:
        return any(same_site(site, url) for site in self._sites(source_id))

    def takes_over(self, source_id: str, owner_id: str, url: str) -> bool:
        return self.is_home(source_id, url) and not self.is_home(owner_id, url)


def _stored_rows(db: Database, ids: list[str]) -> dict[str, dict[str, Any]]:
    """What the catalog holds of these resources already (owner, hash, topics, systems, reasons)."""
    existing: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        rows = db.execute(
            f"SELECT id, source_id, content_hash, topics, systems, classified_by FROM resources "
            f"WHERE id IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        for row in rows:
            existing[row[0]] = {"source_id": row[1], "content_hash": row[2], "topics": json.loads(row[3]),
                                "systems": json.loads(row[4]), "classified_by": json.loads(row[5] or "{}")}
    return existing


def write_prepared(
    db: Database,
    source_id: str,
    prepared: Prepared,
    *,
    base_url: str | None = None,
    run_id: int | None = None,
    now: str | None = None,
    result: StoreResult | None = None,
    site: str | None = None,
) -> StoreResult:
    """The database stage of storing: upsert prepared (or packed) resources in one transaction,
    each statement run once per batch (:mod:`pipeline.packed`). ``site``: the site the document
    says it belongs to (remembered for the source: see :class:`_HomeSites`)."""
    now = now or now_iso()
    if result is None:
        result = StoreResult(seen=len(prepared), new=0, updated=0, unchanged=0, skipped=0)
    if not prepared:
        return result
    existing = _stored_rows(db, list(prepared))
    homes = _HomeSites(db, source_id, site)
    inserts: list[str] = []
    attribution_updates: list[list[Any]] = []
    touches: list[list[Any]] = []
    content_updates: list[list[Any]] = []
    unchanged: list[list[Any]] = []
    events: list[tuple[str, Resource]] = []
    entries = dict.items(prepared)  # as stored: packed ones too (PackedPrepared)
    for rid, entry in entries:
        old = existing.get(rid)
        if old is None:
            text, event = new_row(rid, entry)
            inserts.append(text)
            if event is not None:
                events.append((rid, event))
            result["new"] += 1
            continue
        r, _raw, reasons, encoded = entry if entry[0] is not None else unpacked(entry)
        if old["source_id"] != source_id and homes.takes_over(source_id, old["source_id"], r.url):
            old = {**old, "source_id": source_id, "content_hash": None}
        r.topics = sorted(set(r.topics) | set(old["topics"]))
        r.systems = sorted(set(r.systems) | set(old["systems"]))
        # The owning source's reasons come first (as `illhub reprocess` orders them).
        first, second = ((reasons, old["classified_by"]) if old["source_id"] == source_id
                         else (old["classified_by"], reasons))
        reasons = merge_reasons(r.topics, r.systems, first, second)
        why = to_json(reasons)
        h = content_hash(r)
        if old["source_id"] != source_id:
            # Another source owns the content; this one only adds topics and attribution.
            if set(r.topics) != set(old["topics"]) or set(r.systems) != set(old["systems"]):
                # The content stays the owner's: its hash is computed from the stored row.
                attribution_updates.append([to_json(r.topics), to_json(r.systems), why,
                                            stored_hash(db, rid, r.topics, r.systems), now, now, rid])
                result["updated"] += 1
            else:
                touches.append([now, rid])
                result["unchanged"] += 1
        elif h != old["content_hash"]:
            content_updates.append([r.url, r.title, r.description, r.content_type, r.organization, r.published,
                                    r.updated, to_json(r.topics), to_json(r.systems), r.author, r.language, r.thumbnail,
                                    r.excerpt, to_json(r.extra), h, now, now, why, source_id, rid])
            events.append((rid, r))
            result["updated"] += 1
        else:
            unchanged.append([now, to_json(r.extra), why, rid])
            result["unchanged"] += 1
    with db.atomic():
        if site and homes.new_site:
            db.execute("UPDATE sources SET site = ? WHERE id = ?", [site, source_id])
        insert_rows(db.conn, inserts, now)
        for sql, rows in ((_UPDATE_ATTRIBUTION, attribution_updates), (_TOUCH, touches),
                          (_UPDATE_CONTENT, content_updates), (_TOUCH_UNCHANGED, unchanged)):
            if rows:
                db.conn.executemany(sql, rows)
        for rid, r in events:
            write_event_columns(db, rid, r)
        db.conn.execute(UPSERT_ATTRIBUTION, [encode_row(list(prepared)), source_id, now, run_id])
        db.conn.execute(UPSERT_RAW, [encode_row([[rid, entry[1]] for rid, entry in entries]), source_id, base_url, now])
    return result


def store_batch(
    db: Database,
    batch: Batch,
    *,
    run_id: int | None = None,
    source_topics: list[str] | None = None,
    organization: str | None = None,
    taxonomy: Taxonomy | None = None,
    now: str | None = None,
    source_systems: list[str] | None = None,
    on_topic_only: bool = False,
) -> StoreResult:
    """Normalize, classify and upsert one batch in a single transaction.

    Idempotent: storing the same batch twice changes only ``last_seen``. A resource's
    content belongs to the source that found it first; other sources add themselves in
    ``resource_sources`` and their topics.
    """
    prepared, result = prepare_batch(batch, source_topics=source_topics, organization=organization,
                                     taxonomy=taxonomy, source_systems=source_systems, on_topic_only=on_topic_only)
    return write_prepared(db, batch.source_id, prepared, base_url=batch.url, run_id=run_id, now=now, result=result,
                          site=batch.site)
