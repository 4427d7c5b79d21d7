"""The scheduler, without waiting for wall-clock time: triggers are asked for their next fire
time at explicit instants, and APScheduler's own job processing runs against a frozen clock
(a scheduler that processes jobs only when the test steps it)."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.debug import DebugExecutor
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler

from illhub.registry import parse_registry
from illhub.scheduler import (
    LINK_CHECK_JOB,
    HarvestRunner,
    HarvestScheduler,
    group_last_run,
    harvest_command,
    link_check_command,
    make_scheduler,
    missed_since,
    next_runs,
    plan,
    trigger_for,
)
from pipeline.store import open_db, start_run, sync_sources
from tests.conftest import run_cli

NOW = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)  # a Saturday


def registry(default="nightly", **schedules):
    sources = []
    for sid, sched in schedules.items():
        s = {"id": sid, "name": sid, "kind": "feed", "url": f"https://{sid}.example.org/feed"}
        if sched == "disabled":
            s["enabled"] = False
        elif sched:
            s["schedule"] = sched
        sources.append(s)
    return parse_registry({"defaults": {"schedule": default}, "sources": sources})


def registry_text(**schedules):
    lines = ["defaults:", "  schedule: nightly", "sources:"]
    for sid, sched in schedules.items():
        lines += [f"  - id: {sid}", f"    name: {sid}", "    kind: feed", f"    url: https://{sid}.example.org/feed"]
        if sched:
            lines.append(f'    schedule: "{sched}"')
    return "\n".join(lines) + "\n"


# -- pure decisions -------------------------------------------------------------------------

@pytest.mark.parametrize("schedule, expected", [
    ("hourly", datetime(2026, 11, 28, 11, 7, tzinfo=UTC)),
    ("daily", datetime(2026, 11, 28, 12, 0, tzinfo=UTC)),
    ("nightly", datetime(2026, 11, 29, 7, 0, tzinfo=UTC)),
    ("weekly", datetime(2026, 11, 29, 8, 30, tzinfo=UTC)),  # Sunday
    ("*/20 * * * *", datetime(2026, 11, 28, 10, 40, tzinfo=UTC)),
    ("0 3 * * mon-fri", datetime(2026, 11, 30, 3, 0, tzinfo=UTC)),
])
def test_schedules_become_utc_cron_triggers(schedule, expected):
    assert trigger_for(schedule).get_next_fire_time(None, NOW) == expected


def test_sources_sharing_a_schedule_share_a_job_and_the_registry_default_applies():
    reg = registry(default="daily", a=None, b="hourly", c="disabled", d=None, e="*/20 * * * *")
    assert plan(reg) == {"*/20 * * * *": ["e"], "daily": ["a", "d"], "hourly": ["b"]}
    assert next_runs(reg, NOW) == [
        ("e", "*/20 * * * *", datetime(2026, 11, 28, 10, 40, tzinfo=UTC)),
        ("b", "hourly", datetime(2026, 11, 28, 11, 7, tzinfo=UTC)),
        ("a", "daily", datetime(2026, 11, 28, 12, 0, tzinfo=UTC)),
        ("d", "daily", datetime(2026, 11, 28, 12, 0, tzinfo=UTC)),
    ]
    assert plan(registry(x=None)) == {"nightly": ["x"]}  # the registry's own default is nightly


def test_missed_since_owes_one_run_after_downtime():
    nightly = trigger_for("nightly")
    last = datetime(2026, 11, 25, 7, 0, 3, tzinfo=UTC)  # the 25th's nightly run
    assert missed_since(nightly, last, datetime(2026, 11, 26, 6, 59, tzinfo=UTC)) is False
    assert missed_since(nightly, last, datetime(2026, 11, 26, 7, 0, tzinfo=UTC)) is True
    assert missed_since(nightly, last, NOW) is True  # three nights missed: still one run owed
    assert missed_since(nightly, None, NOW) is True  # never harvested
    runs = {"a": last, "b": datetime(2026, 11, 28, 7, 0, tzinfo=UTC)}
    assert group_last_run(["a", "b"], runs) == last and group_last_run(["a", "c"], runs) is None


def test_harvest_command_is_a_fresh_python_process_that_respects_backoff():
    cmd = harvest_command(Path("reg.yaml"), Path("cat.db"), ["a", "b"], ["--delay", "2"])
    assert cmd == [sys.executable, "-m", "illhub", "harvest", "--registry", "reg.yaml", "--db", "cat.db", "--quiet",
                   "--respect-backoff", "--delay", "2", "--source", "a", "--source", "b"]


# -- APScheduler with a frozen clock --------------------------------------------------------

class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock(NOW)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return c.now.astimezone(tz) if tz else c.now.replace(tzinfo=None)

    monkeypatch.setattr("apscheduler.schedulers.base.datetime", Frozen)
    monkeypatch.setattr("apscheduler.executors.base.datetime", Frozen)
    return c


class SteppedScheduler(BaseScheduler):
    """Processes due jobs only when the test calls step() (APScheduler's own logic, no thread)."""

    def shutdown(self, wait=True):
        super().shutdown(wait)

    def wakeup(self):
        pass

    def step(self):
        return self._process_jobs()


class RecordingRunner:
    def __init__(self, clock, block: threading.Event | None = None):
        self.clock, self.block, self.calls = clock, block, []
        self.started = threading.Event()

        self.link_calls = []

    def run(self, schedule, ids):
        self.calls.append((schedule, list(ids), self.clock()))
        self.started.set()
        if self.block is not None:
            self.block.wait(10)

    def run_link_check(self, command):
        self.link_calls.append((command, self.clock()))


def stepped(clock, runner, tmp_path, reg, executor=None):
    sched = make_scheduler(SteppedScheduler, executor=executor or DebugExecutor())
    hs = HarvestScheduler(tmp_path / "registry.yaml", tmp_path / "catalog.db", runner=runner, scheduler=sched,
                          clock=clock)
    hs.registry = reg
    return hs, sched


def test_a_backlog_is_coalesced_into_one_run_and_a_run_past_the_grace_time_is_skipped(clock, tmp_path):
    runner = RecordingRunner(clock)
    hs, sched = stepped(clock, runner, tmp_path, registry(a=None, b=None))
    missed = []
    sched.add_listener(lambda e: missed.append(e.scheduled_run_time) if e.job_id.startswith("harvest:") else None,
                       EVENT_JOB_MISSED)
    hs.sync_jobs(catch_up=False)
    sched.start()
    job = sched.get_job("harvest:nightly")
    assert job.next_run_time == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 6 * 3600)
    sched.step()
    assert runner.calls == []  # nothing due yet
    # The machine slept through three nightly runs and woke an hour after the last one: one run.
    clock.now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    sched.step()
    assert runner.calls == [("nightly", ["a", "b"], clock.now)]
    assert job.id and sched.get_job("harvest:nightly").next_run_time == datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
    # Woken ten hours after the next one: past the six-hour grace, so it is skipped, not run late.
    clock.now = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)
    sched.step()
    assert len(runner.calls) == 1 and missed == [datetime(2026, 12, 2, 7, 0, tzinfo=UTC)]
    clock.now = datetime(2026, 12, 3, 7, 0, 1, tzinfo=UTC)
    sched.step()
    assert len(runner.calls) == 2
    sched.shutdown(wait=False)


def test_runs_missed_while_the_scheduler_was_down_are_caught_up_once_at_start(clock, tmp_path):
    db = open_db(tmp_path / "catalog.db")
    sync_sources(db, [{"id": i, "name": i, "kind": "feed"} for i in ("a", "b", "h")])
    start_run(db, "a", "g", "2026-11-25T07:00:02Z")  # the nightly sources last ran three days ago
    start_run(db, "b", "g", "2026-11-25T07:00:02Z")
    start_run(db, "h", "g", "2026-11-28T10:07:01Z")  # the hourly one ran on time
    db.close()
    runner = RecordingRunner(clock)
    hs, sched = stepped(clock, runner, tmp_path, registry(a=None, b=None, h="hourly"))
    hs.sync_jobs()
    sched.start()
    assert sched.get_job("harvest:nightly").next_run_time == NOW
    assert sched.get_job("harvest:hourly").next_run_time == datetime(2026, 11, 28, 11, 7, tzinfo=UTC)
    sched.step()
    assert runner.calls == [("nightly", ["a", "b"], NOW)]  # once, not three times
    assert sched.get_job("harvest:nightly").next_run_time == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    sched.shutdown(wait=False)


def test_no_overlap_a_job_still_running_is_not_started_again(clock, tmp_path):
    release = threading.Event()
    runner = RecordingRunner(clock, block=release)
    hs, sched = stepped(clock, runner, tmp_path, registry(h="hourly"), executor=ThreadPoolExecutor(1))
    refused = []
    sched.add_listener(lambda e: refused.append(e.job_id), EVENT_JOB_MAX_INSTANCES)
    hs.sync_jobs(catch_up=False)
    sched.start()
    clock.now = datetime(2026, 11, 28, 11, 7, tzinfo=UTC)
    sched.step()
    assert runner.started.wait(5)
    clock.now = datetime(2026, 11, 28, 12, 7, tzinfo=UTC)  # the next hour: the first run is still going
    sched.step()
    assert refused == ["harvest:hourly"] and len(runner.calls) == 1
    release.set()
    sched.shutdown(wait=True)


# -- subprocesses ---------------------------------------------------------------------------

FAKE_HARVEST = """
import sqlite3, sys, time, signal
db, mode, ids = sys.argv[1], sys.argv[2], sys.argv[3:]
conn = sqlite3.connect(db)
for sid in ids:
    conn.execute("insert into harvest_runs (run_group, source_id, started_at, status) values ('fake', ?, "
                 "strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'running')", [sid])
conn.commit()
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)
elif mode == "slow":
    time.sleep(0.5)
conn.execute("update harvest_runs set status = 'ok' where run_group = 'fake'")
conn.commit()
"""


def fake_runner(tmp_path, mode, **kw):
    db = tmp_path / "catalog.db"
    open_db(db).close()
    script = tmp_path / "fake_harvest.py"
    script.write_text(FAKE_HARVEST)
    return HarvestRunner(lambda ids: [sys.executable, str(script), str(db), mode, *ids], db_path=db, **kw), db


def statuses(db):
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("select source_id, status from harvest_runs"))


def test_each_harvest_is_a_subprocess_and_a_source_never_runs_twice_at_once(tmp_path):
    runner, db = fake_runner(tmp_path, "slow")
    first = threading.Thread(target=runner.run, args=("nightly", ["a", "b"]))
    first.start()
    deadline = time.monotonic() + 10
    while runner.busy() != {"a", "b"} and time.monotonic() < deadline:
        time.sleep(0.01)
    second = runner.run("hourly", ["b", "c"])  # b is being harvested: only c starts
    first.join(10)
    assert second.source_ids == ["c"] and second.returncode == 0
    assert sorted((tuple(launch.source_ids), launch.returncode) for launch in runner.launches) == [
        (("a", "b"), 0), (("c",), 0)]
    assert statuses(db) == {"a": "ok", "b": "ok", "c": "ok"}


def test_stop_lets_a_harvest_finish_within_the_timeout(tmp_path):
    runner, db = fake_runner(tmp_path, "slow", stop_timeout=10)
    t = threading.Thread(target=runner.run, args=("nightly", ["a"]))
    t.start()
    while not runner.busy():
        time.sleep(0.01)
    runner.stop()
    t.join(10)
    assert runner.launches[0].returncode == 0 and statuses(db) == {"a": "ok"}
    assert runner.run("nightly", ["a"]) is None  # stopping: nothing new starts


def test_stop_kills_a_harvest_that_will_not_finish_and_records_it_interrupted(tmp_path):
    runner, db = fake_runner(tmp_path, "stubborn", stop_timeout=0.3)
    t = threading.Thread(target=runner.run, args=("nightly", ["a", "b"]))
    t.start()
    deadline = time.monotonic() + 10
    while statuses(db) != {"a": "running", "b": "running"} and time.monotonic() < deadline:
        time.sleep(0.01)
    runner.stop()
    t.join(10)
    launch = runner.launches[0]
    assert launch.interrupted and launch.returncode == -9  # SIGTERM ignored, so SIGKILL
    assert statuses(db) == {"a": "interrupted", "b": "interrupted"}
    with sqlite3.connect(db) as conn:
        assert "signal 9" in conn.execute("select error from harvest_runs limit 1").fetchone()[0]


# -- registry reload and the CLI --------------------------------------------------------------

def test_the_registry_is_reread_when_it_changes_and_a_broken_one_is_ignored(clock, tmp_path, caplog):
    path = tmp_path / "registry.yaml"
    path.write_text(registry_text(a=None))
    runner = RecordingRunner(clock)
    sched = make_scheduler(SteppedScheduler, executor=DebugExecutor())
    hs = HarvestScheduler(path, tmp_path / "catalog.db", runner=runner, scheduler=sched, clock=clock)
    hs.load()
    hs.sync_jobs(catch_up=False)
    sched.start()
    assert hs.check_registry() is False  # unchanged
    path.write_text(registry_text(a=None, b=None, h="hourly"))
    assert hs.check_registry() is True
    jobs = {j.id: list(j.args[1]) for j in sched.get_jobs() if j.id.startswith("harvest:")}
    assert jobs == {"harvest:nightly": ["a", "b"], "harvest:hourly": ["h"]}
    path.write_text(registry_text(a=None) + "  - id: Bad Id\n")
    assert hs.check_registry() is False
    assert "keeping the previous schedule" in caplog.text and "Bad Id" in caplog.text
    assert {j.id for j in sched.get_jobs()} == {"harvest:nightly", "harvest:hourly", "link-check"}
    path.write_text(registry_text(a=None))
    assert hs.check_registry() is True
    assert {j.id: list(j.args[1]) for j in sched.get_jobs() if j.id != "link-check"} == {"harvest:nightly": ["a"]}
    sched.shutdown(wait=False)


def test_schedule_list_prints_next_runs_without_starting_anything(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(registry_text(a=None, h="hourly", c="0 3 * * mon"))
    db = tmp_path / "catalog.db"
    result = run_cli("schedule", "--registry", str(path), "--db", str(db), "--list", timeout=60)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│")}
    assert set(lines) == {"a", "h", "c"}
    assert "nightly" in lines["a"] and " 07:00 UTC" in lines["a"]
    assert "hourly" in lines["h"] and ":07 UTC" in lines["h"]
    assert "0 3 * * mon" in lines["c"] and " 03:00 UTC" in lines["c"]
    assert "link checks (defaults.link_check_schedule): weekly, next run" in result.stdout
    assert not db.exists()  # nothing was started, not even the catalog


# -- link checks ----------------------------------------------------------------------------

def test_link_checks_run_on_the_registry_link_check_schedule(clock, tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(registry_text(a=None))
    runner = RecordingRunner(clock)
    sched = make_scheduler(SteppedScheduler, executor=DebugExecutor())
    hs = HarvestScheduler(path, tmp_path / "catalog.db", runner=runner, scheduler=sched, clock=clock,
                          link_check_args=["--delay", "2"])
    hs.load()
    hs.sync_jobs()
    sched.start()
    job = sched.get_job(LINK_CHECK_JOB)
    assert job.next_run_time == datetime(2026, 11, 29, 8, 30, tzinfo=UTC)  # weekly (the default): Sunday 08:30
    [command] = job.args
    assert command == link_check_command(path, tmp_path / "catalog.db", ["--delay", "2"])
    assert command[1:4] == ["-m", "illhub", "check-links"] and command[-2:] == ["--delay", "2"]
    clock.now = datetime(2026, 11, 29, 8, 30, 1, tzinfo=UTC)
    sched.step()
    assert runner.link_calls == [(command, clock.now)]
    assert job.id and sched.get_job(LINK_CHECK_JOB).next_run_time == datetime(2026, 12, 6, 8, 30, tzinfo=UTC)
    # a new defaults.link_check_schedule takes effect when the registry is re-read
    path.write_text(registry_text(a=None).replace("  schedule: nightly\n", "  schedule: nightly\n"
                                                  "  link_check_schedule: \"0 4 * * *\"\n"))
    assert hs.check_registry() is True
    assert sched.get_job(LINK_CHECK_JOB).next_run_time == datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
    sched.shutdown(wait=False)


def test_a_missed_link_check_is_caught_up_once_and_an_empty_catalog_waits(clock, tmp_path):
    from pipeline.linkhealth import start_link_run
    from pipeline.resource import Batch, Resource
    from pipeline.store import store_batch

    db = open_db(tmp_path / "catalog.db")
    sync_sources(db, [{"id": "a", "name": "a", "kind": "feed"}])
    db.close()
    reg = registry(a=None)
    for has_resources, last_check, due_now in ((False, None, False), (True, None, True),
                                               (True, "2026-11-22T08:30:05Z", False),  # last Sunday, on time
                                               (True, "2026-11-22T08:20:00Z", True),  # before last Sunday's run
                                               (True, "2026-11-08T08:30:05Z", True),  # weeks ago: one run owed
                                               (True, "2026-11-28T09:00:00Z", False)):
        db = open_db(tmp_path / "catalog.db")
        db.execute("delete from link_check_runs")
        if has_resources:
            store_batch(db, Batch("a", [Resource(url="https://a.example.org/x", title="x")]))
        if last_check:
            start_link_run(db, started_at=last_check)
        db.conn.commit()
        db.close()
        runner = RecordingRunner(clock)
        hs, sched = stepped(clock, runner, tmp_path, reg)
        hs.sync_jobs()
        sched.start()
        expected = NOW if due_now else datetime(2026, 11, 29, 8, 30, tzinfo=UTC)
        assert sched.get_job(LINK_CHECK_JOB).next_run_time == expected, (has_resources, last_check)
        sched.shutdown(wait=False)


def test_the_runner_runs_a_link_check_subprocess_and_stop_reaches_it(tmp_path):
    runner = HarvestRunner(lambda ids: [], stop_timeout=5)
    done = tmp_path / "done"
    launch = runner.run_link_check([sys.executable, "-c", f"open({str(done)!r}, 'w').write('ok')"])
    assert launch.returncode == 0 and done.read_text() == "ok" and not runner.busy()
    runner.stopping.set()
    assert runner.run_link_check([sys.executable, "-c", "pass"]) is None  # stopping: nothing new starts
