"""Merging catalogs harvested by separate processes or machines (``illhub merge``).

Past one machine, sources are split between harvest processes with ``illhub harvest
--shard K/N`` (every source of one host lands in the same shard, so per-host politeness
still holds), each writing its own database file. ``merge_catalog`` folds such a shard into
the main catalog with the same rules a harvest follows: a resource keeps its earliest
``first_seen`` and latest ``last_seen``, its content comes from the newer copy, attribution
and raw entries are unioned, run logs are appended once. Merging the same shard twice
changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from sqlite_utils import Database

#: Tables with their own merge rule; every other table with a primary key is upserted with
#: the shard's row winning (shards hold disjoint sources, so rows do not compete).
LOG_TABLES = {"harvest_runs": ("run_group", "source_id"), "link_check_runs": ("started_at", "source_id"),
              "link_checks": ("resource_id", "checked_at")}
SKIP = {"_sqlite_migrations", "sqlite_sequence"}
#: Tables derived from ``resources`` and kept by its triggers (migrations m1001, m1002): merging
#: the resources keeps them right; copying a shard's rows would not (a shard's counts are not
#: the merged catalog's, and its tags of a resource whose newer copy is kept would linger).
DERIVED = {"tag_counts", "resource_tags"}


def _columns(db: Database, schema: str, table: str) -> list[str]:
    return [r[1] for r in db.execute(f"PRAGMA {schema}.table_info([{table}])").fetchall()]


def _tables(db: Database, schema: str) -> list[str]:
    return [r[0] for r in db.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name NOT LIKE '%_fts' AND name NOT LIKE '%_fts_%' ORDER BY name").fetchall()]


def _pks(db: Database, schema: str, table: str) -> list[str]:
    rows = db.execute(f"PRAGMA {schema}.table_info([{table}])").fetchall()
    return [r[1] for r in sorted(rows, key=lambda r: r[5]) if r[5]]


def merge_catalog(db: Database, shard: str | Path) -> dict[str, int]:
    """Fold the catalog at ``shard`` into ``db`` (both at the current schema) in one
    transaction; return how many rows each table received."""
    counts: dict[str, int] = {}
    db.execute("ATTACH DATABASE ? AS shard", [str(shard)])
    try:
        missing = set(_tables(db, "main")) - set(_tables(db, "shard")) - SKIP - DERIVED
        if missing:
            raise ValueError(f"{shard}: not an illhub catalog at this version (no table {sorted(missing)[0]}); "
                             "open it once with this illhub (any command with --db) to migrate it")
        with db.atomic():
            for table in _tables(db, "main"):
                if table in SKIP or table in DERIVED:
                    continue
                cols = [c for c in _columns(db, "main", table) if c in set(_columns(db, "shard", table))]
                counts[table] = _merge_table(db, table, cols)
    finally:
        db.execute("DETACH DATABASE shard")
    return counts


def _merge_table(db: Database, table: str, cols: list[str]) -> int:
    names = ", ".join(f"[{c}]" for c in cols)
    if table in LOG_TABLES:
        key = LOG_TABLES[table]
        data = [c for c in cols if c != "id"]
        cur = db.execute(
            f"INSERT INTO [{table}] ({', '.join(data)}) SELECT {', '.join('s.' + c for c in data)} FROM shard.[{table}] s "
            f"WHERE NOT EXISTS (SELECT 1 FROM main.[{table}] m WHERE "
            + " AND ".join(f"m.{k} IS s.{k}" for k in key) + ")"
        )
        return cur.rowcount
    pks = _pks(db, "main", table)
    if not pks:
        return 0
    conflict = ", ".join(pks)
    if table == "resources":
        newer = "excluded.last_changed > resources.last_changed"
        sets = []
        for c in cols:
            if c in pks:
                continue
            if c == "first_seen":
                sets.append("first_seen = min(resources.first_seen, excluded.first_seen)")
            elif c == "last_seen":
                sets.append("last_seen = max(resources.last_seen, excluded.last_seen)")
            else:
                sets.append(f"[{c}] = CASE WHEN {newer} THEN excluded.[{c}] ELSE resources.[{c}] END")
        where = "WHERE excluded.last_seen > resources.last_seen OR excluded.last_changed > resources.last_changed " \
                "OR excluded.first_seen < resources.first_seen"
    elif table == "resource_sources":
        sets = ["first_seen = min(resource_sources.first_seen, excluded.first_seen)",
                "last_seen = max(resource_sources.last_seen, excluded.last_seen)"]
        where = ("WHERE excluded.last_seen > resource_sources.last_seen "
                 "OR excluded.first_seen < resource_sources.first_seen")
    else:
        sets = [f"[{c}] = excluded.[{c}]" for c in cols if c not in pks]
        where = "WHERE " + " OR ".join(f"[{table}].[{c}] IS NOT excluded.[{c}]" for c in cols if c not in pks) \
            if sets else ""
    action = f"DO UPDATE SET {', '.join(sets)} {where}" if sets else "DO NOTHING"
    cur = db.execute(
        f"INSERT INTO [{table}] ({names}) SELECT {names} FROM shard.[{table}] WHERE true "
        f"ON CONFLICT({conflict}) {action}"
    )
    return cur.rowcount
