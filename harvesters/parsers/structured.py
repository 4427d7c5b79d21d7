"""schema.org structured data (JSON-LD, microdata) as plain Python: types, nodes, names.

Shared by the page metadata extractor and the conference program reader."""

from __future__ import annotations

from typing import Any

from harvesters.parsers.text import clean

#: JSON-LD objects read from one page, at most.
MAX_NODES = 200


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def schema_types(node: dict[str, Any]) -> list[str]:
    """A node's schema.org types by their short names (``https://schema.org/Event`` → ``Event``)."""
    out: list[str] = []
    for v in as_list(node.get("@type") or node.get("type")):
        if isinstance(v, str):
            short = v.rsplit("/", 1)[-1].rsplit("#", 1)[-1]
            if short not in out:
                out.append(short)
    return out


def jsonld_nodes(items: list[Any]) -> list[dict[str, Any]]:
    """Every JSON-LD object, ``@graph`` members included, in document order."""
    nodes: list[dict[str, Any]] = []
    stack = list(reversed(items))
    while stack and len(nodes) < MAX_NODES:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            graph = item.get("@graph")
            if graph is not None:
                stack.extend(reversed(graph if isinstance(graph, list) else [graph]))
                rest = {k: v for k, v in item.items() if k not in ("@graph", "@context")}
                if rest and schema_types(rest):
                    nodes.append(rest)
            else:
                nodes.append(item)
    return nodes


def main_node(nodes: list[dict[str, Any]], order: tuple[set[str], ...]) -> dict[str, Any] | None:
    """The first node of the first group of types in ``order`` that any node has."""
    for group in order:
        for node in nodes:
            if set(schema_types(node)) & group:
                return node
    return None


def _clean_str(value: Any) -> str:
    return clean(value) if isinstance(value, str) else ""


def _resolve(value: Any, by_id: dict[str, dict[str, Any]]) -> Any:
    if isinstance(value, dict) and set(value) <= {"@id"} and value.get("@id") in by_id:
        return by_id[value["@id"]]
    return value


def names(value: Any, by_id: dict[str, dict[str, Any]]) -> list[str]:
    """Names of a schema.org Person/Organization value (a string, an object, a list, an @id)."""
    out: list[str] = []
    for v in as_list(value):
        v = _resolve(v, by_id)
        if isinstance(v, str):
            name = _clean_str(v)
        elif isinstance(v, dict):
            name = _clean_str(v.get("name")) or _clean_str(v.get("legalName"))
        else:
            name = ""
        if name and not name.startswith(("http://", "https://")) and name not in out:
            out.append(name)
    return out


def first_str(value: Any) -> str:
    """The first string of a value, or of its ``url``/``contentUrl``/``@id`` when an object."""
    if isinstance(value, list):
        for v in value:
            s = first_str(v)
            if s:
                return s
        return ""
    if isinstance(value, dict):
        return first_str(value.get("url") or value.get("contentUrl") or value.get("@id"))
    return value.strip() if isinstance(value, str) else ""
