"""``illhub schedule``: unattended harvests on each source's schedule (APScheduler 3.x).

* Each source's ``schedule`` (``hourly``, ``daily``, ``nightly``, ``weekly`` or a 5-field
  cron expression, in UTC; the registry's ``defaults.schedule`` when unset) becomes a
  cron trigger. Sources that share a schedule share one job, so they are harvested in one
  crawl that shares one downloader (per-host politeness holds across them).
* Each due job runs ``python -m illhub harvest --source … --respect-backoff`` as its own
  subprocess: a crash or a leak in one harvest cannot take the scheduler down, and Scrapy's
  reactor is fresh every time.
* One harvest at a time (a single worker), one run per job at a time (``max_instances=1``)
  and never two runs of one source at once; a backlog is coalesced into one run; a run
  that could not start on time still starts within the misfire grace time (hours, not
  APScheduler's default second). Runs missed while the scheduler was down are caught up
  with one run at start-up.
* SIGTERM or SIGINT stops scheduling, lets the running harvest finish for a while, then
  asks it to stop (SIGTERM: Scrapy finishes what is in flight; a second SIGTERM: Scrapy
  stops at once), then kills it; a harvest that did not finish has its runs recorded as
  ``interrupted``, by itself or, after SIGKILL, by the scheduler.
* The registry is re-read when it changes on disk; a registry with errors is reported and
  the previous one kept.
* Link checks (``illhub check-links``, as its own subprocess) run on the registry's
  ``defaults.link_check_schedule`` (weekly by default), on the same single worker, so a
  link check never runs at the same time as a harvest. A link check missed while the
  scheduler was down is caught up once at start-up (a catalog that has never had one
  gets one at start-up as soon as it has resources).

The decisions are pure functions of explicit times (:func:`trigger_for`, :func:`plan`,
:func:`next_runs`, :func:`missed_since`) so that they are tested without waiting.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from harvesters.source import SourceBase
from illhub.registry import Registry, RegistryError, load_registry
from pipeline.normalize import iso_utc

logger = logging.getLogger("illhub.schedule")

#: What the schedule words mean (UTC). Nightly is night in the Americas, where most ILL
#: offices are; daily runs at noon UTC; weekly early on Sunday.
NAMED_SCHEDULES = {
    "hourly": "7 * * * *",
    "daily": "0 12 * * *",
    "nightly": "0 7 * * *",
    "weekly": "30 8 * * sun",
}
#: A run that could not start on time still starts up to this late.
DEFAULT_MISFIRE_GRACE = timedelta(hours=6)
#: How often the registry file is checked for changes (seconds).
DEFAULT_RELOAD_INTERVAL = 30.0
#: On SIGTERM/SIGINT: how long a running harvest may go on before it is asked to stop,
#: and again before it is killed (seconds). systemd's default TimeoutStopSec is 90 s.
DEFAULT_STOP_TIMEOUT = 30.0

#: How long the scheduler waits for the writer lock to record runs it had to kill (seconds).
RECORD_LOCK_WAIT = 30.0
#: What a harvest's exit code means, for the log (docs/operations.md#exit-codes).
EXIT_MEANINGS = {74: " (the catalog file could not be written: see the harvest's error line)",
                 75: " (another illhub command was writing to the catalog all along: tried again at the next run)"}

JOB_PREFIX = "harvest:"
RELOAD_JOB = "reload-registry"
LINK_CHECK_JOB = "link-check"
#: The runner's key for a running link check (source ids never contain a colon).
LINK_CHECK_KEY = ":link-check"


# -- pure decisions ---------------------------------------------------------------------

def cron_for(schedule: str) -> str:
    return NAMED_SCHEDULES.get(schedule.strip(), schedule.strip())


def trigger_for(schedule: str) -> CronTrigger:
    """The cron trigger of a schedule word or 5-field cron expression, in UTC."""
    return CronTrigger.from_crontab(cron_for(schedule), timezone=UTC)


def effective_schedule(source: SourceBase, registry: Registry) -> str:
    return source.schedule or registry.defaults.schedule


def plan(registry: Registry) -> dict[str, list[str]]:
    """Schedule → the ids of the enabled sources harvested on it (one job each)."""
    out: dict[str, list[str]] = {}
    for s in registry.enabled():
        out.setdefault(effective_schedule(s, registry), []).append(s.id)
    return {k: sorted(v) for k, v in sorted(out.items())}


def next_runs(registry: Registry, now: datetime) -> list[tuple[str, str, datetime | None]]:
    """(source id, schedule, next run time after ``now``) for every enabled source."""
    rows = []
    for schedule, ids in plan(registry).items():
        when = trigger_for(schedule).get_next_fire_time(None, now)
        rows += [(sid, schedule, when) for sid in ids]
    return sorted(rows, key=lambda r: (r[2] or datetime.max.replace(tzinfo=UTC), r[0]))


def missed_since(trigger: CronTrigger, last_run: datetime | None, now: datetime) -> bool:
    """Whether the trigger fired (so a run was due) between ``last_run`` and ``now``: the
    scheduler was down, and one catch-up run is owed. Never run: owed."""
    if last_run is None:
        return True
    first = trigger.get_next_fire_time(None, last_run + timedelta(seconds=1))
    return first is not None and first <= now


def last_runs(db: Any, source_ids: Sequence[str]) -> dict[str, datetime]:
    """When each source's latest run started (any status: a skipped run was still a run)."""
    if not source_ids:
        return {}
    rows = db.execute(
        f"SELECT source_id, max(started_at) FROM harvest_runs WHERE source_id IN ({','.join('?' * len(source_ids))}) "
        "GROUP BY source_id", list(source_ids),
    ).fetchall()
    return {sid: datetime.fromisoformat(ts.replace("Z", "+00:00")) for sid, ts in rows if ts}


def group_last_run(ids: Sequence[str], runs: dict[str, datetime]) -> datetime | None:
    """The group is as late as its least recently harvested source (None: one never ran)."""
    times = [runs.get(i) for i in ids]
    if not times or any(t is None for t in times):
        return None
    return min(t for t in times if t is not None)


def harvest_command(registry_path: Path, db_path: Path, source_ids: Sequence[str],
                    extra: Sequence[str] = ()) -> list[str]:
    """The subprocess a due job runs: one crawl for the job's sources, backoff respected."""
    cmd = [sys.executable, "-m", "illhub", "harvest", "--registry", str(registry_path), "--db", str(db_path),
           "--quiet", "--respect-backoff", *extra]
    for sid in source_ids:
        cmd += ["--source", sid]
    return cmd


def link_check_command(registry_path: Path, db_path: Path, extra: Sequence[str] = ()) -> list[str]:
    """The subprocess a due link check runs (``illhub check-links`` with its defaults)."""
    from illhub.linkcheck import link_check_argv

    return [*link_check_argv(registry_path, db_path), *extra]


def last_link_check(db: Any) -> tuple[datetime | None, bool]:
    """When the latest link check run started, and whether the catalog has resources."""
    ts = db.execute("SELECT max(started_at) FROM link_check_runs").fetchone()[0]
    has = db.execute("SELECT EXISTS (SELECT 1 FROM resources)").fetchone()[0]
    return (datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None), bool(has)


# -- running harvests -------------------------------------------------------------------

@dataclass
class Launch:
    schedule: str
    source_ids: list[str]
    returncode: int | None
    started_at: str
    interrupted: bool = False


class HarvestRunner:
    """Runs harvest subprocesses, never two for one source at once, and stops them gracefully."""

    def __init__(self, command: Callable[[list[str]], list[str]], *, db_path: Path | None = None,
                 stop_timeout: float = DEFAULT_STOP_TIMEOUT, env: dict[str, str] | None = None):
        self.command = command
        self.db_path = db_path
        self.stop_timeout = stop_timeout
        self.env = env
        self.lock = threading.Lock()
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()
        self.launches: list[Launch] = []

    def busy(self) -> set[str]:
        with self.lock:
            return set(self.running)

    def run(self, schedule: str, source_ids: list[str]) -> Launch | None:
        """Run one harvest of ``source_ids`` (those not already being harvested) and wait for it."""
        with self.lock:
            if self.stopping.is_set():
                logger.info("not starting %s: stopping", schedule)
                return None
            busy = [s for s in source_ids if s in self.running]
            ids = [s for s in source_ids if s not in self.running]
            if busy:
                logger.warning("%s: %s still being harvested; not started again", schedule, ", ".join(busy))
            if not ids:
                return None
            started = iso_utc(datetime.now(UTC))
            cmd = self.command(ids)
            logger.info("harvest %s (%s): %s", schedule, ", ".join(ids), " ".join(cmd))
            proc = subprocess.Popen(cmd, env=self.env)
            for s in ids:
                self.running[s] = proc
        launch = Launch(schedule, ids, None, started)
        try:
            launch.returncode = proc.wait()
        finally:
            with self.lock:
                for s in ids:
                    self.running.pop(s, None)
        launch.interrupted = launch.returncode is not None and launch.returncode < 0
        if launch.interrupted:
            self._record_interrupted(ids, started, launch.returncode)
        logger.log(logging.WARNING if launch.returncode in EXIT_MEANINGS else logging.INFO,
                   "harvest %s finished with exit code %s%s", schedule, launch.returncode,
                   EXIT_MEANINGS.get(launch.returncode, ""))
        self.launches.append(launch)
        return launch

    def run_link_check(self, command: list[str]) -> Launch | None:
        """Run one link check subprocess and wait for it (never two at once). A link check
        stopped early records its run as ``incomplete`` itself; after SIGKILL the next
        one marks it ``interrupted``."""
        with self.lock:
            if self.stopping.is_set():
                logger.info("not starting the link check: stopping")
                return None
            if LINK_CHECK_KEY in self.running:
                logger.warning("the previous link check is still running; not started again")
                return None
            started = iso_utc(datetime.now(UTC))
            logger.info("link check: %s", " ".join(command))
            proc = subprocess.Popen(command, env=self.env)
            self.running[LINK_CHECK_KEY] = proc
        launch = Launch("link-check", [], None, started)
        try:
            launch.returncode = proc.wait()
        finally:
            with self.lock:
                self.running.pop(LINK_CHECK_KEY, None)
        launch.interrupted = launch.returncode is not None and launch.returncode < 0
        logger.info("link check finished with exit code %s", launch.returncode)
        self.launches.append(launch)
        return launch

    def _record_interrupted(self, ids: list[str], started: str, returncode: int) -> None:
        if self.db_path is None or not Path(self.db_path).exists():
            return
        from pipeline.dberrors import explain
        from pipeline.health import mark_interrupted
        from pipeline.store import open_db
        from pipeline.writelock import writer_lock

        try:
            with writer_lock(self.db_path, "schedule", wait=RECORD_LOCK_WAIT):
                db = open_db(self.db_path)
                try:
                    n = mark_interrupted(db, ids, started, f"the scheduler stopped this harvest (signal {-returncode})")
                    logger.info("recorded %d run(s) as interrupted", n)
                finally:
                    db.close()
        except Exception as e:  # noqa: BLE001 - the next harvest marks them interrupted anyway
            problem = explain(e, self.db_path)
            if problem is None:
                raise
            logger.error("could not record the stopped runs (the next harvest will): %s", problem)

    def stop(self, timeout: float | None = None) -> None:
        """Start no more harvests; give running ones ``timeout`` seconds to finish, then
        SIGTERM (Scrapy finishes the downloads in flight and stops), ``timeout`` more, then
        SIGTERM again (Scrapy stops at once; the harvest still records its runs as
        interrupted), a few seconds more, then SIGKILL (the runner records them)."""
        timeout = self.stop_timeout if timeout is None else timeout
        self.stopping.set()
        steps = ((None, timeout), (signal.SIGTERM, timeout), (signal.SIGTERM, min(timeout, 5.0)),
                 (signal.SIGKILL, 5.0))
        for sig, wait in steps:
            procs = {id(p): p for p in self.running.copy().values()}.values()
            if sig is not None:
                for p in procs:
                    if p.poll() is None:
                        logger.warning("harvest pid %d still running: sending %s", p.pid, sig.name)
                        p.send_signal(sig)
            deadline = time.monotonic() + wait
            for p in procs:
                try:
                    p.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            if all(p.poll() is not None for p in procs):
                break
        # let the job threads record what they saw
        deadline = time.monotonic() + 5
        while self.busy() and time.monotonic() < deadline:
            time.sleep(0.02)


# -- the scheduler ----------------------------------------------------------------------

def make_scheduler(cls: type[BaseScheduler] = BlockingScheduler, misfire_grace: timedelta = DEFAULT_MISFIRE_GRACE,
                   executor: Any = None, **kwargs: Any) -> BaseScheduler:
    """An APScheduler with one worker (one harvest at a time), coalescing, no overlap, and a
    misfire grace time of hours."""
    return cls(
        timezone=UTC,
        # "default" runs the harvests, one at a time; "control" re-reads the registry even
        # while a long harvest is running.
        executors={"default": executor if executor is not None else ThreadPoolExecutor(max_workers=1),
                   "control": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": max(1, int(misfire_grace.total_seconds()))},
        **kwargs,
    )


class HarvestScheduler:
    def __init__(self, registry_path: Path, db_path: Path, *, runner: HarvestRunner | None = None,
                 scheduler: BaseScheduler | None = None, reload_interval: float = DEFAULT_RELOAD_INTERVAL,
                 harvest_args: Sequence[str] = (), clock: Callable[[], datetime] | None = None,
                 link_check_args: Sequence[str] = ()):
        self.registry_path = Path(registry_path)
        self.db_path = Path(db_path)
        self.link_check_args = list(link_check_args)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.runner = runner or HarvestRunner(
            lambda ids: harvest_command(self.registry_path, self.db_path, ids, harvest_args), db_path=self.db_path)
        self.scheduler = scheduler or make_scheduler()
        self.reload_interval = reload_interval
        self.registry: Registry | None = None
        self._registry_digest: str | None = None

    # registry -----------------------------------------------------------------------

    def _digest(self) -> str | None:
        try:
            return hashlib.sha256(self.registry_path.read_bytes()).hexdigest()
        except OSError:
            return None

    def load(self) -> Registry:
        """Load the registry (raises RegistryError) and remember its digest."""
        digest = self._digest()
        registry = load_registry(self.registry_path)
        self.registry, self._registry_digest = registry, digest
        return registry

    def check_registry(self) -> bool:
        """Re-read the registry if it changed on disk; keep the old one if the new one is broken."""
        digest = self._digest()
        if digest is None or digest == self._registry_digest:
            return False
        try:
            registry = load_registry(self.registry_path)
        except RegistryError as e:
            self._registry_digest = digest  # report once, not every interval
            logger.error("%s changed but has %d problem(s); keeping the previous schedule:\n%s",
                         self.registry_path, len(e.problems), "\n".join(e.problems))
            return False
        self.registry, self._registry_digest = registry, digest
        logger.info("%s changed: schedule reloaded", self.registry_path)
        self.sync_jobs()
        return True

    # jobs ---------------------------------------------------------------------------

    def _last_runs(self, ids: list[str]) -> dict[str, datetime]:
        if not self.db_path.exists():
            return {}
        from pipeline.store import open_db

        db = open_db(self.db_path)
        try:
            return last_runs(db, ids)
        finally:
            db.close()

    def sync_jobs(self, *, catch_up: bool = True) -> dict[str, list[str]]:
        """Make the scheduler's jobs match the registry: one job per schedule. A new job
        whose trigger fired since its sources were last harvested runs once right away."""
        assert self.registry is not None
        wanted = plan(self.registry)
        now = self.clock()
        existing = {j.id: j for j in self.scheduler.get_jobs() if j.id.startswith(JOB_PREFIX)}
        runs = self._last_runs([i for ids in wanted.values() for i in ids]) if catch_up else {}
        for schedule, ids in wanted.items():
            job_id = JOB_PREFIX + schedule
            job = existing.pop(job_id, None)
            if job is not None:
                if list(job.args[1]) != ids:
                    job.modify(args=(schedule, ids))
                continue
            trigger = trigger_for(schedule)
            kw: dict[str, Any] = {}
            if catch_up and missed_since(trigger, group_last_run(ids, runs), now):
                kw["next_run_time"] = now
                logger.info("%s: a run was missed (or never happened): harvesting %s now", schedule, ", ".join(ids))
            self.scheduler.add_job(self.runner.run, trigger, args=(schedule, ids), id=job_id,
                                   name=f"harvest {schedule}", replace_existing=True, **kw)
        for job_id in existing:
            self.scheduler.remove_job(job_id)
        self.sync_link_check_job(catch_up=catch_up)
        return wanted

    def sync_link_check_job(self, *, catch_up: bool = True) -> str:
        """One job for link checks on ``defaults.link_check_schedule``; returns the schedule."""
        from illhub.linkcheck import link_check_schedule

        assert self.registry is not None
        schedule = link_check_schedule(self.registry)
        name = f"link check {schedule}"
        job = self.scheduler.get_job(LINK_CHECK_JOB)
        if job is not None and job.name == name:
            return schedule
        trigger = trigger_for(schedule)
        kw: dict[str, Any] = {}
        if catch_up and self.db_path.exists():
            from pipeline.store import open_db

            db = open_db(self.db_path)
            try:
                last, has_resources = last_link_check(db)
            finally:
                db.close()
            if (last is None and has_resources) or (last is not None and missed_since(trigger, last, self.clock())):
                kw["next_run_time"] = self.clock()
                logger.info("link check (%s): a run was missed (or never happened): checking links now", schedule)
        command = link_check_command(self.registry_path, self.db_path, self.link_check_args)
        self.scheduler.add_job(self.runner.run_link_check, trigger, args=(command,), id=LINK_CHECK_JOB, name=name,
                               replace_existing=True, **kw)
        return schedule

    def start(self) -> None:
        """Run in the foreground until SIGTERM or SIGINT (blocks)."""
        if self.registry is None:
            self.load()
        self.sync_jobs()
        self.scheduler.add_job(self.check_registry, "interval", seconds=self.reload_interval, id=RELOAD_JOB,
                               replace_existing=True, misfire_grace_time=None, coalesce=True, executor="control")
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.scheduler.start()  # blocks until shutdown
        finally:
            self.runner.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.runner.stopping.is_set():
            logger.warning("%s: already stopping", signal.Signals(signum).name)
            return
        logger.warning("%s: no new harvests; the running one (if any) may finish", signal.Signals(signum).name)
        self.runner.stopping.set()
        try:
            self.scheduler.shutdown(wait=False)
        except SchedulerNotRunningError:
            pass
