"""YAML read as plain data, for the files illhub reads from people it may not trust:
``registry.yaml`` (changed by pull requests) and ``data/taxonomy.yaml``.

The safe loader already refuses tags such as ``!!python/object``. Two more things are
refused here, while the document is composed, before any value is built:

- **aliases** (``*name``): a few hundred bytes of nested aliases (``a1: &a1 [*a0, *a0, …]``,
  nine levels of ten) stand for a billion values; whatever walks the data afterwards (the
  parsed-YAML cache, validation) expands them and runs out of memory. Neither file needs
  one: write the value out.
- **nesting deeper than** :data:`MAX_DEPTH` levels: a registry needs about seven (sources,
  a source, its entries, an entry, its topics); a thousand nested lists would otherwise end
  in a RecursionError traceback.

Either is reported as a :class:`~ruamel.yaml.error.YAMLError` with the line it is on, so
:func:`problem_line` gives the same one-line message as any other YAML error.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import AliasEvent

#: Deepest nesting of collections accepted (the registry uses about seven levels).
MAX_DEPTH = 32


class Refused(ComposerError):
    """Valid YAML that illhub does not accept (an alias, or nesting too deep)."""


class _PlainComposer(Composer):
    _plain_depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            raise Refused(None, None, f"YAML aliases are not allowed (found *{event.anchor}); write the value "
                          "out in full instead of referring to an anchor", event.start_mark)
        if self._plain_depth >= MAX_DEPTH:
            raise Refused(None, None, f"nested more than {MAX_DEPTH} levels deep; illhub's files need only a "
                          "few levels (a broken or hostile file?)", event.start_mark)
        self._plain_depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._plain_depth -= 1


def parse(text: str) -> Any:
    """The data in ``text``: mappings, lists, strings, numbers, booleans, null and dates.
    Raises :class:`~ruamel.yaml.error.YAMLError` (:class:`Refused` for aliases and deep nesting)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Composer = _PlainComposer
    return yaml.load(text)


def problem_line(error: YAMLError, shown: str) -> str:
    """One line for a YAML error: the file, the line (and column, for a parser's error), what
    is wrong."""
    mark = getattr(error, "problem_mark", None)
    line = f":{mark.line + 1}" if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if isinstance(error, Refused):
        return f"{shown}{line}: {problem}"
    column = f" at column {mark.column + 1}" if mark is not None else ""
    return f"{shown}{line}: not valid YAML{column}: {problem}"


def compose(text: str) -> Any:
    """The node tree of ``text`` (each node with its ``start_mark``: line and column), under
    the same refusals as :func:`parse`; no value is built. For messages that name a line."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Composer = _PlainComposer
    return yaml.compose(text)
