"""The ``illhub`` command line."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harvesters.settings import DEFAULT_DELAY, DEFAULT_TIMEOUT
from pipeline.version import __version__

REGISTRY_DEFAULT = "registry.yaml"

out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def registry_option(f):
    return click.option(
        "--registry", "registry_path", default=REGISTRY_DEFAULT, show_default=True, envvar="ILLHUB_REGISTRY",
        type=click.Path(dir_okay=False, path_type=Path), help="The source registry (env ILLHUB_REGISTRY).",
    )(f)


def db_option(f):
    return click.option(
        "--db", "db_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
        help="The SQLite catalog [default: data/illhub.db, or env ILLHUB_DB].",
    )(f)


def load_taxonomy_or_exit():
    from pipeline.taxonomy import TaxonomyError, default_taxonomy

    try:
        return default_taxonomy()
    except TaxonomyError as e:
        for problem in e.problems:
            click.echo(problem, err=True)
        click.echo(f"{len(e.problems)} problem(s) in {e.path}; fix them and run 'illhub validate'.", err=True)
        sys.exit(2)


def load_registry_or_exit(path: Path):
    from illhub.registry import RegistryError, load_registry

    taxonomy = load_taxonomy_or_exit()
    try:
        return load_registry(path, taxonomy)
    except RegistryError as e:
        for problem in e.problems:
            click.echo(problem, err=True)
        click.echo(f"{len(e.problems)} problem(s) in {path}; fix them and run 'illhub validate'.", err=True)
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="illhub")
def cli() -> None:
    """illhub: harvest interlibrary loan resources into one searchable catalog.

    \b
    Quick start:
      illhub demo              harvest the bundled demo web and browse it
      illhub validate          check registry.yaml
      illhub harvest           harvest every enabled source into data/illhub.db
      illhub serve             browse the catalog with Datasette
      illhub check-links       find dead links (history and status in the catalog)
    """


@cli.command()
@registry_option
def validate(registry_path: Path) -> None:
    """Check the registry and the taxonomy; list every problem with its source and field."""
    taxonomy = load_taxonomy_or_exit()
    registry = load_registry_or_exit(registry_path)
    kinds: dict[str, int] = {}
    for s in registry.sources:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    click.echo(f"{registry_path}: {len(registry.sources)} sources OK ({summary})")
    click.echo(f"{taxonomy.path}: {len(taxonomy.topics)} topics and {len(taxonomy.systems)} systems OK")


class BarProgress:
    """A transient progress bar on stderr, for long runs; subclasses say what one step is."""

    label = "working"

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True,
        )
        self.task = None

    def start(self, total: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(self.label, total=total)

    def stop(self) -> None:
        self.progress.stop()


class RichProgress(BarProgress):
    """Progress display for long harvests (on stderr; a line per source when not a terminal)."""

    label = "harvesting"

    def advance(self, state) -> None:
        self.progress.update(self.task, advance=1, description=f"{state.source.id}: {state.status}")
        if not self.console.is_terminal:
            self.console.print(f"  done {state.source.id}: {state.status}")


STATUS_STYLE = {"ok": "green", "warning": "yellow", "failed": "red", "deferred": "cyan", "skipped": "cyan",
                "interrupted": "magenta"}


@cli.command()
@registry_option
@db_option
@click.option("--source", "source_ids", multiple=True, metavar="ID", help="Harvest only this source (repeatable).")
@click.option("--allow-private-network", is_flag=True, help="Also fetch from loopback and private-network hosts "
              "(env ILLHUB_ALLOW_PRIVATE_NETWORK=1).")
@click.option("--delay", type=float, default=None, help=f"Seconds between requests to one host [default: {DEFAULT_DELAY:g}].")
@click.option("--timeout", type=float, default=None, help=f"Seconds before a download is abandoned [default: {DEFAULT_TIMEOUT:g}].")
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
def harvest(registry_path, db_path, source_ids, allow_private_network, delay, timeout, verbose, quiet, force,
            respect_backoff, refetch, shard, workers) -> None:
    """Harvest enabled sources (or --source ID ...) into the catalog.

    Only what changed is fetched and parsed (conditional GET, content hashes). A source
    that failed recently is backing off and is skipped (recorded as 'skipped' with its next
    attempt) unless it is named with --source or --force is given.

    Exit code 0 when every source succeeded (or was skipped, or was interrupted by a stop
    request), 1 when some failed or the crawl could not run, 2 for a usage or registry
    error. Every source's outcome is kept in the harvest_runs table.
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
    progress = None if quiet else RichProgress(err)
    try:
        result = run_harvest(
            registry, db_path, source_ids=list(source_ids) or None, policy=policy_from_env(allow_private_network),
            delay=delay, timeout=timeout, log_level=log_level, progress=progress, force=force,
            respect_backoff=True if respect_backoff else None, refetch=refetch, shard=shard_kn,
            workers=None if workers == "auto" else int(workers),
        )
    except UnknownSource as e:
        fail(str(e))
        return
    print_summary(result, db_path)
    if result.error:
        err.print(f"[red]error:[/] {result.error} (nothing was fetched; run with -v for the details)")
    global _fast_exit
    _fast_exit = True
    sys.exit(result.exit_code)


@cli.command()
@db_option
@click.argument("shards", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def merge(db_path, shards) -> None:
    """Fold catalogs harvested by other processes or machines into this one.

    \b
    For example, four harvest processes, then one catalog:
      illhub harvest --shard 1/4 --db data/shard-1.db &   (… up to --shard 4/4)
      wait; illhub merge data/shard-*.db

    A resource keeps its earliest first_seen and latest last_seen, and its content from the
    newer copy; run logs are appended once. Merging the same shard twice changes nothing.
    """
    from illhub.harvest import default_db_path
    from pipeline.merge import merge_catalog
    from pipeline.store import open_db

    db_path = db_path or default_db_path()
    db = open_db(db_path)
    for shard in shards:
        if shard.resolve() == Path(db_path).resolve():
            fail(f"{shard} is the catalog itself; name the shards to merge into {db_path}")
        open_db(shard).close()  # bring the shard to this version's schema
        try:
            counts = merge_catalog(db, shard)
        except ValueError as e:
            fail(str(e))
        click.echo(f"{shard} → {db_path}: {counts.get('resources', 0)} resources, "
                   f"{counts.get('harvest_runs', 0)} harvest runs merged")
    db.close()


#: A harvest with more sources than this that were ok lists only the others one by one.
SUMMARY_OK_ROWS = 40


def print_summary(result, db_path: Path) -> None:
    table = Table(title=f"harvest {result.run_group} → {db_path}", title_justify="left")
    for col, kw in (("source", {}), ("status", {}), ("seen", {"justify": "right"}), ("new", {"justify": "right"}),
                    ("updated", {"justify": "right"}), ("http", {"justify": "right"}), ("note", {"overflow": "fold"})):
        table.add_column(col, **kw)
    rows = sorted(result.states, key=lambda s: (s.status == "ok", s.source.id))
    ok = [s for s in rows if s.status == "ok"]
    if len(ok) > SUMMARY_OK_ROWS:
        # hundreds of "ok" rows would bury the few that need a look
        rows = [s for s in rows if s.status != "ok"]
    for s in rows:
        note = "; ".join(dict.fromkeys(s.errors + ([s.deferred] if s.deferred else []) + s.warnings
                                       + ([s.skip_reason] if s.skip_reason else [])))
        style = STATUS_STYLE.get(s.status, "")
        table.add_row(s.source.id, f"[{style}]{s.status}[/]", str(s.seen), str(s.new), str(s.updated),
                      str(s.http_status or ""), note[:300])
    out.print(table)
    if len(ok) > SUMMARY_OK_ROWS:
        out.print(f"{len(ok)} sources ok ({sum(s.seen for s in ok)} items seen, {sum(s.new for s in ok)} new, "
                  f"{sum(s.updated for s in ok)} updated) are not listed one by one: 'illhub sources' shows each")
    counts: dict[str, int] = {}
    for s in result.states:
        counts[s.status] = counts.get(s.status, 0) + 1
    out.print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no sources harvested")
    if result.links:
        out.print(f"{len(result.links)} recording(s) or slide deck(s) linked to their conference sessions")


class LinkProgress(BarProgress):
    """Progress display for link checks (on stderr; transient)."""

    label = "checking links"

    def advance(self, record) -> None:
        self.progress.update(self.task, advance=1, description=f"{record.outcome}: {record.url[:60]}")


OUTCOME_STYLE = {"ok": "green", "redirected": "cyan", "blocked": "yellow", "failed": "red", "skipped": "dim"}


@cli.command("check-links")
@registry_option
@db_option
@click.option("--source", "source_id", default=None, metavar="ID",
              help="Check only the links this source lists.")
@click.option("--older-than", "older_than", type=click.FloatRange(min=0), default=1.0, show_default=True,
              metavar="DAYS", help="Check only links not checked in the last DAYS days (0: every link).")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Check at most N links (never-checked first, then the longest unchecked).")
@click.option("--allow-private-network", is_flag=True, help="Also check links on loopback and private-network "
              "hosts (env ILLHUB_ALLOW_PRIVATE_NETWORK=1).")
@click.option("--delay", type=float, default=None, help="Seconds between requests to one host [default: 1.0].")
@click.option("--timeout", type=float, default=None, help="Seconds before a request is abandoned [default: 20].")
@click.option("--retries", type=click.IntRange(min=0, max=10), default=2, show_default=True,
              help="Retries after a timeout, a broken connection, a 5xx or a 429.")
@click.option("--backoff", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Seconds before the first retry; doubled for each further retry.")
@click.option("--max-retry-after", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Longest Retry-After (seconds) waited for; a longer one skips the host for this run.")
@click.option("-v", "--verbose", count=True, help="Show Scrapy's log (-v info, -vv debug).")
@click.option("--quiet", is_flag=True, help="No progress display.")
def check_links(registry_path, db_path, source_id, older_than, limit, allow_private_network, delay, timeout,
                retries, backoff, max_retry_after, verbose, quiet) -> None:
    """Find dead links: check catalogued links politely (HEAD, GET where needed, retries).

    Every check is kept in the link_checks table and each resource's link_status is
    derived from its history: ok, redirected, blocked (the site refuses robots; the
    link probably works for a person), broken (3 failed checks in a row, in separate
    runs) or unchecked. Broken and blocked links get an archived_url (Wayback Machine).
    Exit code 0 when the run completed (broken links are data, not an error), 1 when
    the crawl stopped before every selected link was checked, 2 for a usage error.
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
            err.print(f"warning: {registry_path} has {len(e.problems)} problem(s) (run 'illhub validate'); "
                      "checking links with the default User-Agent")
    log_level = {0: "ERROR", 1: "INFO"}.get(verbose, "DEBUG")
    try:
        result = run_link_check(
            db_path, source_id=source_id, older_than_days=older_than, limit=limit,
            policy=policy_from_env(allow_private_network), delay=delay, timeout=timeout,
            options=LinkCheckOptions(retries=retries, backoff=backoff, max_retry_after=max_retry_after),
            user_agent=agent, log_level=log_level, progress=None if quiet else LinkProgress(err),
        )
    except UnknownLinkSource as e:
        fail(f"--source {source_id}: {e}")
        return
    print_link_summary(result, db_path)
    sys.exit(1 if result.errors else 0)


def print_link_summary(result, db_path: Path) -> None:
    if not result.selected:
        out.print(f"link check {result.run_id} → {db_path}: no links due (all checked recently; "
                  "use --older-than 0 to check them anyway)")
        return
    counts = ", ".join(f"[{OUTCOME_STYLE.get(k, '')}]{n} {k}[/]" for k, n in result.counts.items() if n)
    out.print(f"link check {result.run_id} → {db_path}: checked {result.checked} of {result.selected} links "
              f"({result.requests} requests): {counts or 'nothing'}")
    for title, transitions in (("now broken", result.newly_broken), ("recovered", result.recovered)):
        if transitions:
            table = Table(title=f"{len(transitions)} {title}", title_justify="left")
            table.add_column("resource")
            table.add_column("url", overflow="fold")
            for t in transitions[:50]:
                table.add_row(t.resource_id, t.url)
            out.print(table)
    for e in result.errors:
        out.print(f"[red]{e}[/]")


@cli.command()
@registry_option
@db_option
@click.option("--list", "list_only", is_flag=True, help="Print every source's next run time and exit.")
@click.option("--misfire-grace", type=float, default=6.0, show_default=True, metavar="HOURS",
              help="A run that could not start on time still starts up to this many hours late.")
@click.option("--stop-timeout", type=float, default=30.0, show_default=True, metavar="SECONDS",
              help="On SIGTERM/SIGINT: how long a running harvest may go on before it is asked to stop "
                   "(and as long again before it is killed).")
@click.option("--reload-interval", type=float, default=30.0, show_default=True, metavar="SECONDS",
              help="How often to check the registry for changes.")
@click.option("--allow-private-network", is_flag=True, help="Passed on to every harvest.")
@click.option("--delay", type=float, default=None, help="Passed on to every harvest.")
def schedule(registry_path, db_path, list_only, misfire_grace, stop_timeout, reload_interval,
             allow_private_network, delay) -> None:
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
        print_schedule(registry, db_path, next_runs(registry, datetime.now(UTC)))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    extra = (["--allow-private-network"] if allow_private_network else []) + (
        ["--delay", str(delay)] if delay is not None else [])
    runner = HarvestRunner(lambda ids: harvest_command(registry_path, db_path, ids, extra), db_path=db_path,
                           stop_timeout=stop_timeout)
    hs = HarvestScheduler(registry_path, db_path, runner=runner, reload_interval=reload_interval,
                          scheduler=make_scheduler(misfire_grace=timedelta(hours=misfire_grace)),
                          link_check_args=extra)
    hs.load()
    err.print(f"illhub schedule: {len(registry.enabled())} sources, registry {registry_path}, catalog {db_path} "
              "(Ctrl-C or SIGTERM to stop)")
    hs.start()


def print_schedule(registry, db_path: Path, rows) -> None:
    health = {}
    if Path(db_path).exists():
        from pipeline.health import load_health
        from pipeline.store import open_db

        db = open_db(db_path)
        health = load_health(db)
        db.close()
    table = Table(title=f"schedule of {registry.path} (UTC)", title_justify="left")
    for col in ("source", "schedule", "next run", "backing off until", "attention"):
        table.add_column(col)
    for sid, sched, when in rows:
        h = health.get(sid)
        table.add_row(sid, sched, when.strftime("%Y-%m-%d %H:%M UTC") if when else "never",
                      (h.next_attempt or "") if h and h.consecutive_failures else "",
                      f"{h.consecutive_failures} failures" if h and h.needs_attention else "")
    out.print(table)
    disabled = [s.id for s in registry.sources if not s.enabled]
    if disabled:
        out.print(f"not scheduled (enabled: false): {', '.join(disabled)}")
    from datetime import UTC, datetime

    from illhub.linkcheck import link_check_schedule
    from illhub.scheduler import trigger_for

    sched = link_check_schedule(registry)
    when = trigger_for(sched).get_next_fire_time(None, datetime.now(UTC))
    out.print(f"link checks (defaults.link_check_schedule): {sched}, next run "
              f"{when.strftime('%Y-%m-%d %H:%M UTC') if when else 'never'}")


@cli.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8001, show_default=True, type=int)
@click.option("--public", is_flag=True, help="Serve with the public (internet-facing) profile: read-only, no "
              "arbitrary SQL, no database download, robots rules for crawlers.")
@click.option("--allow-sql", is_flag=True, help="With --public: allow arbitrary SQL queries anyway.")
@click.option("--allow-download", is_flag=True, help="With --public and --immutable: allow downloading the whole "
              "database file.")
@click.option("--immutable", is_flag=True, help="Serve the file as an unchanging snapshot (nothing may write to it "
              "while it is served; harvest into a copy and restart).")
@click.option("--robots", type=click.Choice(["allow", "pages", "block"]), default=None,
              help="robots.txt: allow every crawler, allow only pages for people (not exports or SQL), or "
              "block all [default: pages with --public, else allow].")
def serve(db_path, host, port, public, allow_sql, allow_download, immutable, robots) -> None:
    """Browse the catalog with Datasette.

    The catalog's schema is brought up to date first (as a harvest would), unless --immutable.
    """
    from illhub.harvest import default_db_path
    from illhub.serve import serve_datasette

    db_path = db_path or default_db_path()
    if not Path(db_path).exists():
        fail(f"{db_path} does not exist yet: run 'illhub harvest' (or 'illhub demo') first")
    if (allow_sql or allow_download) and not public:
        fail("--allow-sql and --allow-download only apply with --public (the local profile allows SQL)")
    if allow_download and not immutable:
        fail("--allow-download needs --immutable: Datasette offers only files nothing writes to for download")
    if not immutable:
        from illhub.serve import prepare_catalog

        prepare_catalog(Path(db_path))
    profile = "public profile" if public else "local profile"
    click.echo(f"illhub: serving {db_path} at http://{host}:{port}/ ({profile}; Ctrl-C to stop)")
    sys.exit(serve_datasette(Path(db_path), host=host, port=port, public=public, allow_sql=allow_sql,
                             allow_download=allow_download, immutable=immutable, robots=robots))


@cli.command()
@db_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "jsonl", "opml"]), default="csv", show_default=True,
              help="csv, json or jsonl: resources from the catalog; opml: the registry's feeds, for a feed reader.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
@click.option("--topic", "topics", multiple=True, help="Only resources with this topic (repeatable: any of them).")
@click.option("--source", "sources", multiple=True, help="Only resources from this source (repeatable).")
@click.option("--type", "content_types", multiple=True, help="Only this content type (repeatable).")
@click.option("--since", default=None, help="Only resources first seen on or after this date (YYYY-MM-DD).")
@registry_option
def export(db_path, fmt, out_path, topics, sources, content_types, since, registry_path) -> None:
    """Export resources as CSV, JSON or JSON lines, with filters; or the registry's feeds as OPML.

    \b
    --format opml lists every enabled feed and YouTube source of the registry (grouped by
    organization) so people can subscribe in their own feed reader; it needs no catalog.
    """
    if fmt == "opml":
        export_opml(registry_path, out_path, topics, sources)
        return
    from illhub.harvest import default_db_path
    from pipeline.export import ExportFilter, export_resources
    from pipeline.normalize import parse_date
    from pipeline.store import open_db

    db_path = db_path or default_db_path()
    if not Path(db_path).exists():
        fail(f"{db_path} does not exist yet: run 'illhub harvest' first")
    since_iso = None
    if since:
        since_iso = parse_date(since)
        if since_iso is None:
            fail(f"--since {since!r} is not a date; use YYYY-MM-DD")
    db = open_db(db_path)
    filt = ExportFilter(topics=list(topics), sources=list(sources), content_types=list(content_types), since=since_iso)
    if out_path:
        with open(out_path, "w", encoding="utf-8", newline="") as fh:
            n = export_resources(db, fh, fmt, filt)
        err.print(f"wrote {n} resources to {out_path}")
    else:
        export_resources(db, sys.stdout, fmt, filt)


def export_opml(registry_path: Path, out_path: Path | None, topics, sources) -> None:
    from illhub.opml import write_opml

    registry = load_registry_or_exit(registry_path)
    if topics or sources:
        keep = [s for s in registry.sources if (not topics or set(topics) & set(s.topics))
                and (not sources or s.id in sources)]
        registry = registry.model_copy(update={"sources": keep})
    if out_path:
        with open(out_path, "w", encoding="utf-8") as fh:
            n, skipped = write_opml(registry, fh)
        err.print(f"wrote {n} feeds to {out_path}")
    else:
        n, skipped = write_opml(registry, sys.stdout)
    if skipped:
        err.print(f"left out (no feed URL known without the network): {', '.join(skipped)}")


@cli.command("add-source")
@click.argument("url")
@click.option("--id", "source_id", default=None, help="The new source's id (a slug) [default: from its name].")
@click.option("--name", default=None, help="The source's name [default: from the page or feed title].")
@click.option("--organization", default=None, help="Who publishes it [default: from the page's metadata].")
@click.option("--topics", default=None, metavar="A,B",
              help="Comma-separated topic ids [default: guessed from the page with data/taxonomy.yaml]; "
                   "--topics '' for none.")
@click.option("--kind", type=click.Choice(["feed", "youtube", "wordpress", "zendesk", "sitemap", "crawl"]),
              default=None, help="Harvest it this way instead of the kind discovery prefers.")
@click.option("--dry-run", is_flag=True, help="Print the entry; do not write the registry.")
@registry_option
@click.option("--allow-private-network", is_flag=True, help="Also fetch from loopback and private-network hosts.")
@click.option("--delay", type=float, default=0.5, show_default=True, help="Seconds between requests to the host.")
@click.option("--timeout", type=float, default=None, help="Seconds before a download is abandoned [default: 20].")
@click.option("-v", "--verbose", count=True, help="Show Scrapy's log (-v info, -vv debug).")
def add_source(url, source_id, name, organization, topics, kind, dry_run, registry_path, allow_private_network,
               delay, timeout, verbose) -> None:
    """Discover how to harvest URL and add it to the registry.

    \b
    Fetches URL (same downloader, network guard and robots.txt policy as a harvest) and
    picks the best way to harvest it: the URL itself is a feed (feed; youtube for a
    YouTube feed); a YouTube channel or playlist page (youtube); a WordPress site
    (wordpress); a Zendesk help center (zendesk); a feed the page links to (feed); a
    sitemap named by the site's robots.txt (sitemap, limited to the page's section);
    otherwise a crawl of the page's section (crawl). It proposes the name, organization
    and topics, prints the entry, validates it with the whole registry and appends it to
    the registry, keeping every other line as it was.

    \b
    Exit codes: 0 added (or printed with --dry-run); 1 the URL could not be fetched or
    holds nothing harvestable; 2 the entry was refused (duplicate id or URL, invalid
    entry, kind not available). On any failure the registry is left untouched.
    """
    from harvesters.discovery_spider import run_discovery
    from illhub.add_source import AddSourceError, check_url, duplicate_of, prepare, render_entry, write_atomically
    from illhub.harvest import policy_from_env, user_agent
    from illhub.registry import RegistryError

    taxonomy = load_taxonomy_or_exit()
    registry = load_registry_or_exit(registry_path)
    topic_list = None if topics is None else [t.strip() for t in topics.split(",") if t.strip()]
    try:
        url = check_url(url)
        dup = duplicate_of(registry.sources, [url])
        if dup is not None:
            raise AddSourceError(f"{registry_path}: source {dup.id!r} ({dup.kind}) already harvests {dup.url}; "
                                 "edit that entry instead of adding another. Nothing was written.")
        err.print(f"discovering {url} …")
        result = run_discovery(url, policy=policy_from_env(allow_private_network).value, delay=delay,
                               timeout=timeout, kind=kind, taxonomy=taxonomy, user_agent=user_agent(registry),
                               log_level={0: "CRITICAL", 1: "INFO"}.get(verbose, "DEBUG"))
        proposal = result.get("proposal")
        problem = result.get("error") or (proposal.error if proposal is not None else "no answer")
        if proposal is None or proposal.kind is None:
            hint = ("The site could not be reached or asked us to come back later: check the URL, then try "
                    "again later." if result.get("deferred") else
                    "Check the URL in a browser; if it is right, try a more specific page (a blog's feed, a "
                    "help center's home page), choose a way with --kind, or add the source by hand.")
            raise AddSourceError(f"could not add {url}: {problem.rstrip('.')}. {hint} Nothing was written.", code=1)
        entry, new_text = prepare(registry_path, proposal, source_id=source_id, name=name, topics=topic_list,
                                  organization=organization, taxonomy=taxonomy,
                                  extra_urls=[result.get("final_url") or url])
    except AddSourceError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.code)
    except RegistryError as e:  # the registry changed under us
        click.echo("\n".join(e.problems), err=True)
        sys.exit(2)
    from illhub.add_source import comment_for

    block = render_entry(entry, comment_for(entry, proposal))
    click.echo(block, nl=False)
    for topic, why in proposal.topic_reasons.items():
        if topic in (entry.get("topics") or []):
            err.print(f"  topic {topic}: {why}")
    if dry_run:
        err.print(f"dry run: {registry_path} not changed")
        return
    write_atomically(registry_path, new_text)
    err.print(f"added {entry['id']!r} to {registry_path}; try it with: illhub harvest --source {entry['id']}")


@cli.command()
@registry_option
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def sources(registry_path, db_path, as_json) -> None:
    """List the registry's sources with each one's last harvest status from the catalog."""
    import json

    from illhub.harvest import default_db_path
    from illhub.sources import source_statuses

    registry = load_registry_or_exit(registry_path)
    rows = source_statuses(registry, db_path or default_db_path())
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{len(rows)} sources in {registry_path}", title_justify="left")
    for col, kw in (("id", {}), ("kind", {}), ("organization", {}), ("topics", {}), ("status", {}),
                    ("last run", {}), ("resources", {"justify": "right"}), ("note", {"overflow": "fold"})):
        table.add_column(col, **kw)
    for r in rows:
        style = STATUS_STYLE.get(r["status"], "dim")
        table.add_row(r["id"], r["kind"], r["organization"] or "", ", ".join(r["topics"]),
                      f"[{style}]{r['status']}[/]", r["last_run"] or "", str(r["resources"]),
                      (r["error"] or r["warning"] or "")[:200])
    out.print(table)


@cli.command()
@db_option
@click.option("--registry", "registry_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="First copy this registry's source topics, systems and organizations into the catalog "
                   "(otherwise those recorded by the last harvest are used).")
def reprocess(db_path, registry_path) -> None:
    """Rerun normalization and classification over stored raw entries (no network).

    Run it after editing data/taxonomy.yaml: topics, systems and classified_by are
    recomputed for every resource; last_changed moves only where something changed.
    """
    from illhub.harvest import default_db_path
    from pipeline.reprocess import reprocess as run_reprocess
    from pipeline.store import open_db, sync_sources

    taxonomy = load_taxonomy_or_exit()
    db_path = db_path or default_db_path()
    if not Path(db_path).exists():
        fail(f"{db_path} does not exist yet: run 'illhub harvest' first")
    db = open_db(db_path)
    if registry_path:
        registry = load_registry_or_exit(registry_path)
        sync_sources(db, [s.row() for s in registry.sources])
    result = run_reprocess(db, taxonomy)
    db.close()
    out.print(f"reprocessed {result.resources} resources in {db_path}: {result.changed} changed, "
              f"{result.reasons_only} with new reasons only, {result.unchanged} unchanged")
    if result.topics_added or result.topics_removed:
        added = ", ".join(f"{k} +{v}" for k, v in sorted(result.topics_added.items()))
        removed = ", ".join(f"{k} -{v}" for k, v in sorted(result.topics_removed.items()))
        out.print("topics: " + "; ".join(x for x in (added, removed) if x))
    if result.no_raw or result.unusable:
        out.print(f"{result.no_raw + result.unusable} resources have no usable raw entry and were left as they are")
    if result.url_changed:
        out.print(f"{result.url_changed} resources now normalize to another URL; harvest again to move them")


@cli.command()
@click.option("--db", "db_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the demo catalog [default: data/demo.db].")
@click.option("--port", default=8001, show_default=True, type=int, help="Datasette's port.")
@click.option("--no-serve", is_flag=True, help="Harvest the demo web, print the summary and stop.")
def demo(db_path, port, no_serve) -> None:
    """Serve the bundled demo web on loopback, harvest it, and browse the result."""
    from illhub.demo import run_demo

    sys.exit(run_demo(db_path=db_path, port=port, serve=not no_serve))


#: Set by a command whose process has nothing left to tidy when it ends (a harvest, once its
#: catalog is closed and its summary printed): main() then leaves with os._exit after flushing
#: the output, without the interpreter's teardown of Scrapy, Twisted and the rest (0.1-0.2 s
#: of a re-harvest that otherwise takes about 1.5 s).
_fast_exit = False


def main() -> None:
    try:
        cli(prog_name="illhub")
    except SystemExit as e:
        if not _fast_exit:
            raise
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)


if __name__ == "__main__":
    main()
