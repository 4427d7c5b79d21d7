"""Docs sections generated from the code, so that they cannot drift (DESIGN.md habit 9).

    python -m tools.docs            rewrite the generated sections of README.md and docs/*.md
    python -m tools.docs --check    exit 1 if any of them is out of date (the tests run this)

A generated section sits between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` markers, in
whichever page holds it (each section in exactly one page); everything outside the markers is
written by hand and left alone. Sections (and where they live today):

- ``cli``: the ``--help`` of every command (click; docs/cli.md);
- ``registry-fields``: the registry's fields, from the pydantic models of every kind (a
  docstring under a field is its description; a model's ``example`` is its example;
  docs/registry.md);
- ``content-types``: the content-type vocabulary (``pipeline.resource.CONTENT_TYPES``;
  docs/registry.md);
- ``schema``: every table, view and column of a catalog created by the migrations, with the
  descriptions from ``datasette_config/metadata.yml`` (docs/schema.md);
- ``politeness``: the harvester's defaults (``harvesters.settings``; docs/security.md);
- ``guard``: what the network guard refuses under each policy, computed by
  ``harvesters.guard`` on example hosts (docs/security.md);
- ``benchmarks``: the latest full ``make bench`` run (docs/performance.md).

A developer tool: not part of the installed package (``tools.links`` checks the pages' relative
links).
"""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
import os
import re
import sys
import textwrap
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 100
MARKER = re.compile(r"<!-- BEGIN ([a-z0-9-]+) -->\n(.*?)<!-- END \1 -->", re.S)


def slug(heading: str) -> str:
    """The ``#anchor`` GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def contents(label: str, links: list[tuple[str, str]]) -> str:
    """One line of links to the headings of a generated section: ``(text, heading)`` pairs."""
    return f"{label}: " + " · ".join(f"[{text}](#{slug(heading)})" for text, heading in links)


# -- CLI -------------------------------------------------------------------------------


def _help(command: click.Command, name: str, parent: click.Context | None) -> str:
    ctx = click.Context(command, info_name=name, parent=parent, terminal_width=WIDTH, max_content_width=WIDTH)
    return command.get_help(ctx)


def cli_section() -> str:
    from illhub.cli import cli

    root = click.Context(cli, info_name="illhub", terminal_width=WIDTH, max_content_width=WIDTH,
                         **(cli.context_settings or {}))
    parts = ["```text", "$ illhub --help", cli.get_help(root), "```", ""]
    headings: list[str] = []

    def walk(group: click.Group, ctx: click.Context, prefix: str) -> None:
        for name in sorted(group.list_commands(ctx)):
            command = group.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            full = f"{prefix} {name}"
            headings.append(f"`{full}`")
            parts.extend([f"#### `{full}`", "", "```text", f"$ {full} --help", _help(command, name, ctx), "```", ""])
            if isinstance(command, click.Group):
                walk(command, click.Context(command, info_name=name, parent=ctx), full)

    walk(cli, root, "illhub")
    return "\n".join([contents("Commands", [(h, h) for h in headings]), "", *parts])


# -- registry fields -------------------------------------------------------------------


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names)
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin in (list, tuple, set):
        return f"list of {_type_name(args[0]) if args else 'values'}"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping (fields below)"
    return {str: "text", int: "integer", float: "number", bool: "`true`/`false`"}.get(annotation, str(annotation))


def _bounds(field: Any) -> str:
    lo = hi = None
    for m in field.metadata:
        lo = getattr(m, "ge", None) if getattr(m, "ge", None) is not None else lo
        hi = getattr(m, "le", None) if getattr(m, "le", None) is not None else hi
    if lo is not None and hi is not None:
        return f" ({lo}–{hi:,})".replace(",", " ")
    return ""


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()
        return "`[]`" if value == [] else "`{}`" if value == {} else f"`{value}`"
    value = field.default
    if value is None or value is PydanticUndefined:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return '`""`'
    return f"`{value}`"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def submodels(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for a in typing.get_args(annotation):
        found += submodels(a)
    return found


def _field_table(rows: list[tuple[str, Any, str | None]]) -> list[str]:
    lines = ["| field | type | default | what it is |", "|---|---|---|---|"]
    for name, field, description in rows:
        lines.append(f"| `{name}` | {_type_name(field.annotation)}{_bounds(field)} | {_default(field)} | "
                     f"{_cell(description)} |")
    return lines


@functools.cache
def _class_field_docs(cls: type) -> dict[str, str | None]:
    """The fields a class body annotates, each with the docstring written under it (None
    without one): what pydantic's ``use_attribute_docstrings`` would read. Read here, when
    the docs are generated, because pydantic reads the source of every model at import
    (about 40 ms of every harvest's start-up)."""
    try:
        body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    except (OSError, TypeError, IndexError, AttributeError):
        return {}
    docs: dict[str, str | None] = {}
    for node, after in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            doc = None
            if (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                doc = inspect.cleandoc(after.value.value)
            docs[node.target.id] = doc
    return docs


def field_description(model: type[BaseModel], name: str) -> str | None:
    """A model field's description: ``Field(description=...)``, else the docstring under the
    field in the nearest class (of the model and its bases) that declares it."""
    field = model.model_fields[name]
    if field.description:
        return field.description
    for klass in model.__mro__:
        if klass is BaseModel or not (isinstance(klass, type) and issubclass(klass, BaseModel)):
            continue
        docs = _class_field_docs(klass)
        if name in docs:
            return docs[name]
    return None


def _model_doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split()).replace("``", "`")


def _nested(model: type[BaseModel], path: str, seen: set[type[BaseModel]]) -> list[str]:
    out: list[str] = []
    for name, field in model.model_fields.items():
        for sub in submodels(field.annotation):
            if sub in seen:
                continue
            seen.add(sub)
            many = typing.get_origin(field.annotation) in (list, tuple) or "list" in _type_name(field.annotation)
            label = f"{path}{name}[]" if many else f"{path}{name}"
            out += ["", f"Fields of each `{label}` item:" if many else f"Fields of `{label}`:", ""]
            if _model_doc(sub):
                out += [_model_doc(sub), ""]
            out += _field_table([(n, f, field_description(sub, n)) for n, f in sub.model_fields.items()])
            out += _nested(sub, f"{label}.", seen)
    return out


def load_kinds() -> dict[str, type]:
    """Kind name → its registry model."""
    from harvesters.kinds import KINDS

    return {name: k.model for name, k in KINDS.items()}


def registry_section() -> str:
    from harvesters.source import SourceBase
    from illhub.registry import Defaults

    kinds = load_kinds()
    base = SourceBase.model_fields
    first = ("feed", "youtube", "manual")
    order = sorted(kinds, key=lambda k: (first.index(k) if k in first else len(first), k))
    out = [contents("Kinds", [(f"`{k}`", f"Kind `{k}`") for k in order]), ""]
    out += ["Every source has these fields (the kinds below add their own):", ""]
    out += _field_table([(n, f, field_description(SourceBase, n)) for n, f in base.items()])
    out += ["", "The optional top-level `defaults:` mapping:", ""]
    out += _field_table([(n, f, field_description(Defaults, n)) for n, f in Defaults.model_fields.items()])
    for name in order:
        model = kinds[name]
        out += ["", f"#### Kind `{name}`", ""]
        if _model_doc(model):
            out += [_model_doc(model), ""]
        network = "fetches over the network" if getattr(model, "uses_network", True) else "no network"
        out += [f"Default content type: `{getattr(model, 'default_content_type', 'page')}`; {network}.", ""]
        rows = []
        for fname, field in model.model_fields.items():
            if fname == "kind":
                continue
            inherited = base.get(fname)
            own = field_description(model, fname)
            common = field_description(SourceBase, fname) if inherited is not None else None
            if inherited is not None and field.is_required() == inherited.is_required() and own in (None, common):
                continue  # same as the common field
            description = own or common
            rows.append((fname, field, description))
        if rows:
            out += ["Fields of this kind (besides the common ones):" if len(rows) > 1 else
                    "Field of this kind (besides the common ones):", ""]
            out += _field_table(rows)
        else:
            out += ["No fields besides the common ones."]
        out += _nested(model, "", set())
        example = getattr(model, "example", None)
        if isinstance(example, str) and example.strip():
            out += ["", "Example:", "", "```yaml", example.strip("\n"), "```"]
    return "\n".join(out) + "\n"


# -- content types ----------------------------------------------------------------------


def content_types_section() -> str:
    from pipeline.resource import CONTENT_TYPES

    lines = ["| content type | what it is |", "|---|---|"]
    lines += [f"| `{k}` | {_cell(v)} |" for k, v in CONTENT_TYPES.items()]
    return "\n".join(lines) + "\n"


# -- schema -----------------------------------------------------------------------------

FTS_SHADOW = re.compile(r"_(data|idx|content|docsize|config)$")


def schema_section() -> str:
    from ruamel.yaml import YAML

    from catalog.app import METADATA, TEMPLATE_KEY
    from pipeline.store import open_db

    meta = YAML(typ="safe").load(METADATA.read_text(encoding="utf-8"))
    tables_meta = ((meta.get("databases") or {}).get(TEMPLATE_KEY) or {}).get("tables") or {}
    db = open_db(":memory:")
    objects = db.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite_%' ORDER BY type, name"
    ).fetchall()
    virtual = {name for kind, name, sql in objects if (sql or "").upper().startswith("CREATE VIRTUAL TABLE")}
    shadow = {name for _, name, _ in objects if any(name.startswith(v + "_") and FTS_SHADOW.search(name)
                                                   for v in virtual)}
    order = ["resources", "resource_sources", "sources", "harvest_runs", "raw_entries"]
    tables = [(k, n) for k, n, _ in objects if n not in shadow and n not in virtual and n != "_sqlite_migrations"]
    tables.sort(key=lambda t: (t[0] == "view", order.index(t[1]) if t[1] in order else len(order), t[1]))
    headings = [f"`{name}`" + (" (view)" if kind == "view" else "") for kind, name in tables]
    out: list[str] = [contents("Tables", [(f"`{n}`", h) for (_, n), h in zip(tables, headings, strict=True)]), ""]
    for (_kind, name), heading in zip(tables, headings, strict=True):
        tmeta = tables_meta.get(name) or {}
        out += [f"#### {heading}", ""]
        if tmeta.get("description"):
            out += [_cell(tmeta["description"]), ""]
        columns = tmeta.get("columns") or {}
        out += ["| column | type | what it holds |", "|---|---|---|"]
        for _cid, col, ctype, notnull, default, pk in db.execute(f"PRAGMA table_info([{name}])").fetchall():
            flags = []
            if pk:
                flags.append("primary key")
            if notnull and not pk:
                flags.append("not null")
            if default is not None:
                flags.append(f"default {default}")
            type_text = (ctype or "any").lower() + (f" ({', '.join(flags)})" if flags else "")
            out.append(f"| `{col}` | {type_text} | {_cell(columns.get(col)) or '—'} |")
        out.append("")
    for name in sorted(virtual):
        cols = [r[1] for r in db.execute(f"PRAGMA table_info([{name}])").fetchall()]
        out.append(f"`{name}` is the FTS5 full-text index over {', '.join(f'`{c}`' for c in cols)}, kept in step "
                   "by triggers.")
    out += ["", "`_sqlite_migrations` records which migrations have been applied."]
    db.close()
    return "\n".join(out).rstrip("\n") + "\n"


# -- politeness -------------------------------------------------------------------------


def politeness_section() -> str:
    from harvesters import settings as hs
    from harvesters.middlewares import MAX_CRAWL_DELAY
    from harvesters.offload import DEFAULT_PARSE_CPU_LIMIT

    saved = os.environ.pop("ILLHUB_TEST_FAST", None)
    try:
        s = hs.harvest_settings(policy="public")
    finally:
        if saved is not None:
            os.environ["ILLHUB_TEST_FAST"] = saved
    codes = ", ".join(str(c) for c in sorted(s["RETRY_HTTP_CODES"]))
    rows = [
        ("User-Agent", f"`{s['USER_AGENT']}` (with `defaults.contact` in the registry, "
                       "the contact is added as `(+CONTACT; …)`: set it, so site owners can reach you)"),
        ("requests per host at a time", str(s["CONCURRENT_REQUESTS_PER_DOMAIN"])),
        ("delay between requests to one host", f"{hs.DEFAULT_DELAY:g} s (`--delay`); a longer robots.txt "
                                               f"`Crawl-delay` wins (up to {MAX_CRAWL_DELAY:g} s)"),
        ("download timeout", f"{s['DOWNLOAD_TIMEOUT']:g} s (`--timeout`)"),
        ("largest response", f"{s['DOWNLOAD_MAXSIZE'] // (1024 * 1024)} MiB; larger ones are stopped and reported"),
        ("retries", f"{s['RETRY_TIMES']}, only for connection failures and HTTP {codes}"),
        ("redirects followed", str(s["REDIRECT_MAX_TIMES"])),
        ("cookies", "off" if not s["COOKIES_ENABLED"] else "on"),
        ("robots.txt", "obeyed (RFC 9309): a 4xx robots.txt means no rules; 5xx, 429 or unreachable defers "
                       "the host to a later run"),
        ("schemes", "`http` and `https` only; `file:`, `data:`, `ftp:` and `s3:` are never fetched"),
        ("CPU time to parse one document", f"{DEFAULT_PARSE_CPU_LIMIT:g} s (`--parse-cpu-limit`); a document that "
                                           "needs more fails its source"),
        ("proxy", "none; only `--proxy` (or `ILLHUB_PROXY`) names one, checked by the network guard like any "
                  "host; `http_proxy`, `https_proxy` and `no_proxy` are ignored"),
    ]
    lines = ["| what | default |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in rows]
    return "\n".join(lines) + "\n"


#: (what, example hosts) for the guard's table; each cell is computed by harvesters.guard.
GUARD_EXAMPLES = [
    ("public addresses and names", ["93.184.215.14", "2001:4860:4860::8888", "ill.example.org"]),
    ("loopback", ["127.0.0.1", "::1", "localhost", "2130706433", "0x7f000001", "::ffff:127.0.0.1"]),
    ("private networks", ["10.0.0.5", "172.16.0.1", "192.168.1.1", "fd12::1", "64:ff9b::a00:5"]),
    ("carrier-grade NAT", ["100.64.0.1"]),
    ("link-local (cloud metadata services answer here)", ["169.254.169.254", "169.254.170.2", "fe80::1",
                                                          "2002:a9fe:a9fe::"]),
    ("other cloud metadata addresses", ["100.100.100.200", "192.0.0.192", "fd00:ec2::254"]),
    ("cloud metadata names", ["metadata.google.internal", "instance-data.ec2.internal"]),
    ("unspecified, multicast", ["0.0.0.0", "::", "224.0.0.1"]),
]


def guard_section() -> str:
    from harvesters.guard import Policy, host_problem

    policies = [(Policy.PUBLIC, "default (public)"), (Policy.PRIVATE, "`--allow-private-network`"),
                (Policy.LOOPBACK, "`ILLHUB_NETWORK=loopback`")]
    lines = ["| hosts | examples | " + " | ".join(label for _, label in policies) + " |",
             "|---|---|" + "---|" * len(policies)]
    for what, hosts in GUARD_EXAMPLES:
        cells = []
        for policy, _ in policies:
            allowed = {host_problem(h, policy) is None for h in hosts}
            if len(allowed) != 1:
                raise ValueError(f"guard table: {what} is not all allowed or all refused under {policy}")
            cells.append("allowed" if allowed.pop() else "**refused**")
        examples = ", ".join(f"`{h}`" for h in hosts)
        lines.append(f"| {what} | {examples} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def benchmarks_section() -> str:
    """The latest full benchmark run, as ``make bench`` wrote it (benchmarks/results/latest.md)."""
    path = ROOT / "benchmarks" / "results" / "latest.md"
    return path.read_text(encoding="utf-8")


SECTIONS: dict[str, Callable[[], str]] = {
    "benchmarks": benchmarks_section,
    "cli": cli_section,
    "registry-fields": registry_section,
    "content-types": content_types_section,
    "schema": schema_section,
    "politeness": politeness_section,
    "guard": guard_section,
}


def render(text: str) -> str:
    """``text`` with every generated section this module knows rewritten (others untouched)."""
    cache: dict[str, str] = {}

    def replace(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in SECTIONS:
            return m.group(0)
        if name not in cache:
            cache[name] = SECTIONS[name]()
        return f"<!-- BEGIN {name} -->\n{cache[name]}<!-- END {name} -->"

    return MARKER.sub(replace, text)


def missing_sections(text: str) -> list[str]:
    present = {m.group(1) for m in MARKER.finditer(text)}
    return [name for name in SECTIONS if name not in present]


def stale_sections(text: str) -> list[str]:
    new = {m.group(1): m.group(0) for m in MARKER.finditer(render(text))}
    old = {m.group(1): m.group(0) for m in MARKER.finditer(text)}
    return [name for name in SECTIONS if name in old and old[name] != new.get(name)]


def doc_files(root: Path = ROOT) -> list[Path]:
    """The pages that may hold generated sections: README.md and every docs/*.md."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def placement_problems(texts: dict[Path, str]) -> list[str]:
    """Each section must live in exactly one of the pages: one line per section that does not."""
    homes: dict[str, list[str]] = {name: [] for name in SECTIONS}
    for path, text in texts.items():
        for m in MARKER.finditer(text):
            if m.group(1) in homes:
                homes[m.group(1)].append(path.name)
    problems = [f"no page has markers for {name} (add <!-- BEGIN {name} --> / <!-- END {name} --> where it belongs)"
                for name, where in homes.items() if not where]
    problems += [f"{name} is generated in more than one page ({', '.join(where)}): keep one"
                 for name, where in homes.items() if len(where) > 1]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if a page is out of date")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the tree whose README.md and docs/*.md are read (default: this checkout)")
    args = parser.parse_args(argv)
    texts = {path: path.read_text(encoding="utf-8") for path in doc_files(args.root)}
    problems = placement_problems(texts)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1
    status = 0
    for path, text in texts.items():
        stale = stale_sections(text)
        if not stale:
            continue
        rel = path.relative_to(args.root)
        if args.check:
            print(f"{rel}: generated sections out of date: {', '.join(stale)}; "
                  f"run 'python -m tools.docs' (or 'make docs') and commit {rel}", file=sys.stderr)
            status = 1
        else:
            path.write_text(render(text), encoding="utf-8")
            print(f"{rel}: updated {', '.join(stale)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
