"""Structured data of a page as extruct reads it, without importing all of extruct.

``extruct.extract`` imports the libraries of every syntax it knows (RDFa, microformats,
Dublin Core) when it is imported: about a tenth of a second of every harvest's start-up, for
syntaxes illhub does not read. :func:`read_structured` gives what ``extruct.extract(root,
base_url=base, syntaxes=["json-ld", "opengraph", "microdata"], errors="ignore",
uniform=True)`` gives (extruct 0.18's JSON-LD and OpenGraph readers, followed here; its
microdata extractor, imported only for a page with ``itemscope``).
``tests/test_page.py`` holds the two to the same answers on every page fixture: re-check them
when extruct is upgraded.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lxml import etree

from harvesters.parsers.text import all_elements
from harvesters.parsers.text import string_of as _STRING

# What extruct reads (extruct 0.18's extractors, as extruct.extract runs them with errors="ignore"
# and uniform=True): JSON-LD scripts, OpenGraph <meta property> tags in <head>, microdata items.
_JSONLD_COMMENT_LINE = re.compile(r"^\s*(//.*|<!--.*-->)")
_OG_PREFIX = re.compile(r"\s*(\w+):\s*([^\s]+)")
_OG_NAMESPACES = {"og": "http://ogp.me/ns#", "music": "http://ogp.me/ns/music#", "video": "http://ogp.me/ns/video#",
                  "article": "http://ogp.me/ns/article#", "book": "http://ogp.me/ns/book#",
                  "profile": "http://ogp.me/ns/profile#", "product": "http://ogp.me/ns/product#"}
_ITEMSCOPE = etree.XPath("boolean(//*[@itemscope])")


def read_structured(root: Any, base: str) -> dict[str, list[Any]]:
    """What ``extruct.extract(root, base_url=base, syntaxes=["json-ld", "opengraph",
    "microdata"], errors="ignore", uniform=True)`` gives, without extruct's other syntaxes'
    libraries (imported with it: about a tenth of a second) and without looking for microdata
    on a page with no ``itemscope``. A syntax that fails is left out (``errors="ignore"``);
    as there, a failure of microdata or OpenGraph raises KeyError."""
    data: dict[str, list[Any]] = {}
    if not isinstance(root, etree._Element):
        raise KeyError("microdata")  # what extruct raises when its extractors cannot read the tree
    if _ITEMSCOPE(root):
        from extruct.uniform import _umicrodata_microformat
        from extruct.w3cmicrodata import MicrodataExtractor

        try:
            data["microdata"] = list(MicrodataExtractor().extract_items(root, base_url=base))
        except Exception:  # noqa: BLE001 - errors="ignore"
            raise KeyError("microdata") from None
        try:
            data["microdata"] = _umicrodata_microformat(data["microdata"], "http://schema.org")
        except Exception:  # noqa: BLE001
            data["microdata"] = []
    else:
        data["microdata"] = []
    try:
        data["json-ld"] = _jsonld_items(root)
    except Exception:  # noqa: BLE001 - errors="ignore": the syntax is left out
        pass
    try:
        og = list(_opengraph_items(root))
    except Exception:  # noqa: BLE001
        raise KeyError("opengraph") from None
    data["opengraph"] = _uniform_opengraph(og)
    return data


def _jsonld_items(root: Any) -> list[Any]:
    items = []
    for node in [s for s in root.iter("script") if s.get("type") == "application/ld+json"]:
        script = _STRING(node)
        try:
            data = json.loads(script, strict=False)
        except ValueError:
            # sometimes JSON-decoding errors are due to leading HTML or JavaScript comments
            import jstyleson

            data = jstyleson.loads(_JSONLD_COMMENT_LINE.sub("", script), strict=False)
        if isinstance(data, list):
            items.extend(item for item in data if item)
        elif isinstance(data, dict) and data:
            items.append(data)
    return items


def _opengraph_items(root: Any) -> Any:
    # OpenGraph defines a web page as a single rich object.
    for head in list(all_elements(root, "head")):
        parent = root.head.getparent()  # of lxml.html's first <head> of the document
        html_elems = [parent] if parent is not None and parent.tag == "html" else []
        namespaces = dict(_OG_PREFIX.findall(html_elems[0].get("prefix", ""))) if html_elems else {}
        namespaces.update(_OG_PREFIX.findall(head.get("prefix", "")))
        props = []
        for el in [m for m in head.iterchildren("meta") if m.get("property") is not None
                   and m.get("content") is not None]:
            prop = el.attrib["property"]
            val = el.attrib["content"]
            ns = prop.partition(":")[0]
            if ns in _OG_NAMESPACES:
                namespaces[ns] = _OG_NAMESPACES[ns]
            if ns in namespaces:
                props.append((prop, val))
        if props:
            yield {"namespace": namespaces, "properties": props}


def _uniform_opengraph(extracted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for obj in extracted:
        flattened: dict[Any, Any] = {}
        for k, v in obj["properties"]:
            if k not in flattened:
                flattened[k] = v
            elif v and v.strip() and (not flattened[k] or not flattened[k].strip()):
                flattened[k] = v  # the first non-empty value
        t = flattened.pop("og:type", None)
        if t:
            flattened["@type"] = t
        flattened["@context"] = obj["namespace"]
        out.append(flattened)
    return out
