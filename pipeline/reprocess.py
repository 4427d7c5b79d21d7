"""Rerun normalization and classification over stored raw entries, without the network.

Every harvested entry is kept, as the parser produced it, in ``raw_entries`` (one row per
resource and source). After the taxonomy or the normalizer changes, :func:`reprocess`
rebuilds each resource from those rows exactly as a harvest would (the owning source's
entry gives the content; every source that lists it contributes topics and systems, with
its registry defaults from the ``sources`` table) and writes only what changed:
``last_changed`` moves only for resources whose content, topics or systems changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from pipeline.normalize import now_iso
from pipeline.resource import Resource
from pipeline.store import content_hash, merge_reasons, prepare_resource, to_json, write_event_columns
from pipeline.taxonomy import Taxonomy, default_taxonomy
from pipeline.urls import resource_id

CHUNK = 500


@dataclass
class ReprocessResult:
    resources: int = 0
    changed: int = 0
    reasons_only: int = 0
    unchanged: int = 0
    no_raw: int = 0
    unusable: int = 0
    url_changed: int = 0
    topics_added: dict[str, int] = field(default_factory=dict)
    topics_removed: dict[str, int] = field(default_factory=dict)
    #: how many resources carried each topic before and after
    topics_before: dict[str, int] = field(default_factory=dict)
    topics_after: dict[str, int] = field(default_factory=dict)

    def count(self, bucket: dict[str, int], keys: set[str]) -> None:
        for k in keys:
            bucket[k] = bucket.get(k, 0) + 1

    def topic_changes(self) -> list[tuple[str, int, int]]:
        """(topic, resources before, resources after) for every topic whose count changed."""
        topics = sorted(set(self.topics_before) | set(self.topics_after))
        rows = [(t, self.topics_before.get(t, 0), self.topics_after.get(t, 0)) for t in topics]
        return [r for r in rows if r[1] != r[2]]


def _source_defaults(db: Database) -> dict[str, dict[str, Any]]:
    cols = {c.name for c in db["sources"].columns}
    out = {}
    for row in db.execute(
        "SELECT id, topics, organization" + (", systems" if "systems" in cols else "") + " FROM sources"
    ).fetchall():
        out[row[0]] = {"topics": json.loads(row[1] or "[]"), "organization": row[2],
                       "systems": json.loads(row[3] or "[]") if len(row) > 3 else []}
    return out


def reprocess(db: Database, taxonomy: Taxonomy | None = None, *, now: str | None = None) -> ReprocessResult:
    """Reclassify and renormalize every stored resource from its raw entries."""
    taxonomy = taxonomy or default_taxonomy()
    now = now or now_iso()
    sources = _source_defaults(db)
    result = ReprocessResult()
    ids = [r[0] for r in db.execute("SELECT id FROM resources ORDER BY id").fetchall()]
    with db.atomic():
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT id, source_id, url, content_hash, topics, systems, classified_by FROM resources WHERE id IN ({marks})",
                chunk,
            ).fetchall()
            raws: dict[str, list[tuple[str, str, str | None]]] = {}
            for rid, sid, raw, base in db.execute(
                f"SELECT resource_id, source_id, raw, base_url FROM raw_entries WHERE resource_id IN ({marks}) "
                "ORDER BY resource_id, source_id",
                chunk,
            ).fetchall():
                raws.setdefault(rid, []).append((sid, raw, base))
            for rid, owner_id, url, old_hash, old_topics, old_systems, old_why in rows:
                result.resources += 1
                before = set(json.loads(old_topics))
                after = _reprocess_one(db, taxonomy, sources, result, now, rid, owner_id, url, old_hash,
                                       before, set(json.loads(old_systems)), old_why, raws.get(rid, []))
                result.count(result.topics_before, before)
                result.count(result.topics_after, after)
    return result


def _reprocess_one(db, taxonomy, sources, result, now, rid, owner_id, url, old_hash, old_topics, old_systems,
                   old_why, entries) -> set[str]:
    """Rebuild one resource; the topics it is left with."""
    if not entries:
        result.no_raw += 1
        return old_topics
    built: list[tuple[str, Resource, dict[str, str]]] = []
    for sid, raw_json, base in entries:
        try:
            raw = Resource.from_dict(json.loads(raw_json))
        except (ValueError, TypeError):
            continue
        src = sources.get(sid, {})
        done = prepare_resource(raw, source_id=sid, base_url=base, source_topics=src.get("topics"),
                                source_systems=src.get("systems"), organization=src.get("organization"),
                                taxonomy=taxonomy)
        if done is not None:
            built.append((sid, *done))
    if not built:
        result.unusable += 1
        return old_topics
    built.sort(key=lambda b: b[0] != owner_id)  # the owning source's entry first
    _, r, _ = built[0]
    if resource_id(r.url) != rid:
        # The normalizer now derives a different canonical URL; ids are derived from URLs,
        # so the row keeps its URL until a harvest stores the new one.
        result.url_changed += 1
        r.url = url
    r.source_id = owner_id
    topics: set[str] = set()
    systems: set[str] = set()
    for _, b, _ in built:
        topics |= set(b.topics)
        systems |= set(b.systems)
    r.topics, r.systems = sorted(topics), sorted(systems)
    why = to_json(merge_reasons(r.topics, r.systems, *(b[2] for b in built)))
    h = content_hash(r)
    if h != old_hash:
        db.execute(
            "UPDATE resources SET title=?, description=?, content_type=?, organization=?, published=?, updated=?, "
            "topics=?, systems=?, author=?, language=?, thumbnail=?, excerpt=?, extra=?, content_hash=?, "
            "classified_by=?, last_changed=? WHERE id=?",
            [r.title, r.description, r.content_type, r.organization, r.published, r.updated, to_json(r.topics),
             to_json(r.systems), r.author, r.language, r.thumbnail, r.excerpt, to_json(r.extra), h, why, now, rid],
        )
        write_event_columns(db, rid, r)
        result.changed += 1
        result.count(result.topics_added, topics - old_topics)
        result.count(result.topics_removed, old_topics - topics)
    elif why != old_why:
        db.execute("UPDATE resources SET classified_by = ? WHERE id = ?", [why, rid])
        result.reasons_only += 1
    else:
        result.unchanged += 1
    return topics
