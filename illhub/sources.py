"""`illhub sources`: the registry, with each source's last harvest from the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from illhub.registry import Registry
from pipeline.store import connect_readonly


def source_statuses(registry: Registry, db_path: str | Path | None) -> list[dict[str, Any]]:
    """One row per registry source: its registry fields and its latest run (if any).

    The catalog is opened read-only; a missing catalog means nothing was harvested yet.
    """
    runs: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    if db_path and Path(db_path).exists():
        conn = connect_readonly(db_path)
        try:
            tables = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
            if "harvest_runs" in tables:
                for row in conn.execute(
                    "select source_id, status, started_at, finished_at, items_seen, items_new, http_status, error, "
                    "warning from harvest_runs where id in (select max(id) from harvest_runs group by source_id)"
                ):
                    runs[row[0]] = dict(zip(("source_id", "status", "started_at", "finished_at", "items_seen",
                                             "items_new", "http_status", "error", "warning"), row, strict=True))
            if "resource_sources" in tables:
                counts = dict(conn.execute("select source_id, count(*) from resource_sources group by source_id"))
        finally:
            conn.close()
    out = []
    for s in registry.sources:
        run = runs.get(s.id, {})
        out.append({
            "id": s.id, "name": s.name, "kind": s.kind, "url": s.url, "organization": s.organization,
            "topics": list(s.topics), "enabled": s.enabled,
            "status": run.get("status") or ("disabled" if not s.enabled else "never harvested"),
            "last_run": run.get("finished_at") or run.get("started_at"),
            "items_seen": run.get("items_seen"), "resources": counts.get(s.id, 0),
            "http_status": run.get("http_status"), "error": run.get("error"), "warning": run.get("warning"),
        })
    return out
