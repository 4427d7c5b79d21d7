"""Per-source health: failures, backoff, attention, and stale resources.

Forgiving by design:

* A failing source backs off exponentially (1 h, 2 h, 4 h, … capped at 2 days), is flagged
  ``needs_attention`` after :data:`ATTENTION_AFTER` failures in a row, and is never disabled
  automatically; one success resets it. Backoff is per source, never per host.
* Nothing is deleted because a source failed, returned nothing or dropped an entry out of
  its feed window. A resource becomes ``stale`` only after :data:`STALE_AFTER_RUNS` complete,
  successful runs of its source without it, and becomes ``active`` again when seen.

The decisions (:func:`after_run`, :func:`backoff_delay`, :func:`in_backoff`) are pure
functions of explicit times; the rest reads and writes a ``sqlite_utils.Database``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from pipeline.normalize import iso_utc

BACKOFF_BASE = timedelta(hours=1)
BACKOFF_CAP = timedelta(days=2)
#: A source is flagged ``needs_attention`` after this many failed runs in a row.
ATTENTION_AFTER = 3
#: A resource becomes ``stale`` after this many complete, successful runs of its source without it.
STALE_AFTER_RUNS = 3
#: A scheduled run that starts a little before ``next_attempt`` still goes ahead (the
#: backoff is measured from the start of the failed run; schedules fire on the minute).
BACKOFF_SLACK = timedelta(minutes=15)

SUCCESS = frozenset({"ok", "warning"})
FAILURE = frozenset({"failed"})


@dataclass(frozen=True)
class SourceHealth:
    source_id: str
    consecutive_failures: int = 0
    last_success: str | None = None
    last_failure: str | None = None
    last_error: str | None = None
    next_attempt: str | None = None
    needs_attention: bool = False
    successful_runs: int = 0


def backoff_delay(consecutive_failures: int) -> timedelta:
    """1 h after the first failure, doubling each time, never more than :data:`BACKOFF_CAP`."""
    if consecutive_failures <= 0:
        return timedelta(0)
    return min(BACKOFF_BASE * (2 ** min(consecutive_failures - 1, 30)), BACKOFF_CAP)


def after_run(prev: SourceHealth, status: str, *, started_at: datetime, finished_at: datetime,
              error: str | None = None, retry_after: datetime | None = None) -> SourceHealth:
    """The source's health after a run that ended with ``status``.

    ``ok``/``warning`` reset everything; ``failed`` counts, backs off and may flag;
    ``deferred`` (robots.txt unreachable, host busy) changes no counter but honours a
    ``Retry-After``; ``interrupted`` and ``skipped`` change nothing.
    """
    if status in SUCCESS:
        return replace(prev, consecutive_failures=0, last_success=iso_utc(finished_at), next_attempt=None,
                       needs_attention=False, successful_runs=prev.successful_runs + 1)
    if status in FAILURE:
        failures = prev.consecutive_failures + 1
        when = started_at + backoff_delay(failures)
        if retry_after is not None and retry_after > when:
            when = retry_after
        return replace(prev, consecutive_failures=failures, last_failure=iso_utc(finished_at),
                       last_error=(error or "failed")[:2000], next_attempt=iso_utc(when),
                       needs_attention=failures >= ATTENTION_AFTER)
    if status == "deferred":
        nxt = prev.next_attempt
        if retry_after is not None and (nxt is None or iso_utc(retry_after) > nxt):
            nxt = iso_utc(retry_after)
        return replace(prev, last_error=(error or prev.last_error), next_attempt=nxt)
    return prev


def in_backoff(health: SourceHealth | None, now: datetime) -> bool:
    """Whether an unattended run at ``now`` should skip this source."""
    if health is None or not health.next_attempt:
        return False
    return health.next_attempt > iso_utc(now + BACKOFF_SLACK)


_FIELDS = ("source_id", "consecutive_failures", "last_success", "last_failure", "last_error", "next_attempt",
           "needs_attention", "successful_runs")


def load_health(db: Database, source_ids: list[str] | None = None) -> dict[str, SourceHealth]:
    sql = f"SELECT {', '.join(_FIELDS)} FROM source_state"
    params: list[Any] = []
    if source_ids is not None:
        if not source_ids:
            return {}
        sql += f" WHERE source_id IN ({','.join('?' * len(source_ids))})"
        params = list(source_ids)
    out = {}
    for row in db.execute(sql, params).fetchall():
        data = dict(zip(_FIELDS, row, strict=True))
        data["needs_attention"] = bool(data["needs_attention"])
        out[data["source_id"]] = SourceHealth(**data)
    return out


def save_health(db: Database, health: SourceHealth, now: datetime) -> None:
    row = asdict(health)
    row["needs_attention"] = 1 if health.needs_attention else 0
    row["updated_at"] = iso_utc(now)
    cols = list(row)
    with db.atomic():
        db.execute(
            f"INSERT INTO source_state ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            "ON CONFLICT(source_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in cols if c != "source_id"),
            list(row.values()),
        )


def mark_missed(db: Database, source_id: str, run_id: int, *, windowed: bool,
                threshold: int = STALE_AFTER_RUNS) -> dict[str, int]:
    """After a complete, successful run of ``source_id``: count one more missed run for
    each of its resources it did not list, and mark ``stale`` those that every source
    listing them has missed ``threshold`` times.

    A run that listed nothing counts nothing. Only call this for a run that read the whole listing (every document fetched and
    parsed: not a 304 or an unchanged body, no errors). ``windowed`` listings (a feed
    shows only its latest entries, a capped listing stops early) count a resource as
    missed only when it is at least as new as the oldest entry the run saw: an entry
    that merely fell out of the window is not missing.
    """
    with db.atomic():
        listed = db.execute("SELECT count(*) FROM resource_sources WHERE source_id = ? AND last_run_id = ?",
                            [source_id, run_id]).fetchone()[0]
        if not listed:  # a run that returned nothing proves nothing
            return {"missed": 0, "stale": 0}
        params: list[Any] = [source_id, run_id]
        window = ""
        if windowed:
            floor = db.execute(
                "SELECT min(r.published) FROM resources r JOIN resource_sources rs ON rs.resource_id = r.id "
                "WHERE rs.source_id = ? AND rs.last_run_id = ?", [source_id, run_id],
            ).fetchone()[0]
            if floor is None:
                return {"missed": 0, "stale": 0}
            # Correlated on each of this source's rows (a primary-key lookup), not a list of
            # every resource in the catalog newer than the floor: that made each source's
            # bookkeeping cost grow with the whole catalog (benchmarks/feed_ingest.py).
            window = (" AND EXISTS (SELECT 1 FROM resources r WHERE r.id = resource_sources.resource_id"
                      " AND r.published IS NOT NULL AND r.published >= ?)")
            params.append(floor)
        missed = db.execute(
            "UPDATE resource_sources SET missed_runs = missed_runs + 1 "
            "WHERE source_id = ? AND (last_run_id IS NULL OR last_run_id != ?)" + window, params,
        ).rowcount
        stale = db.execute(
            "UPDATE resources SET status = 'stale' WHERE status != 'stale' AND id IN ("
            "  SELECT resource_id FROM resource_sources WHERE source_id = ? AND missed_runs >= ?)"
            " AND NOT EXISTS (SELECT 1 FROM resource_sources rs2 WHERE rs2.resource_id = resources.id"
            "  AND rs2.missed_runs < ?)",
            [source_id, threshold, threshold],
        ).rowcount
    return {"missed": missed, "stale": stale}


def mark_interrupted(db: Database, source_ids: list[str], since: str, reason: str) -> int:
    """Runs of ``source_ids`` started at or after ``since`` and still 'running' (their
    harvest process was stopped) become 'interrupted'."""
    if not source_ids:
        return 0
    with db.atomic():
        cur = db.execute(
            "UPDATE harvest_runs SET status = 'interrupted', finished_at = ?, error = coalesce(error, ?) "
            f"WHERE status = 'running' AND started_at >= ? AND source_id IN ({','.join('?' * len(source_ids))})",
            [iso_utc(datetime.now().astimezone()), reason, since, *source_ids],
        )
    return cur.rowcount
