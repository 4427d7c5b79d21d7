"""Where in ``registry.yaml`` a problem is: the line of a source or of one of its fields, and
a hint for the usual causes of a YAML syntax error.

Validation works on plain data (what :mod:`pipeline.yamlcache` may hand back without
parsing); only when a problem is found is the text composed again into nodes, which carry
their line, under the same refusals as the safe parse (:func:`pipeline.safeyaml.compose`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from ruamel.yaml.error import YAMLError

from pipeline import safeyaml


def suggest(word: str, known: Iterable[str]) -> str:
    """``"; did you mean 'topics'?"`` when ``word`` looks like a misspelling of one of ``known``."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class Locator:
    """Lines (1-based) of the sources in a registry's text, and of their fields."""

    def __init__(self, text: str | None):
        self._text = text
        self._sources: list[Any] | None = None

    def _source_nodes(self) -> list[Any]:
        if self._sources is None:
            self._sources = []
            try:
                root = safeyaml.compose(self._text) if self._text is not None else None
            except YAMLError:
                root = None
            for key, value in getattr(root, "value", None) or []:
                if getattr(key, "value", None) == "sources" and isinstance(value.value, list):
                    self._sources = value.value
        return self._sources

    def line(self, index: int | None, loc: tuple[Any, ...] = ()) -> int | None:
        """The line of source ``index`` (0-based), or of the deepest part of field ``loc``
        found in it (``("entries", 2, "topics")``)."""
        nodes = self._source_nodes()
        if index is None or not 0 <= index < len(nodes):
            return None
        node = nodes[index]
        line = node.start_mark.line + 1
        for part in loc:
            value = node.value
            if isinstance(part, int) and isinstance(value, list) and node.tag.endswith(":seq"):
                if not 0 <= part < len(value):
                    break
                node = value[part]
                line = node.start_mark.line + 1
            elif isinstance(part, str) and isinstance(value, list) and node.tag.endswith(":map"):
                match = [(k, v) for k, v in value if getattr(k, "value", None) == part]
                if not match:
                    break
                key, node = match[0]
                line = key.start_mark.line + 1
            else:
                break
        return line


#: (words in the parser's message, hint): the usual reasons a registry edited by hand stops parsing.
YAML_HINTS = (
    ("mapping values are not allowed", "a value that contains ': ' must be quoted, e.g. "
                                       "name: \"ILL: the basics\""),
    ("found character '\\t'", "YAML indents with spaces, never tabs: replace the tab with spaces"),
    ("cannot start any token", "a value starting with this character (such as @, ` or %) must be quoted"),
    ("expected <block end>", "check the indentation: a source's fields line up under its 'id', and every "
                             "source starts with '- ' at the same column"),
    ("did not find expected key", "check the indentation: a source's fields line up under its 'id', and every "
                                  "source starts with '- ' at the same column"),
    ("did not find expected '-' indicator", "check the indentation: every source starts with '- ' at the "
                                            "same column"),
    ("found unexpected end of stream", "a quote or bracket is not closed"),
    ("while parsing a flow", "a [list] or {mapping} is not closed, or a value inside it needs quotes"),
    ("found duplicate key", "a field is given twice in the same source: keep one"),
)


def yaml_problem(error: YAMLError, shown: str) -> str:
    """One line for a YAML error: the file, the line, the column, what is wrong, and a hint
    for the common causes."""
    line = safeyaml.problem_line(error, shown)
    if isinstance(error, safeyaml.Refused):
        return line
    text = str(error)
    for words, hint in YAML_HINTS:
        if words in text:
            return f"{line} (hint: {hint})"
    return line
