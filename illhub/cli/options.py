"""What the commands share: the ``--registry`` and ``--db`` options, loading the registry and
the taxonomy (or exiting with every problem listed), a one-line error, and the fast exit a
command may ask :func:`illhub.cli.main` for."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

REGISTRY_DEFAULT = "registry.yaml"


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
        exit_with_problems(e.problems, e.path)


def load_registry_or_exit(path: Path):
    from illhub.registry import RegistryError, load_registry

    taxonomy = load_taxonomy_or_exit()
    try:
        return load_registry(path, taxonomy)
    except RegistryError as e:
        exit_with_problems(e.problems, path)


def exit_with_problems(problems: list[str], path) -> NoReturn:
    """Every problem of a file on stderr, a line each, then what to do; exit code 2."""
    for problem in problems:
        click.echo(problem, err=True)
    click.echo(f"{len(problems)} problem(s) in {path}; fix them and run 'illhub validate'.", err=True)
    sys.exit(2)


#: Set by a command whose process has nothing left to tidy when it ends (a harvest, once its
#: catalog is closed and its summary printed): main() then leaves with os._exit after flushing
#: the output, without the interpreter's teardown of Scrapy, Twisted and the rest (0.1-0.2 s
#: of a re-harvest that otherwise takes about 1.5 s).
_fast_exit = False


def exit_fast() -> None:
    """Ask :func:`illhub.cli.main` to leave with ``os._exit`` once this command ends."""
    global _fast_exit
    _fast_exit = True


def fast_exit_asked() -> bool:
    return _fast_exit
