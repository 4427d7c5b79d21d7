"""The commands about the registry's sources: ``validate``, ``check-registry``, ``add-source``
and ``sources``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from illhub.cli.catalogfile import catalog_errors
from illhub.cli.options import (
    allow_private_option,
    db_option,
    delay_option,
    load_registry_or_exit,
    load_taxonomy_or_exit,
    proxy_option,
    registry_option,
    timeout_option,
)
from illhub.console import err, plain, print_check, print_coverage, print_sources


@click.command()
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


@click.command("add-source")
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
@allow_private_option()
@delay_option("Seconds between requests to the host.", default=0.5)
@timeout_option()
@proxy_option
@click.option("-v", "--verbose", count=True, help="Show Scrapy's log (-v info, -vv debug).")
def add_source(url, source_id, name, organization, topics, kind, dry_run, registry_path, allow_private_network,
               delay, timeout, proxy, verbose) -> None:
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
        err.print(plain(f"discovering {url} …"))
        result = run_discovery(url, policy=policy_from_env(allow_private_network).value, delay=delay,
                               timeout=timeout, kind=kind, taxonomy=taxonomy, user_agent=user_agent(registry),
                               log_level={0: "CRITICAL", 1: "INFO"}.get(verbose, "DEBUG"), proxy=proxy)
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
    from illhub.add_source import comment_for, next_command, proposed_topics, topics_comment

    proposed = proposed_topics(entry, proposal)
    block = render_entry(entry, comment_for(entry, proposal), after=topics_comment(proposed))
    click.echo(block, nl=False)
    for topic, why in proposal.topic_reasons.items():
        if topic in (entry.get("topics") or []):
            err.print(plain(f"  topic {topic}: {why}"))
        elif topic in proposed:
            err.print(plain(f"  proposed topic {topic}: {why} (commented out in the entry: confirm it)"))
    if dry_run:
        err.print(plain(f"dry run: {registry_path} not changed"))
        return
    write_atomically(registry_path, new_text)
    # --allow-private-network was needed here, so the harvest needs it too (the environment
    # variable, when that was used instead, still holds in this shell).
    err.print(plain(f"added {entry['id']!r} to {registry_path}; try it with: "
                    f"{next_command(entry['id'], registry_path, allow_private_network)}"))


@click.command()
@registry_option
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--coverage", is_flag=True,
              help="Instead of the sources: how many sources and curated entries cover each topic, system and "
                   "kind, the thin ones flagged (exit 1 when one is below its floor).")
@catalog_errors
def sources(registry_path, db_path, as_json, coverage) -> None:
    """List the registry's sources with each one's last harvest status from the catalog.

    \b
    With --coverage: for each topic and system of data/taxonomy.yaml, the enabled harvested
    sources that name it and the curated (manual) entries about it; a topic with fewer than 3,
    a system with fewer than 2 is flagged thin, and the exit code is 1.
    """
    import json

    registry = load_registry_or_exit(registry_path)
    if coverage:
        from illhub.coverage import coverage as compute

        cov = compute(registry, load_taxonomy_or_exit())
        if as_json:
            click.echo(json.dumps(cov.as_dict(), ensure_ascii=False, indent=2))
        else:
            print_coverage(cov, registry_path)
        sys.exit(1 if cov.thin else 0)
    from illhub.harvest import default_db_path
    from illhub.sources import source_statuses

    rows = source_statuses(registry, db_path or default_db_path())
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    print_sources(rows, registry_path)


@click.command("check-registry")
@registry_option
@click.option("--source", "source_ids", multiple=True, metavar="ID", help="Check only this source (repeatable).")
@click.option("--kind", "kinds", multiple=True, metavar="KIND", help="Check only sources of this kind (repeatable).")
@click.option("--include-disabled", is_flag=True, help="Also check sources with enabled: false.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@allow_private_option()
@delay_option()
@timeout_option()
@proxy_option
@click.option("-v", "--verbose", count=True, help="Show Scrapy's log (-v info, -vv debug).")
def check_registry(registry_path, source_ids, kinds, include_disabled, as_json, allow_private_network, delay,
                   timeout, proxy, verbose) -> None:
    """Check online that each source's URL answers and is of the promised kind.

    \b
    One request per source (two for a WordPress site whose API is closed, or a sitemap named
    by robots.txt), through the harvest's downloader, network guard and robots.txt policy, one
    request at a time per host:
      feed        the URL parses as RSS or Atom, with entries
      youtube     the channel or playlist feed answers (a /@handle page names its feed)
      wordpress   the REST API lists a post (else the site's feed: a warning)
      zendesk     the Help Center API lists an article
      sitemap     the sitemap lists URLs, some passing include/exclude
      crawl       the start page is HTML, its selectors match, it links pages to follow
      conference  the program page yields sessions
      ical        the calendar holds events
      manual      skipped (no network)
    Prints a table (failures first, each with what to do) and a line per source on stderr
    as it finishes. Exit codes: 0 nothing failed (warnings allowed); 1 a source failed;
    2 the registry is invalid or names an unknown source.
    """
    import json

    from harvesters.discovery_spider import run_registry_check
    from illhub.harvest import policy_from_env, user_agent

    registry = load_registry_or_exit(registry_path)
    unknown = [sid for sid in source_ids if sid not in {s.id for s in registry.sources}]
    if unknown:
        click.echo(f"error: {registry_path}: no source {', '.join(map(repr, unknown))}; "
                   "'illhub sources' lists them.", err=True)
        sys.exit(2)
    chosen = [s for s in registry.sources
              if (not source_ids or s.id in source_ids) and (not kinds or s.kind in kinds)
              and (s.enabled or include_disabled or s.id in source_ids)]
    if not chosen:
        click.echo(f"{registry_path}: no source to check", err=True)
        return

    def progress(done: int, total: int, result) -> None:
        err.print(plain(f"[{done}/{total}] {result.source_id}: {result.status}"
                        + (f" ({result.detail[:100]})" if result.status != "ok" else "")))

    results = run_registry_check(chosen, policy=policy_from_env(allow_private_network).value, delay=delay,
                                 timeout=timeout, user_agent=user_agent(registry),
                                 log_level={0: "CRITICAL", 1: "INFO"}.get(verbose, "DEBUG"), progress=progress,
                                 proxy=proxy)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], ensure_ascii=False, indent=2))
    else:
        print_check(results, registry_path)
    sys.exit(1 if any(r.status == "fail" for r in results) else 0)
