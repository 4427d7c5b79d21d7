"""Harvesting loopback sites end to end in the kinds' tests: `illhub harvest` (a subprocess)
over a registry pointed at the sites, then the catalog and the sites' hit logs to read."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.server import StubServer


def harvest_sites(tmp: Path, servers: dict[str, StubServer], registry_text: str) -> dict[str, Any]:
    """Harvest every source of ``registry_text`` into a new catalog in ``tmp``."""
    registry = tmp / "registry.yaml"
    registry.write_text(registry_text, encoding="utf-8")
    db = tmp / "catalog.db"
    result = run_cli("harvest", "--registry", str(registry), "--db", str(db), "--delay", "0.005", "--quiet")
    hits = {name: srv.targets() for name, srv in servers.items()}
    return {"servers": servers, "result": result, "db": db, "registry": registry, "hits": hits}


def rows(db: Path, sql: str, *args) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def urls_of(web: dict[str, Any], source_id: str) -> set[str]:
    return {r[0] for r in rows(web["db"], "select url from resources where source_id = ?", source_id)}


def paths(urls: set[str], base: str) -> set[str]:
    return {u.removeprefix(base) for u in urls}
