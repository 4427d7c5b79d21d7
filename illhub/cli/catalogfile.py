"""What the commands that touch the catalog file share: the ``--lock-wait`` option, the line
shown while waiting for another writer, and :func:`catalog_errors`, which turns a problem with
the file (full disk, read-only, damaged, busy, locked by another writer) into one line on
stderr and its exit code (:mod:`pipeline.dberrors`) instead of a traceback."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import click

from illhub.cli.options import Number
from pipeline.dberrors import CatalogProblem, explain
from pipeline.writelock import WAIT_ENV, default_wait, describe_holder

#: A lock wait: any finite number of seconds (a nightly run may wait out a long harvest).
LOCK_SECONDS = Number(min=0)


def lock_wait_option(f):
    return click.option(
        "--lock-wait", "lock_wait", type=LOCK_SECONDS, default=None, metavar="SECONDS",
        help=f"How long to wait while another illhub command writes to the catalog, then give up with exit "
             f"code 75 [default: {default_wait():g}, or env {WAIT_ENV}].",
    )(f)


def waiting_notice(db_path: Path, wait: float | None):
    """The ``on_wait`` callback of :func:`pipeline.writelock.writer_lock`: one line on stderr."""

    def notice(holder: dict | None) -> None:
        limit = default_wait() if wait is None else wait
        click.echo(f"waiting for {db_path}: {describe_holder(holder)} is writing to it "
                   f"(waiting at most {limit:g} s; --lock-wait)", err=True)

    return notice


def report(problem: CatalogProblem) -> None:
    click.echo(f"error: {problem}", err=True)


def catalog_errors(f):
    """Decorator for a command with a ``db_path`` parameter: a problem with the catalog file
    ends it with one line and its exit code (74, or 75 when another writer holds it)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from illhub.harvest import default_db_path

        try:
            return f(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - anything else is re-raised untouched
            problem = explain(e, kwargs.get("db_path") or default_db_path())
            if problem is None:
                raise
            report(problem)
            sys.exit(problem.exit_code)

    return wrapper
