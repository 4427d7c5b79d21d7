"""The commands that keep the catalog file safe: ``doctor``, ``backup`` and ``restore``
(:mod:`pipeline.doctor`, :mod:`pipeline.backup`; docs/operations.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from illhub.cli.catalogfile import catalog_errors, lock_wait_option, waiting_notice
from illhub.cli.options import db_option, fail
from pipeline.dberrors import EXIT_CATALOG

BACKUP_DIR_HELP = "Where backups are [default: backups/ beside the catalog]."


@click.command()
@db_option
@click.option("--backups", "backups_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=BACKUP_DIR_HELP)
@catalog_errors
def doctor(db_path, backups_dir) -> None:
    """Check the catalog file and say whether to restore it from a backup.

    \b
    Runs SQLite's integrity check, checks that every stored text is valid UTF-8 and that
    the full-text index matches, then looks at what keeps the catalog safe: write access,
    free disk space, who is writing to it now, the newest backup. Never writes to it.
    Exit code 0 when it is healthy, 1 when it is damaged (the last line says what to do).
    """
    from illhub.harvest import default_db_path
    from pipeline.doctor import diagnose

    db_path = Path(db_path or default_db_path())
    d = diagnose(db_path, backups_dir)
    click.echo(f"illhub doctor: {db_path}")
    for note in d.notes:
        click.echo(f"  ok       {note}")
    for warning in d.warnings:
        click.echo(f"  warning  {warning}")
    for problem in d.problems:
        click.echo(f"  PROBLEM  {problem}")
    click.echo(d.advice())
    sys.exit(0 if d.healthy else 1)


@click.command()
@db_option
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--keep", type=click.IntRange(min=1), default=7, show_default=True,
              help="How many backups of this catalog to keep in DIRECTORY (the oldest are deleted).")
@catalog_errors
def backup(db_path, directory, keep) -> None:
    """Copy the catalog to DIRECTORY [default: backups/ beside it], consistently, and rotate.

    \b
    The copy (VACUUM INTO: one consistent moment, even while a harvest writes; compact) is
    checked before it gets its name, illhub-YYYYMMDDTHHMMSSZ.db; a damaged catalog makes
    the command fail and leaves the older backups alone. Exit code 0, or 74 when the
    catalog cannot be read or its copy fails the check (run 'illhub doctor').
    Run it every night after the harvest (docs/operations.md); restore with 'illhub restore'.
    """
    from illhub.harvest import default_db_path
    from pipeline.backup import BackupError
    from pipeline.backup import backup as run_backup

    db_path = Path(db_path or default_db_path())
    try:
        result = run_backup(db_path, directory, keep=keep)
    except BackupError as e:
        fail(str(e), code=EXIT_CATALOG)
        return
    removed = f"; removed {len(result.removed)} older" if result.removed else ""
    click.echo(f"backed up {db_path} to {result.path} ({result.resources} resources, "
               f"{result.bytes / 1048576:.1f} MiB, checked){removed}")


@click.command()
@db_option
@click.argument("backup_file", type=click.Path(dir_okay=False, path_type=Path))
@lock_wait_option
@catalog_errors
def restore(db_path, backup_file, lock_wait) -> None:
    """Put BACKUP_FILE (made by 'illhub backup') in the catalog's place.

    The backup is checked first (exit code 74 and nothing touched when it fails). The
    current catalog (and its -wal and -shm files) is moved aside as <name>.replaced-<time>,
    never deleted. Waits for other writers (--lock-wait; 75 when it gives up). Restart
    'illhub serve' afterwards; the next harvest fetches what changed since.
    """
    from illhub.harvest import default_db_path
    from pipeline.backup import BackupError
    from pipeline.backup import restore as run_restore

    db_path = Path(db_path or default_db_path())
    try:
        result = run_restore(backup_file, db_path, lock_wait=lock_wait, on_wait=waiting_notice(db_path, lock_wait))
    except BackupError as e:
        fail(str(e), code=EXIT_CATALOG)
        return
    aside = f"; the replaced files are kept as {', '.join(str(p) for p in result.replaced)}" if result.replaced else ""
    click.echo(f"restored {db_path} from {backup_file} ({result.resources} resources){aside}. "
               "Restart 'illhub serve' if it is running.")
