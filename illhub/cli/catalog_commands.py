"""The commands that show the catalog: ``serve``, ``publish``, ``export`` and ``demo``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from illhub.cli.catalogfile import catalog_errors
from illhub.cli.options import PORT, db_option, fail, load_registry_or_exit, load_taxonomy_or_exit, registry_option
from illhub.console import err, plain


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8001, show_default=True, type=PORT)
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
@click.option("--workers", default="1", metavar="N", show_default=True,
              help="Serve with N processes, for a public hub on a machine with several cores (one per core): "
              "one process answers one request's Python at a time. Each worker keeps its own facet-count "
              "cache and warms it, so memory and the warming after each harvest are per worker.")
@catalog_errors
def serve(db_path, host, port, public, allow_sql, allow_download, immutable, robots, workers) -> None:
    """Browse the catalog with Datasette.

    The catalog's schema is brought up to date first (as a harvest would), unless --immutable.
    """
    from illhub.harvest import default_db_path
    from illhub.serve import MAX_WORKERS, port_problem, serve_datasette

    if not (workers.isdigit() and 1 <= int(workers) <= MAX_WORKERS):
        fail(f"--workers {workers!r} is not a number of processes from 1 to {MAX_WORKERS}")
    db_path = db_path or default_db_path()
    if not Path(db_path).exists():
        fail(f"{db_path} does not exist yet: run 'illhub harvest' (or 'illhub demo') first")
    if (allow_sql or allow_download) and not public:
        fail("--allow-sql and --allow-download only apply with --public (the local profile allows SQL)")
    if allow_download and not immutable:
        fail("--allow-download needs --immutable: Datasette offers only files nothing writes to for download")
    if not immutable:
        from catalog.app import prepare_catalog

        prepare_catalog(Path(db_path))
    # After the catalog's own checks (a damaged catalog is the first thing to say), before "serving".
    busy = port_problem(host, port)
    if busy:
        fail(busy, code=1)
    profile = "public profile" if public else "local profile"
    if int(workers) > 1:
        profile += f", {workers} worker processes"
    click.echo(f"illhub: serving {db_path} at http://{host}:{port}/ ({profile}; Ctrl-C to stop)")
    sys.exit(serve_datasette(Path(db_path), host=host, port=port, workers=int(workers), public=public,
                             allow_sql=allow_sql, allow_download=allow_download, immutable=immutable, robots=robots))


@click.command()
@db_option
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def publish(db_path, directory) -> None:
    """Publish a snapshot of the catalog into DIRECTORY, for read-only replicas.

    \b
    A consistent, compact copy (VACUUM INTO, safe while a harvest writes), made ready for
    'illhub serve --public --immutable' and checked by serving it that way before it replaces
    the previous snapshot; beside it, NAME.json with its resource count and SHA-256. Then copy
    the folder to each replica, for example:
      illhub publish publish/ && rsync -a publish/ replica-1:/srv/illhub/
    """
    from illhub.harvest import default_db_path
    from illhub.publish import PublishError
    from illhub.publish import publish as run_publish

    db_path = db_path or default_db_path()
    try:
        done = run_publish(db_path, directory)
    except PublishError as e:
        fail(str(e), code=1)
        return
    click.echo(f"published {db_path} → {done.path}: {done.resources} resources, {done.bytes / 1e6:.1f} MB, "
               f"sha256 {done.sha256[:16]}…, checked served --public --immutable ({done.seconds:.1f} s); "
               f"manifest {done.manifest}")


@click.command()
@db_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "jsonl", "opml"]), default="csv", show_default=True,
              help="csv, json or jsonl: resources from the catalog; opml: the registry's feeds, for a feed reader.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
@click.option("--topic", "topics", multiple=True, help="Only resources with this topic (repeatable: any of them).")
@click.option("--system", "systems", multiple=True, help="Only resources about this system (repeatable: any of them).")
@click.option("--source", "sources", multiple=True, help="Only resources from this source (repeatable).")
@click.option("--type", "content_types", multiple=True, help="Only this content type (repeatable).")
@click.option("--since", default=None, help="Only resources first seen on or after this date (YYYY-MM-DD).")
@registry_option
@catalog_errors
def export(db_path, fmt, out_path, topics, systems, sources, content_types, since, registry_path) -> None:
    """Export resources as CSV, JSON or JSON lines, with filters; or the registry's feeds as OPML.

    A topic, system or type that does not exist (data/taxonomy.yaml, the content types) is an
    error (exit 2) naming the valid ones, before anything is written.

    \b
    --format opml lists every enabled feed and YouTube source of the registry (grouped by
    organization) so people can subscribe in their own feed reader; it needs no catalog.
    """
    if fmt == "opml":
        export_opml(registry_path, out_path, topics, sources)
        return
    from illhub.harvest import default_db_path
    from pipeline.export import ExportFilter, export_resources, unknown_names
    from pipeline.normalize import parse_date
    from pipeline.store import open_for_reading

    filt = ExportFilter(topics=list(topics), systems=list(systems), sources=list(sources),
                        content_types=list(content_types))
    taxonomy = load_taxonomy_or_exit()
    problems = unknown_names(filt, list(taxonomy.topics), list(taxonomy.systems))
    if problems:
        click.echo("\n".join(f"error: {p}" for p in problems), err=True)
        sys.exit(2)
    db_path = db_path or default_db_path()
    if not Path(db_path).exists():
        fail(f"{db_path} does not exist yet: run 'illhub harvest' first")
    since_iso = None
    if since:
        since_iso = parse_date(since)
        if since_iso is None:
            fail(f"--since {since!r} is not a date; use YYYY-MM-DD")
    db = open_for_reading(db_path)
    filt.since = since_iso
    if out_path:
        with open(out_path, "w", encoding="utf-8", newline="") as fh:
            n = export_resources(db, fh, fmt, filt)
        err.print(plain(f"wrote {n} resources to {out_path}"))
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
        err.print(plain(f"wrote {n} feeds to {out_path}"))
    else:
        n, skipped = write_opml(registry, sys.stdout)
    if skipped:
        err.print(plain(f"left out (no feed URL known without the network): {', '.join(skipped)}"))


@click.command()
@click.option("--db", "db_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the demo catalog [default: data/demo.db].")
@click.option("--port", default=8001, show_default=True, type=PORT, help="Datasette's port.")
@click.option("--no-serve", is_flag=True, help="Harvest the demo web, print the summary and stop.")
@catalog_errors
def demo(db_path, port, no_serve) -> None:
    """Serve the bundled demo web on loopback, harvest it, and browse the result."""
    from illhub.demo import run_demo
    from illhub.serve import port_problem

    busy = None if no_serve else port_problem("127.0.0.1", port)
    if busy:
        fail(busy, code=1)
    sys.exit(run_demo(db_path=db_path, port=port, serve=not no_serve))
