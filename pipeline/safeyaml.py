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

import re
from typing import Any

from ruamel.yaml import YAML, events
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
    events = _libyaml_events(text)
    if events is not None:
        yaml = YAML(typ="safe", pure=True)
        yaml.Composer = _ReplayComposer
        yaml.Parser = _replay(events)
        try:
            return yaml.load(text)
        except Exception:  # noqa: BLE001 - whatever it is, ruamel.yaml's own parser says it below
            pass
    yaml = YAML(typ="safe", pure=True)
    yaml.Composer = _PlainComposer
    return yaml.load(text)


#: What ruamel.yaml (YAML 1.2) and libyaml (1.1) might read differently in a document that
#: both accept: tabs, and the characters YAML 1.1 takes for line breaks (NEL, LS, PS); and
#: what libyaml accepts and ruamel.yaml refuses: a comment right after a block scalar's
#: indicator (``|#``), a block scalar whose first line holds only spaces (ruamel.yaml: "more
#: indented follow up line than first"), a document end marker (``...``) repeated.
_UNSURE = re.compile("[\t\x85\u2028\u2029]|[|>][-+0-9]*#|[|>][-+0-9]*[ ]*(?:#[^\n]*)?\r?\n[ ]+\r?\n|^[.][.][.]",
                     re.M)


def _libyaml_events(text: str) -> list[Any] | None:
    """The document's events as ruamel.yaml's parser gives them, read by libyaml (PyYAML's C
    parser, where installed): ruamel.yaml's pure-Python scanner and parser are most of a
    harvest's start-up reading its registry (0.12 s for 500 sources; libyaml 0.005 s). Its
    composer (aliases and deep nesting refused) and constructor (the YAML 1.2 types of plain
    scalars, duplicate keys) then build the data from them, as for any document.

    None, and ruamel.yaml reads the document itself, for anything that is not plainly the same
    to both: tags, anchors, aliases, directives, tabs and 1.1's extra line breaks, and any
    document libyaml refuses (so every error message is ruamel.yaml's)."""
    try:
        import yaml as pyyaml
        from yaml import events as ev

        loader = pyyaml.CSafeLoader
    except (ImportError, AttributeError):  # no PyYAML, or PyYAML without libyaml
        return None
    if _UNSURE.search(text):
        return None
    try:
        raw = list(pyyaml.parse(text, Loader=loader))
    except Exception:  # noqa: BLE001 - refused by libyaml: ruamel.yaml says why
        return None
    out: list[Any] = []
    for e in raw:
        kind = type(e)
        if kind is ev.ScalarEvent:
            if e.tag is not None or e.anchor is not None:
                return None
            out.append(events.ScalarEvent(None, None, e.implicit, e.value, style=e.style))
        elif kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
            if e.tag is not None or e.anchor is not None:
                return None
            cls = events.MappingStartEvent if kind is ev.MappingStartEvent else events.SequenceStartEvent
            out.append(cls(None, None, e.implicit, flow_style=e.flow_style))
        elif kind is ev.MappingEndEvent:
            out.append(events.MappingEndEvent())
        elif kind is ev.SequenceEndEvent:
            out.append(events.SequenceEndEvent())
        elif kind is ev.DocumentStartEvent:
            if e.version is not None or e.tags:
                return None
            out.append(events.DocumentStartEvent(explicit=e.explicit))
        elif kind is ev.DocumentEndEvent:
            out.append(events.DocumentEndEvent(explicit=e.explicit))
        elif kind is ev.StreamStartEvent:
            out.append(events.StreamStartEvent())
        elif kind is ev.StreamEndEvent:
            out.append(events.StreamEndEvent())
        else:  # an alias
            return None
    return out


class _ReplayComposer(_PlainComposer):
    """:class:`_PlainComposer` with its parser and resolver looked up once (ruamel.yaml's
    composer looks both up through properties at every event)."""

    parser: Any = None
    resolver: Any = None

    def get_single_node(self) -> Any:
        self.parser = self.loader.parser
        self.resolver = self.loader.resolver
        return super().get_single_node()


def _replay(recorded: list[Any]) -> type:
    """A ruamel.yaml parser class that hands out ``recorded`` events."""

    class Replay:
        def __init__(self, loader: Any) -> None:
            self.loader = loader
            self.loader._parser = self
            self.events = recorded
            self.at = 0

        def check_event(self, *choices: Any) -> bool:
            if self.at >= len(self.events):
                return False
            return not choices or isinstance(self.events[self.at], choices)

        def peek_event(self) -> Any:
            return self.events[self.at]

        def get_event(self) -> Any:
            self.at += 1
            return self.events[self.at - 1]

        def dispose(self) -> None:
            pass

    return Replay


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
