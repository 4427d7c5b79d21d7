"""The ``illhub`` command line: the command group, its entry point (:func:`main`), and the
commands of the modules beside it (``registry_commands``, ``harvest_commands``,
``catalog_commands``); what they print goes through :mod:`illhub.console`."""

from __future__ import annotations

import logging
import os
import sys

import click

from illhub.cli import catalog_commands, harvest_commands, maintenance_commands, nightly_commands, registry_commands
from illhub.cli.options import fast_exit_asked
from pipeline.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="illhub")
def cli() -> None:
    """illhub: harvest interlibrary loan resources into one searchable catalog.

    \b
    Quick start:
      illhub demo              harvest the bundled demo web and browse it
      illhub validate          check registry.yaml
      illhub check-registry    check online that each source answers as its kind
      illhub harvest           harvest every enabled source into data/illhub.db
      illhub serve             browse the catalog with Datasette
      illhub status            the last harvest, failing sources, the next run
      illhub install-systemd   harvest every night and serve the catalog (systemd)
      illhub check-links       find dead links (history and status in the catalog)
      illhub backup            copy the catalog (every night: docs/operations.md)
      illhub doctor            check the catalog file; says whether to restore
    """


COMMANDS = (registry_commands.validate, registry_commands.check_registry, registry_commands.add_source,
            registry_commands.sources,
            harvest_commands.harvest, harvest_commands.merge, harvest_commands.check_links,
            harvest_commands.reprocess, harvest_commands.schedule,
            catalog_commands.serve, catalog_commands.publish, catalog_commands.export, catalog_commands.demo,
            maintenance_commands.doctor, maintenance_commands.backup, maintenance_commands.restore,
            nightly_commands.status, nightly_commands.install_systemd)
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    try:
        cli(prog_name="illhub")
    except SystemExit as e:
        if not fast_exit_asked():
            raise
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
