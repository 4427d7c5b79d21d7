"""The commands that fetch and update the catalog: ``harvest``, ``merge``, ``check-links``,
``reprocess`` and ``schedule``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from harvesters.offload import DEFAULT_PARSE_CPU_LIMIT
from harvesters.settings import DEFAULT_DELAY, DEFAULT_TIMEOUT
from illhub.cli.catalogfile import catalog_errors, lock_wait_option, report, waiting_notice
from illhub.cli.options import (
    MAX_SECONDS,
    POSITIVE_SECONDS,
    SECONDS,
    Number,
    allow_private_option,
    db_option,
    delay_option,
    exit_fast,
    fail,
    load_registry_or_exit,
    load_taxonomy_or_exit,
    proxy_option,
    registry_option,
    timeout_option,
)
from illhub.console import (
    LinkProgress,
    RichProgress,
    err,
    escape,
    out,
    plain,
    print_link_summary,
    print_schedule,
    print_summary,
)


@click.command()
@registry_option
@db_option
@click.option("--source", "source_ids", multiple=True, metavar="ID", help="Harvest only this source (repeatable).")
@allow_private_option()
@delay_option(f"Seconds between requests to one host [default: {DEFAULT_DELAY:g}].")
@timeout_option(f"Seconds before a download is abandoned [default: {DEFAULT_TIMEOUT:g}].")
@proxy_option
@click.option("-v", "--verbose", count=True, help="Show Scrapy's log (-v info, -vv debug).")
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.option("--force", is_flag=True, help="Also harvest sources that are backing off after failures, and ask "
              "again for documents that Cache-Control max-age says are still fresh.")
@click.option("--respect-backoff", is_flag=True, help="Skip sources that are backing off even when named with "
              "--source (what 'illhub schedule' uses).")
@click.option("--refetch", is_flag=True, help="Ignore the fetch cache: no conditional requests, parse every "
              "document again (after upgrading illhub's parsers, say).")
@click.option("--shard", metavar="K/N", default=None, help="Harvest only shard K of N (sources split by host, so "
              "one host is always in one shard); for parallel harvest processes, see 'illhub merge'.")
@click.option("--workers", default="auto", metavar="N|auto", show_default=True,
              help="Processes that parse feeds while this one downloads and stores; 0 parses here. "
              "auto: one per core (at most 4) when 16 or more feed or YouTube sources have nothing in the fetch cache.")
@click.option("--scrapyd", "scrapyd_urls", metavar="URL[,URL…]", default=None, envvar="ILLHUB_SCRAPYD",
              help="Crawl on these Scrapyd servers instead of here (env ILLHUB_SCRAPYD): one job per share of the "
              "sources, split by host; each job's harvest is stored here. See docs/scaling.md.")
@click.option("--jobs", "job_count", type=click.IntRange(min=1, max=1000), default=None, metavar="N",
              help="With --scrapyd: split the sources into N jobs [default: one per server].")
@click.option("--no-deploy", is_flag=True, help="With --scrapyd: run the illhub egg already deployed on the servers "
              "instead of deploying this code's egg where it is missing.")
@click.option("--parse-cpu-limit", type=POSITIVE_SECONDS, default=DEFAULT_PARSE_CPU_LIMIT, show_default=True,
              metavar="SECONDS", help="CPU seconds one document's parse may take; a document that needs more "
              "fails its source (a hostile or broken document must not stall the harvest).")
@lock_wait_option
@catalog_errors
def harvest(registry_path, db_path, source_ids, allow_private_network, delay, timeout, proxy, verbose, quiet, force,
            respect_backoff, refetch, shard, workers, parse_cpu_limit, scrapyd_urls, job_count, no_deploy,
            lock_wait) -> None:
    """Harvest enabled sources (or --source ID ...) into the catalog.

    Only what changed is fetched and parsed (conditional GET, content hashes). A source
    that failed recently is backing off and is skipped (recorded as 'skipped' with its next
    attempt) unless it is named with --source or --force is given.

    Exit code 0 when every source succeeded (or was skipped, or was interrupted by a stop
    request), 1 when some failed or the crawl could not run, 2 for a usage or registry
    error, 74 when the catalog file could not be written (full disk, read-only, damaged),
    75 when another illhub command kept writing to it for all of --lock-wait. Every
    source's outcome is kept in the harvest_runs table.
    """
    from illhub.harvest import UnknownSource, default_db_path, policy_from_env, run_harvest

    shard_kn = None
    if shard is not None:
        k, _, n = shard.partition("/")
        if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
            fail(f"--shard {shard!r} is not K/N with 1 <= K <= N (for example --shard 2/4)")
        shard_kn = (int(k), int(n))
    if workers != "auto" and not (workers.isdigit() and int(workers) <= 64):
        fail(f"--workers {workers!r} is not a number of processes from 0 to 64, or auto")
    registry = load_registry_or_exit(registry_path)
    db_path = db_path or default_db_path()
    log_level = {0: "ERROR", 1: "INFO"}.get(verbose, "DEBUG")
    if scrapyd_urls:
        if shard_kn is not None:
            fail("--shard and --scrapyd do not go together: --scrapyd splits the sources into jobs itself")
        dispatch(registry, db_path, scrapyd_urls, source_ids=list(source_ids) or None, verbose=verbose, quiet=quiet,
                 policy=policy_from_env(allow_private_network), delay=delay, timeout=timeout, force=force,
                 respect_backoff=True if respect_backoff else None, refetch=refetch, jobs=job_count,
                 deploy=not no_deploy, lock_wait=lock_wait, on_lock_wait=waiting_notice(db_path, lock_wait))
        return
    progress = None if quiet else RichProgress(err)
    try:
        result = run_harvest(
            registry, db_path, source_ids=list(source_ids) or None, policy=policy_from_env(allow_private_network),
            delay=delay, timeout=timeout, log_level=log_level, progress=progress, force=force,
            respect_backoff=True if respect_backoff else None, refetch=refetch, shard=shard_kn,
            workers=None if workers == "auto" else int(workers), proxy=proxy, parse_cpu_limit=parse_cpu_limit,
            lock_wait=lock_wait, on_lock_wait=waiting_notice(db_path, lock_wait),
        )
    except UnknownSource as e:
        fail(str(e))
        return
    print_summary(result, db_path)
    if result.problem is not None:
        report(result.problem)
    elif result.error:
        err.print(f"[red]error:[/] {escape(result.error)} (nothing was fetched; run with -v for the details)")
    exit_fast()
    sys.exit(result.exit_code)


class DispatchProgress(RichProgress):
    """The harvest's progress bar, with the jobs: how many are queued, running and stored,
    and a line for each job that is retried or fails."""

    def __init__(self, console) -> None:
        super().__init__(console)
        self.jobs: dict[int, object] = {}

    def job(self, job) -> None:
        self.jobs[job.number] = job
        counts: dict[str, int] = {}
        for j in self.jobs.values():
            counts[j.status] = counts.get(j.status, 0) + 1
        text = ", ".join(f"{n} {k}" for k, n in counts.items())
        if self.task is not None:
            self.progress.update(self.task, description=f"jobs: {text}")
        where = f" on {job.server.url}" if job.server is not None else ""
        if job.status == "queued" and job.error:
            self.console.print(f"[yellow]job {job.number} ({len(job.states)} sources) failed{where}, trying again:[/] "
                               f"{job.error}")
        elif job.status == "failed":
            self.console.print(f"[red]job {job.number} ({len(job.states)} sources) failed:[/] {job.error}")
        elif not self.console.is_terminal:
            self.console.print(f"  job {job.number} ({len(job.states)} sources) {job.status}{where}")


def dispatch(registry, db_path, urls: str, *, source_ids, verbose: int, quiet: bool, jobs: int | None, deploy: bool,
             **options) -> None:
    """``illhub harvest --scrapyd``: connect to the servers (deploying the egg), dispatch, report."""
    import logging

    from illhub.distributed.dispatch import DispatchOptions, connect, dispatch_harvest
    from illhub.harvest import UnknownSource

    if verbose:
        logging.basicConfig(level=logging.INFO if verbose == 1 else logging.DEBUG, format="%(levelname)s %(message)s")
    servers, problems = connect([u.strip() for u in urls.split(",") if u.strip()], deploy=deploy)
    for problem in problems:
        err.print(f"[yellow]warning:[/] {problem}")
    if not servers:
        fail("no Scrapyd server can take the harvest (see above); nothing was harvested", code=1)
    try:
        result = dispatch_harvest(registry, db_path, servers, source_ids=source_ids,
                                  progress=None if quiet else DispatchProgress(err),
                                  options=DispatchOptions(jobs=jobs), **options)
    except UnknownSource as e:
        fail(str(e))
        return
    print_summary(result, db_path)
    retried = [j for j in result.jobs if j.attempt]
    out.print(f"{len(result.jobs)} job(s) on {len(result.servers)} Scrapyd server(s)"
              + (f", {len(retried)} retried" if retried else "")
              + "".join(f"; {s.url} given up: {s.problem}" for s in result.servers if not s.alive))
    exit_fast()
    sys.exit(result.exit_code)


@click.command()
@db_option
@click.argument("shards", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@lock_wait_option
@catalog_errors
def merge(db_path, shards, lock_wait) -> None:
    """Fold catalogs harvested by other processes or machines into this one.

    \b
    For example, four harvest processes, then one catalog:
      illhub harvest --shard 1/4 --db data/shard-1.db &   (… up to --shard 4/4)
      wait; illhub merge data/shard-*.db

    A resource keeps its earliest first_seen and latest last_seen, and its content from the
    newer copy; run logs are appended once. Merging the same shard twice changes nothing.
    """
    from illhub.harvest import default_db_path
    from pipeline.dberrors import explain
    from pipeline.merge import merge_catalog
    from pipeline.store import open_db
    from pipeline.writelock import writer_lock

    db_path = db_path or default_db_path()
    for shard in shards:
        if shard.resolve() == Path(db_path).resolve():
            fail(f"{shard} is the catalog itself; name the shards to merge into {db_path}")
    with writer_lock(db_path, "merge", wait=lock_wait, on_wait=waiting_notice(db_path, lock_wait)):
        db = open_db(db_path)
        for shard in shards:
            try:
                open_db(shard, lock_wait=lock_wait).close()  # bring the shard to this version's schema
            except Exception as e:  # noqa: BLE001 - a damaged shard is named as such; the catalog is untouched
                problem = explain(e, shard)
                if problem is None:
                    raise
                report(problem)
                sys.exit(problem.exit_code)
            try:
                counts = merge_catalog(db, shard)
            except ValueError as e:
                fail(str(e))
            click.echo(f"{shard} → {db_path}: {counts.get('resources', 0)} resources, "
                       f"{counts.get('harvest_runs', 0)} harvest runs merged")
        db.close()


@click.command("check-links")
@registry_option
@db_option
@click.option("--source", "source_id", default=None, metavar="ID",
              help="Check only the links this source lists.")
@click.option("--older-than", "older_than", type=Number(min=0, max=36500), default=1.0, show_default=True,
              metavar="DAYS", help="Check only links not checked in the last DAYS days (0: every link).")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Check at most N links (never-checked first, then the longest unchecked).")
@allow_private_option("Also check links on loopback and private-network hosts, never link-local or cloud "
                      "metadata addresses (env ILLHUB_ALLOW_PRIVATE_NETWORK=1).")
@delay_option()
@timeout_option("Seconds before a request is abandoned [default: 20].")
@proxy_option
@click.option("--retries", type=click.IntRange(min=0, max=10), default=2, show_default=True,
              help="Retries after a timeout, a broken connection, a 5xx or a 429.")
@click.option("--backoff", type=SECONDS, default=2.0, metavar="SECONDS", show_default=True,
              help="Seconds before the first retry; doubled for each further retry.")
@click.option("--max-retry-after", type=Number(min=0, max=24 * MAX_SECONDS), default=60.0, metavar="SECONDS", show_default=True,
              help="Longest Retry-After (seconds) waited for; a longer one skips the host for this run.")
@click.option("-v", "--verbose", count=True, help="Show Scrapy's log (-v info, -vv debug).")
@click.option("--quiet", is_flag=True, help="No progress display.")
@lock_wait_option
@catalog_errors
def check_links(registry_path, db_path, source_id, older_than, limit, allow_private_network, delay, timeout,
                proxy, retries, backoff, max_retry_after, verbose, quiet, lock_wait) -> None:
    """Find dead links: check catalogued links politely (HEAD, GET where needed, retries).

    Every check is kept in the link_checks table and each resource's link_status is
    derived from its history: ok, redirected, blocked (the site refuses robots; the
    link probably works for a person), broken (3 failed checks in a row, in separate
    runs) or unchecked. Broken and blocked links get an archived_url (Wayback Machine).
    Exit code 0 when the run completed (broken links are data, not an error), 1 when
    the crawl stopped before every selected link was checked, 2 for a usage error, 74 or
    75 as for harvest (the catalog file cannot be used; another command is writing to it).
    """
    from harvesters.linkcheck import LinkCheckOptions
    from illhub.harvest import default_db_path, policy_from_env, user_agent
    from illhub.linkcheck import UnknownLinkSource, run_link_check
    from pipeline.version import USER_AGENT

    db_path = db_path or default_db_path()
    if not Path(db_path).exists():
        fail(f"{db_path} does not exist yet: run 'illhub harvest' first")
    agent = USER_AGENT
    if Path(registry_path).exists():
        from illhub.registry import RegistryError, load_registry

        try:
            agent = user_agent(load_registry(registry_path))
        except RegistryError as e:
            err.print(plain(f"warning: {registry_path} has {len(e.problems)} problem(s) (run 'illhub validate'); "
                            "checking links with the default User-Agent"))
    log_level = {0: "ERROR", 1: "INFO"}.get(verbose, "DEBUG")
    try:
        result = run_link_check(
            db_path, source_id=source_id, older_than_days=older_than, limit=limit,
            policy=policy_from_env(allow_private_network), delay=delay, timeout=timeout,
            options=LinkCheckOptions(retries=retries, backoff=backoff, max_retry_after=max_retry_after),
            user_agent=agent, log_level=log_level, progress=None if quiet else LinkProgress(err), proxy=proxy,
            lock_wait=lock_wait, on_lock_wait=waiting_notice(db_path, lock_wait),
        )
    except UnknownLinkSource as e:
        fail(f"--source {source_id}: {e}")
        return
    print_link_summary(result, db_path)
    sys.exit(1 if result.errors else 0)


@click.command()
@db_option
@click.option("--registry", "registry_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="First copy this registry's source topics, systems and organizations into the catalog "
                   "(otherwise those recorded by the last harvest are used).")
@lock_wait_option
@catalog_errors
def reprocess(db_path, registry_path, lock_wait) -> None:
    """Rerun normalization and classification over stored raw entries (no network).

    Run it after editing data/taxonomy.yaml: topics, systems and classified_by are
    recomputed for every resource; last_changed moves only where something changed.
    Prints how many resources carry each topic before and after.
    """
    from illhub.harvest import default_db_path
    from pipeline.reprocess import reprocess as run_reprocess
    from pipeline.store import open_db, sync_sources
    from pipeline.writelock import writer_lock

    taxonomy = load_taxonomy_or_exit()
    db_path = db_path or default_db_path()
    if not Path(db_path).exists():
        fail(f"{db_path} does not exist yet: run 'illhub harvest' first")
    registry = load_registry_or_exit(registry_path) if registry_path else None
    with writer_lock(db_path, "reprocess", wait=lock_wait, on_wait=waiting_notice(db_path, lock_wait)):
        db = open_db(db_path)
        if registry is not None:
            sync_sources(db, [s.row() for s in registry.sources])
        result = run_reprocess(db, taxonomy)
        db.close()
    out.print(f"reprocessed {result.resources} resources in {escape(db_path)}: {result.changed} changed, "
              f"{result.reasons_only} with new reasons only, {result.unchanged} unchanged")
    if result.topics_added or result.topics_removed:
        added = ", ".join(f"{k} +{v}" for k, v in sorted(result.topics_added.items()))
        removed = ", ".join(f"{k} -{v}" for k, v in sorted(result.topics_removed.items()))
        out.print("topics: " + "; ".join(x for x in (added, removed) if x))
    changes = result.topic_changes()
    if changes:
        width = max(len(t) for t, _, _ in changes)
        out.print("resources per topic, before → after:")
        for topic, before, after in changes:
            out.print(f"  {topic:<{width}}  {before:>6} → {after:<6} ({after - before:+d})")
    if result.no_raw or result.unusable:
        out.print(f"{result.no_raw + result.unusable} resources have no usable raw entry and were left as they are")
    if result.url_changed:
        out.print(f"{result.url_changed} resources now normalize to another URL; harvest again to move them")


@click.command()
@registry_option
@db_option
@click.option("--list", "list_only", is_flag=True, help="Print every source's next run time and exit.")
@click.option("--misfire-grace", type=Number(min=0, min_open=True, max=24 * 366), default=6.0, show_default=True, metavar="HOURS",
              help="A run that could not start on time still starts up to this many hours late.")
@click.option("--stop-timeout", type=SECONDS, default=30.0, show_default=True, metavar="SECONDS",
              help="On SIGTERM/SIGINT: how long a running harvest may go on before it is asked to stop "
                   "(and as long again before it is killed).")
@click.option("--reload-interval", type=Number(min=1, max=24 * MAX_SECONDS), default=30.0, show_default=True, metavar="SECONDS",
              help="How often to check the registry for changes.")
@allow_private_option("Passed on to every harvest.")
@delay_option("Passed on to every harvest.")
@proxy_option  # passed on through ILLHUB_PROXY: never in a logged command line
@click.option("--quiet", is_flag=True, help="Log only warnings and errors (a run that failed, a registry with "
              "problems), not every start and finish.")
@catalog_errors
def schedule(registry_path, db_path, list_only, misfire_grace, stop_timeout, reload_interval,
             allow_private_network, delay, proxy, quiet) -> None:
    """Run harvests on each source's schedule, in the foreground (for systemd or a container).

    Each source's `schedule` (hourly, daily, nightly, weekly or a cron expression, in UTC;
    the registry's defaults.schedule when unset) becomes a trigger; sources sharing a
    schedule are harvested together, each harvest in its own subprocess. Runs missed while
    the scheduler was down are caught up once at start-up. SIGTERM or SIGINT stops it
    gracefully. The registry is re-read when it changes. Links are checked (illhub
    check-links) on defaults.link_check_schedule, weekly unless set.
    """
    import logging
    from datetime import UTC, datetime, timedelta

    from illhub.harvest import default_db_path
    from illhub.scheduler import HarvestRunner, HarvestScheduler, harvest_command, make_scheduler, next_runs

    registry = load_registry_or_exit(registry_path)
    db_path = db_path or default_db_path()
    if list_only:
        show_schedule(registry, db_path, next_runs(registry, datetime.now(UTC)))
        return
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    extra = (["--allow-private-network"] if allow_private_network else []) + (
        ["--delay", str(delay)] if delay is not None else [])
    if proxy:
        # Harvests and link checks inherit it: a command line is logged and visible to others.
        os.environ["ILLHUB_PROXY"] = proxy
    runner = HarvestRunner(lambda ids: harvest_command(registry_path, db_path, ids, extra), db_path=db_path,
                           stop_timeout=stop_timeout)
    hs = HarvestScheduler(registry_path, db_path, runner=runner, reload_interval=reload_interval,
                          scheduler=make_scheduler(misfire_grace=timedelta(hours=misfire_grace)),
                          link_check_args=extra)
    hs.load()
    if not quiet:
        err.print(plain(f"illhub schedule: {len(registry.enabled())} sources, registry {registry_path}, "
                        f"catalog {db_path} (Ctrl-C or SIGTERM to stop)"))
    hs.start()


def show_schedule(registry, db_path: Path, rows) -> None:
    """Print the schedule (``rows`` from :func:`illhub.scheduler.next_runs`) with each source's
    health from the catalog, when there is one."""
    from datetime import UTC, datetime

    from illhub.linkcheck import link_check_schedule
    from illhub.scheduler import trigger_for

    health = {}
    if Path(db_path).exists():
        from pipeline.health import load_health
        from pipeline.store import open_db

        db = open_db(db_path)
        health = load_health(db)
        db.close()
    sched = link_check_schedule(registry)
    print_schedule(registry, rows, health, sched, trigger_for(sched).get_next_fire_time(None, datetime.now(UTC)))
