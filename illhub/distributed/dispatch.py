"""The dispatcher (``illhub harvest --scrapyd URL[,URL…]``): a harvest whose crawling runs as
Scrapyd jobs on other machines and whose storing runs here, into this machine's catalog.

1. The selected sources get their ``harvest_runs`` rows and backoff decisions exactly as in a
   local harvest (:func:`illhub.harvest.run_harvest`), then are split by host into jobs
   (:func:`illhub.harvest.shard_of`: every source of one host is in one job, and a job runs
   once at a time, so one request at a time per host still holds).
2. Each Scrapyd gets this code's egg if it lacks it (``addversion.json``) and one job per share
   (``schedule.json``, at most :data:`MAX_IN_FLIGHT` at once per server), with the job's
   sources and their fetch state as spider arguments (:mod:`illhub.distributed.job`).
3. The jobs are followed with ``listjobs.json``. A finished job's feed is downloaded and
   stored through the same store pipeline as a local harvest
   (:class:`harvesters.store_pipeline.StorePipeline`), then its sources' runs are closed as a local
   harvest closes them.
4. A job that fails (its feed incomplete, a crash, other code on the server) or whose Scrapyd
   stops answering for ``gone_after`` seconds is tried once more on another server; if that
   fails too, its sources are recorded failed with the reason. Nothing of a failed attempt is
   stored; the other jobs still land.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harvesters.conditional import FetchState
from harvesters.guard import Policy
from harvesters.spider import HarvestContext, SourceState
from harvesters.store_pipeline import StorePipeline
from illhub.distributed.collect import JobFailed, store_job_output
from illhub.distributed.egg import PROJECT, build_egg, code_digest, egg_version
from illhub.distributed.records import JobState, pack, registry_text
from illhub.distributed.scrapyd import Scrapyd, ScrapydError
from illhub.harvest import (
    HarvestResult,
    begin_harvest,
    close_runs,
    host_key,
    link_media_safely,
    select_sources,
    shard_of,
)
from illhub.registry import Registry
from pipeline.event_links import Link
from pipeline.pages import known_lastmods
from pipeline.version import __version__
from pipeline.writelock import writer_lock

logger = logging.getLogger(__name__)

SPIDER = "harvest"
#: Jobs one Scrapyd runs at once for a dispatch. Scrapyd keeps the feeds of a spider's last
#: ``jobs_to_keep`` jobs (5 by default) and deletes older ones when a job starts: with at most
#: four in flight, each collected as soon as it finishes, no feed is deleted before it is read.
MAX_IN_FLIGHT = 4
#: Longest spider argument sent. Scrapyd passes each on a command line, and Linux takes at
#: most 128 KiB in one argument; a share whose arguments are longer is split by host.
MAX_ARGUMENT = 100_000
IN_FLIGHT = ("scheduled", "pending", "running")


class DispatchError(Exception):
    """No Scrapyd can take the harvest (each server's reason, one a line)."""


@dataclass
class Server:
    api: Scrapyd
    #: The egg version this dispatch schedules (None: the latest the server has).
    version: str | None = None
    alive: bool = True
    last_answer: float = field(default_factory=time.monotonic)
    problem: str | None = None

    @property
    def url(self) -> str:
        return self.api.url


@dataclass
class Job:
    number: int
    states: list[SourceState]
    args: dict[str, str]
    attempt: int = 0
    server: Server | None = None
    jobid: str | None = None
    #: queued, scheduled, pending, running, finished, stored or failed
    status: str = "queued"
    #: Servers already tried (a retry goes to another one when there is one).
    tried: list[str] = field(default_factory=list)
    #: Why the last attempt failed.
    error: str | None = None
    #: listjobs.json's entry of the finished job (log_url, items_url).
    entry: dict[str, Any] = field(default_factory=dict)
    missing_since: float | None = None

    @property
    def ids(self) -> list[str]:
        return [s.source.id for s in self.states]


@dataclass
class DispatchResult(HarvestResult):
    jobs: list[Job] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)


@dataclass
class DispatchOptions:
    #: How many shares the sources are split into (default: one per server: a job harvests its
    #: hosts in parallel, and each job costs a Scrapy process's start).
    jobs: int | None = None
    #: Seconds between two listjobs.json rounds.
    poll: float = 1.0
    #: A server that has not answered for this long is given up, and its jobs retried elsewhere.
    gone_after: float = 30.0


def connect(urls: list[str], deploy: bool = True) -> tuple[list[Server], list[str]]:
    """The servers that can run jobs (reachable, keeping item feeds, with the project's
    egg, deployed here when missing) and the problems of the others, one line each."""
    servers: list[Server] = []
    problems: list[str] = []
    version = egg_version(__version__, code_digest())
    egg: bytes | None = None
    for url in urls:
        try:
            api = Scrapyd(url)
            api.daemon_status()
            if not api.has_items():
                raise ScrapydError(f"Scrapyd at {api.url} keeps no item feeds, which illhub's jobs write their "
                                   "harvest to: set items_dir = items in its scrapyd.conf")
            if deploy:
                if version not in api.list_versions(PROJECT):
                    egg = egg or build_egg(version)
                    answer = api.add_version(PROJECT, version, egg)
                    logger.info("deployed illhub %s to %s (%s spiders)", version, api.url, answer.get("spiders"))
                servers.append(Server(api, version))
            else:
                if SPIDER not in api.list_spiders(PROJECT):
                    raise ScrapydError(f"Scrapyd at {api.url}: project {PROJECT} has no spider {SPIDER!r}: deploy "
                                       "illhub there (scrapyd-deploy), or leave out --no-deploy")
                servers.append(Server(api))
        except (ScrapydError, ValueError) as e:
            problems.append(str(e))
    return servers, problems


def job_arguments(registry: Registry, states: list[SourceState], run_group: str, state: JobState | None,
                  policy: Policy, delay: float | None, timeout: float | None) -> dict[str, str]:
    args = {"registry": pack(registry_text(registry, [s.source for s in states])),
            "sources": ",".join(s.source.id for s in states), "run_group": run_group, "policy": policy.value}
    if state is not None:
        args["state"] = pack(state.for_sources({s.source.id for s in states}).to_json())
    if delay is not None:
        args["delay"] = repr(float(delay))
    if timeout is not None:
        args["timeout"] = repr(float(timeout))
    return args


def plan_jobs(registry: Registry, states: list[SourceState], shares: int, run_group: str, state: JobState,
              policy: Policy, delay: float | None, timeout: float | None) -> list[Job]:
    """One job per non-empty share of the sources, split by host (:func:`~illhub.harvest.shard_of`).
    A share whose arguments would be too long is halved, by host; one host's sources too long
    even alone go without their fetch state (every document fetched and parsed again)."""
    def fits(group: list[SourceState], with_state: bool = True) -> dict[str, str] | None:
        args = job_arguments(registry, group, run_group, state if with_state else None, policy, delay, timeout)
        return args if max(len(v) for v in args.values()) <= MAX_ARGUMENT else None

    def split(group: list[SourceState]) -> list[tuple[list[SourceState], dict[str, str]]]:
        args = fits(group)
        if args is not None:
            return [(group, args)]
        hosts: dict[str, list[SourceState]] = {}
        for s in group:
            hosts.setdefault(host_key(s.source), []).append(s)
        if len(hosts) > 1:
            keys = sorted(hosts)
            half = len(keys) // 2
            return [*split([s for k in keys[:half] for s in hosts[k]]),
                    *split([s for k in keys[half:] for s in hosts[k]])]
        logger.warning("the fetch state of %s is too long to send: its documents are all fetched again",
                       ", ".join(s.source.id for s in group))
        return [(group, job_arguments(registry, group, run_group, None, policy, delay, timeout))]

    by_share: dict[int, list[SourceState]] = {}
    for s in states:
        by_share.setdefault(shard_of(s.source, shares), []).append(s)
    groups = [g for k in sorted(by_share) for g in split(by_share[k])]
    return [Job(number, group, args) for number, (group, args) in enumerate(groups, start=1)]


class Dispatcher:
    """Schedules the jobs on the servers, follows them, collects and stores them."""

    def __init__(self, servers: list[Server], jobs: list[Job], context: HarvestContext, digest: str,
                 options: DispatchOptions, workdir: Path, notify: Callable[[Job], None] | None = None,
                 on_source_done: Callable[[SourceState], None] | None = None):
        self.servers = servers
        self.jobs = jobs
        self.context = context
        self.digest = digest
        self.options = options
        self.workdir = workdir
        self.notify = notify or (lambda job: None)
        self.on_source_done = on_source_done or (lambda state: None)
        self.pipe = StorePipeline()
        self.pipe.crawler = SimpleNamespace(spider=SimpleNamespace(context=context))

    def run(self) -> None:
        while any(j.status not in ("stored", "failed") for j in self.jobs):
            self._schedule_ready()
            if not any(s.alive for s in self.servers):
                for job in self.jobs:
                    if job.status == "queued":
                        self._give_up(job, "no Scrapyd server is left: "
                                      + "; ".join(s.problem or s.url for s in self.servers))
                continue
            time.sleep(self.options.poll)
            for server in self.servers:
                if server.alive and self._in_flight(server):
                    self._poll(server)

    def cancel(self) -> None:
        """Ask the servers to stop the jobs still in flight (Ctrl-C), at once: Scrapyd's cancel
        sends the job's Scrapy an INT, which stops it gracefully, finishing the requests it has
        begun (with a polite delay, that can be a page's whole delay); a second cancel, with
        TERM, is Scrapy's second Ctrl-C, which stops it without waiting. (Another INT could
        be folded into the first one by Python when both arrive during one long call into C;
        a different signal is not.) Nothing of a cancelled job is collected, so its sources
        are recorded interrupted either way."""
        for job in self.jobs:
            if job.status in IN_FLIGHT and job.server is not None and job.jobid:
                for signal in (None, "TERM"):
                    try:
                        job.server.api.cancel(PROJECT, job.jobid, signal)
                    except ScrapydError as e:
                        if signal is None:
                            logger.warning("could not cancel job %s: %s", job.jobid, e)
                        break

    def _in_flight(self, server: Server) -> list[Job]:
        return [j for j in self.jobs if j.server is server and j.status in IN_FLIGHT]

    def _pick(self, job: Job) -> Server | None:
        alive = [s for s in self.servers if s.alive]
        untried = [s for s in alive if s.url not in job.tried]
        pool = untried or alive  # a retry goes to another server, unless none is left
        free = [s for s in pool if len(self._in_flight(s)) < MAX_IN_FLIGHT]
        if not free:
            return None
        order = {s.url: i for i, s in enumerate(self.servers)}
        n = len(self.servers)
        return min(free, key=lambda s: (len(self._in_flight(s)), (order[s.url] - job.number) % n))

    def _schedule_ready(self) -> None:
        for job in self.jobs:
            if job.status != "queued":
                continue
            server = self._pick(job)
            if server is None:
                continue
            jobid = f"{job.args['run_group']}-{job.number}-{job.attempt + 1}"
            try:
                server.api.schedule(PROJECT, SPIDER, jobid=jobid, version=server.version, args=job.args)
            except ScrapydError as e:
                self._server_gone(server, str(e))
                continue
            job.server, job.jobid, job.status, job.missing_since = server, jobid, "scheduled", None
            server.last_answer = time.monotonic()
            self.notify(job)

    def _poll(self, server: Server) -> None:
        try:
            lists = server.api.list_jobs(PROJECT)
        except ScrapydError as e:
            if time.monotonic() - server.last_answer >= self.options.gone_after:
                self._server_gone(server, f"{e} for {self.options.gone_after:g} s")
            return
        server.last_answer = time.monotonic()
        where = {entry.get("id"): (state, entry) for state, entries in lists.items() for entry in entries}
        for job in self._in_flight(server):
            state, entry = where.get(job.jobid, (None, {}))
            if state is None:
                job.missing_since = job.missing_since or time.monotonic()
                if time.monotonic() - job.missing_since >= self.options.gone_after:
                    self._failed(job, f"Scrapyd at {server.url} no longer knows job {job.jobid} (restarted?)")
                continue
            job.missing_since = None
            if state == "finished":
                job.status, job.entry = "finished", entry
                self.notify(job)
                self._collect(job)
            elif state != job.status:
                job.status = state
                self.notify(job)

    def _collect(self, job: Job) -> None:
        try:
            store_job_output(job, self.context, self.pipe, self.digest, self.workdir)
        except JobFailed as e:
            self._failed(job, str(e), e.retry)
            return
        job.status = "stored"
        self.notify(job)
        for state in job.states:
            self.on_source_done(state)

    def _server_gone(self, server: Server, reason: str) -> None:
        server.alive, server.problem = False, reason
        logger.warning("giving up %s: %s", server.url, reason)
        for job in self._in_flight(server):
            self._failed(job, f"{reason}; job {job.jobid} lost")

    def _failed(self, job: Job, reason: str, retry: bool = True) -> None:
        logger.warning("job %s (%s) failed: %s", job.jobid, ", ".join(job.ids), reason)
        first = job.error
        job.error = reason
        if job.server is not None:
            job.tried.append(job.server.url)
        if retry and job.attempt == 0 and any(s.alive for s in self.servers):
            job.attempt += 1
            job.status = "queued"
            self.notify(job)
            return
        self._give_up(job, reason if not first or first == reason else f"{reason} (first attempt: {first})")

    def _give_up(self, job: Job, reason: str) -> None:
        job.status, job.error = "failed", reason
        self.notify(job)
        for state in job.states:
            state.errors.append(f"dispatched harvest failed: {reason}")
            state.done = True
            self.on_source_done(state)


def job_state(db: Any, fetch: FetchState, states: dict[str, SourceState]) -> JobState:
    """What the jobs need of this catalog's fetch state for these sources."""
    lastmods = {}
    for sid in states:
        pages = known_lastmods(db, sid)
        if pages:
            lastmods[sid] = pages
    return JobState(fingerprints=dict(fetch.fingerprints), cache=list(fetch.cache.values()), lastmods=lastmods,
                    use_cache=fetch.use_cache, honour_freshness=fetch.honour_freshness)


def dispatch_harvest(
    registry: Registry,
    db_path: str | Path,
    servers: list[Server],
    *,
    source_ids: list[str] | None = None,
    policy: Policy = Policy.PUBLIC,
    delay: float | None = None,
    timeout: float | None = None,
    progress: Any = None,
    force: bool = False,
    respect_backoff: bool | None = None,
    refetch: bool = False,
    options: DispatchOptions | None = None,
    lock_wait: float | None = None,
    on_lock_wait: Any = None,
) -> DispatchResult:
    """Harvest the selected sources through Scrapyd jobs on ``servers`` (from :func:`connect`)
    into the catalog at ``db_path``; the arguments mean what they mean for
    :func:`illhub.harvest.run_harvest`. ``progress`` may also have ``job(job)``, called when
    a job changes status. Ctrl-C cancels the jobs in flight and records their sources as
    interrupted. The catalog's writer lock is held throughout, as a local harvest holds it."""
    options = options or DispatchOptions()
    if not servers:
        raise DispatchError("no Scrapyd server to dispatch to")
    sources = select_sources(registry, source_ids)
    with writer_lock(db_path, "harvest --scrapyd", wait=lock_wait, on_wait=on_lock_wait):
        return _dispatch_locked(registry, db_path, servers, sources, named=bool(source_ids), policy=policy,
                                delay=delay, timeout=timeout, progress=progress, force=force,
                                respect_backoff=respect_backoff, refetch=refetch, options=options)


def _dispatch_locked(registry: Registry, db_path: str | Path, servers: list[Server], sources: list, *,
                     named: bool, policy: Policy, delay: float | None, timeout: float | None, progress: Any,
                     force: bool, respect_backoff: bool | None, refetch: bool,
                     options: DispatchOptions) -> DispatchResult:
    begun = begin_harvest(registry, db_path, sources, named=named, force=force,
                          respect_backoff=respect_backoff, refetch=refetch)
    db, states, context = begun.db, begun.states, begun.context
    shares = options.jobs or len(servers)
    jobs = plan_jobs(registry, list(states.values()), shares, begun.run_group, job_state(db, context.fetch, states),
                     policy, delay, timeout)
    finished_normally = False
    links: list[Link] = []
    try:
        if progress is not None:
            progress.start(len(states))
        with tempfile.TemporaryDirectory(prefix="illhub-dispatch-") as workdir:
            dispatcher = Dispatcher(servers, jobs, context, code_digest(), options, Path(workdir),
                                    notify=getattr(progress, "job", None),
                                    on_source_done=getattr(progress, "advance", None))
            try:
                dispatcher.run()
                finished_normally = True
            except KeyboardInterrupt:
                dispatcher.cancel()
        links = link_media_safely(db)
    finally:
        close_runs(db, context, begun.skipped, begun.health, begun.started, finished_normally, progress)
    return DispatchResult(begun.run_group, [*begun.skipped, *states.values()], links, None, jobs=jobs, servers=servers)
