"""What the commands share: the ``--registry``, ``--db``, ``--delay``, ``--timeout`` and
``--proxy`` options and the checked number types every option uses, loading the registry and
the taxonomy (or exiting with every problem listed), a one-line error, and the fast exit a
command may ask :func:`illhub.cli.main` for.

Every option is checked before a command starts: a bad value is a one-line error naming the
option, exit code 2 (click's usage error), never a traceback or a silently odd run."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

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


class Number(click.FloatRange):
    """A finite number in a range (click's FloatRange lets ``nan`` through every bound, and
    ``inf`` through a lower one)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


#: Most seconds a delay, a timeout or a wait may be (an hour): beyond it, a mistake.
MAX_SECONDS = 3600
SECONDS = Number(min=0, max=MAX_SECONDS)
POSITIVE_SECONDS = Number(min=0, min_open=True, max=MAX_SECONDS)
PORT = click.IntRange(1, 65535)


class ProxyURL(click.ParamType):
    """``http://host:port`` (or https, with ``user:password@`` when the proxy asks for a login)."""

    name = "url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip()
        # A message never repeats a password: the user part is shown as "…@".
        shown = repr(text if "@" not in text else text.split("://", 1)[0] + "://…@" + text.rsplit("@", 1)[1])
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as e:
            self.fail(f"{shown} is not a proxy URL ({e}); write http://host:port", param, ctx)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.fail(f"{shown} is not a proxy URL; write http://host:port", param, ctx)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            self.fail(f"{shown}: a proxy URL has no path or query; write http://host:port", param, ctx)
        if port is None:
            self.fail(f"{shown} names no port; write http://host:port", param, ctx)
        return text.rstrip("/")


def allow_private_option(help: str = "Also fetch from loopback and private-network hosts, never link-local or "  # noqa: A002
                         "cloud metadata addresses (env ILLHUB_ALLOW_PRIVATE_NETWORK=1)."):
    return click.option("--allow-private-network", is_flag=True, help=help)


def delay_option(help: str = "Seconds between requests to one host [default: 1].",  # noqa: A002 - click's name
                 default: float | None = None):
    return click.option("--delay", type=SECONDS, default=default, metavar="SECONDS", show_default=default is not None,
                        help=help)


def timeout_option(help: str = "Seconds before a download is abandoned [default: 20].", **kw: Any):  # noqa: A002
    return click.option("--timeout", type=POSITIVE_SECONDS, default=None, metavar="SECONDS", help=help, **kw)


def proxy_option(f):
    return click.option(
        "--proxy", default=None, envvar="ILLHUB_PROXY", type=ProxyURL(), metavar="URL",
        help="Fetch through this HTTP proxy, http://host:port (env ILLHUB_PROXY). Proxy variables of the "
             "environment (http_proxy, https_proxy) are never used; the network guard checks the proxy like "
             "any host.",
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
