"""``illhub status``: how the hub is doing, in the terminal: the last harvest (when, how long
ago, how many sources failed), the failing sources with their reasons, the sources that need
attention, and the next scheduled run. The catalog's front page shows the same summary
(:data:`catalog.pages.HARVEST_STATUS_SQL`, :func:`catalog.pages.harvest_banner`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalog.pages import HARVEST_STATUS_SQL, harvest_banner
from pipeline.health import ATTENTION_AFTER

#: The sources whose latest run failed, or that need attention, with what the catalog knows.
PROBLEM_SOURCES_SQL = """
SELECT source_id, name, kind, last_status, consecutive_failures, last_success, last_error, next_attempt,
       needs_attention
FROM source_health
WHERE enabled AND (last_status = 'failed' OR needs_attention)
ORDER BY needs_attention DESC, consecutive_failures DESC, source_id
"""


@dataclass
class Status:
    db_path: str
    banner: dict[str, Any]
    failing: list[dict[str, Any]] = field(default_factory=list)
    attention: list[dict[str, Any]] = field(default_factory=list)
    never_harvested: list[str] = field(default_factory=list)
    next_run: tuple[datetime, str, list[str]] | None = None
    registry_problem: str | None = None

    @property
    def exit_code(self) -> int:
        """0 all well; 1 the last harvest had failures, a source needs attention, or the
        catalog is stale (a monitoring check can run ``illhub status``)."""
        return 1 if (self.failing or self.attention or self.banner.get("stale")
                     or not self.banner.get("last_finished")) else 0

    def as_dict(self) -> dict[str, Any]:
        nxt = None
        if self.next_run:
            nxt = {"at": self.next_run[0].isoformat().replace("+00:00", "Z"), "schedule": self.next_run[1],
                   "sources": self.next_run[2]}
        return {"catalog": self.db_path, "last_harvest": self.banner, "failing": self.failing,
                "needs_attention": self.attention, "never_harvested": self.never_harvested, "next_run": nxt,
                "registry_problem": self.registry_problem}


def _rows(db: Any, sql: str) -> list[dict[str, Any]]:
    cur = db.execute(sql)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def read_status(db_path: str | Path, registry: Any | None, now: datetime | None = None) -> Status:
    """The hub's status from the catalog at ``db_path`` (read-only) and the registry's schedules."""
    from illhub.scheduler import next_runs
    from pipeline.store import open_for_reading

    now = now or datetime.now(UTC)
    db = open_for_reading(db_path)
    try:
        banner = harvest_banner(_rows(db, HARVEST_STATUS_SQL)[0], now)
        problems = _rows(db, PROBLEM_SOURCES_SQL)
        harvested = {r[0] for r in db.execute("SELECT DISTINCT source_id FROM harvest_runs")}
    finally:
        db.close()
    status = Status(str(db_path), banner)
    status.failing = [p for p in problems if p["last_status"] == "failed"]
    status.attention = [p for p in problems if p["needs_attention"]]
    if registry is not None:
        status.never_harvested = [s.id for s in registry.enabled() if s.id not in harvested]
        runs = [r for r in next_runs(registry, now) if r[2] is not None]
        if runs:
            when, schedule = runs[0][2], runs[0][1]
            status.next_run = (when, schedule, [sid for sid, sch, w in runs if w == when and sch == schedule])
    return status


def render(status: Status, now: datetime | None = None, limit: int = 20) -> list[str]:
    """The status as plain lines for the terminal (and for a log or an e-mail)."""
    now = now or datetime.now(UTC)
    b = status.banner
    lines = [f"catalog: {status.db_path}"]
    if not b.get("last_finished"):
        lines.append("last harvest: never (run 'illhub harvest')")
    else:
        lines.append(f"last harvest: finished {b['last_finished_readable']} ({b['age']}); "
                     f"{b['failing']} of {b['sources']} sources failing, {b['attention']} need attention"
                     + ("; STALE: no harvest for over a day and a half" if b.get("stale") else ""))
    if status.failing:
        lines.append(f"failing sources ({len(status.failing)}):")
        for p in status.failing[:limit]:
            since = f", last success {p['last_success']}" if p.get("last_success") else ", never succeeded"
            lines.append(f"  {p['source_id']}: {(p.get('last_error') or 'no reason recorded')[:200]} "
                         f"({p['consecutive_failures']} failed run(s) in a row{since})")
        if len(status.failing) > limit:
            lines.append(f"  … and {len(status.failing) - limit} more ('illhub sources' lists them all)")
    if status.attention:
        lines.append(f"needing attention ({len(status.attention)}), {ATTENTION_AFTER} or more failures in a row: "
                     "fix or disable "
                     "their registry entry: " + ", ".join(p["source_id"] for p in status.attention))
    if status.never_harvested:
        lines.append(f"never harvested ({len(status.never_harvested)}): " + ", ".join(status.never_harvested[:limit]))
    if status.registry_problem:
        lines.append(f"registry: {status.registry_problem}")
    if status.next_run:
        when, schedule, ids = status.next_run
        hours = (when - now).total_seconds() / 3600
        lines.append(f"next scheduled run: {when:%Y-%m-%d %H:%M} UTC (in {hours:.1f} h, {schedule}: "
                     f"{len(ids)} source(s)) with 'illhub schedule'; with the systemd timer: "
                     "systemctl list-timers 'illhub-*'")
    lines.append("details: the catalog's Harvest health page, or 'illhub sources'")
    return lines
