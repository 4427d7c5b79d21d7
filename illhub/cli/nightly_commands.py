"""The commands for running the hub unattended: ``install-systemd`` (the nightly harvest and
the served catalog as systemd units, :mod:`illhub.deploy`) and ``status`` (how the last
harvest went and when the next one is, :mod:`illhub.status`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from illhub.cli.catalogfile import catalog_errors
from illhub.cli.options import db_option, fail, registry_option


@click.command("install-systemd")
@click.option("--system", "system", flag_value=True, default=None,
              help="Install system-wide in /etc/systemd/system, run as --user-name (needs root).")
@click.option("--user", "system", flag_value=False,
              help="Install as your user's services in ~/.config/systemd/user [default unless root].")
@click.option("--user-name", default=None, metavar="NAME", help="With --system: the user the services run as "
              "[default: the one running this command].")
@click.option("--dir", "checkout", type=click.Path(file_okay=False, exists=True, path_type=Path), default=Path("."),
              help="Your checkout of illhub (holding registry.yaml and data/) [default: the current directory].")
@click.option("--no-serve", is_flag=True, help="Only the nightly harvest, not the served catalog.")
@click.option("--no-enable", is_flag=True, help="Write the files; do not run systemctl.")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the files into this directory instead (to review them); runs no systemctl.")
def install_systemd(system, user_name, checkout, no_serve, no_enable, dest) -> None:
    """Run the harvest every night, and serve the catalog, with systemd.

    \b
    Installs deploy/illhub-harvest.service and .timer (every night at 07:00 UTC, a run
    missed while the machine was off made up once; exit 1, "some source failed", is not a
    unit failure; then a backup and the night's summary in the journal) and
    deploy/illhub-serve.service (the public profile on 127.0.0.1:8001), with this checkout's
    path and this installation's illhub, then reloads systemd and starts the timer and the
    server. Logs: journalctl [--user] -u illhub-harvest; how the night went: illhub status.
    """
    import os

    from illhub.deploy import DeployError, install, plan

    if system is None:
        system = hasattr(os, "geteuid") and os.geteuid() == 0
    try:
        p = plan(checkout, system=bool(system), serve=not no_serve, dest=dest, enable=not no_enable,
                 user=user_name)
        install(p)
    except DeployError as e:
        fail(str(e), code=1)
        return
    for name in p.files:
        click.echo(f"wrote {p.directory / name}")
    for command in p.commands:
        click.echo(f"ran: {' '.join(command)}")
    for note in p.notes:
        click.echo(note)


@click.command()
@db_option
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@catalog_errors
def status(db_path, registry_path, as_json) -> None:
    """How the hub is doing: the last harvest, failing sources and why, the next run.

    \b
    Prints when the last harvest finished and how long ago, how many sources failed, each
    failing source with its reason, the sources that need attention (3 failed runs in a row),
    those never harvested, and the next scheduled run. Reads the catalog; writes nothing.
    Exit code 0 all well; 1 a source is failing or needs attention, the catalog is stale
    (no harvest for 36 hours) or was never harvested; 2 no catalog.
    """
    import json

    from illhub.harvest import default_db_path
    from illhub.registry import RegistryError, load_registry
    from illhub.status import read_status, render

    db_path = db_path or default_db_path()
    if not Path(db_path).exists():
        fail(f"{db_path} does not exist yet: run 'illhub harvest' first")
    registry, problem = None, None
    try:
        registry = load_registry(registry_path)
    except RegistryError as e:
        problem = f"{len(e.problems)} problem(s) in {registry_path}: run 'illhub validate'"
    st = read_status(db_path, registry)
    st.registry_problem = problem
    if as_json:
        click.echo(json.dumps(st.as_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        click.echo("\n".join(render(st)))
    sys.exit(st.exit_code)
