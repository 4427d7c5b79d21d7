"""Text out of HTML, the same way for every parser: a node's visible text, a page's first
real paragraph, how much body text is kept as an excerpt."""

from __future__ import annotations

from typing import Any

from pipeline.normalize import clean_text

#: Characters of body text kept as the excerpt (for full-text search; not the whole page).
EXCERPT_CHARS = 1200
#: The first paragraph used as a description must have at least this many characters.
MIN_PARAGRAPH = 40

_VISIBLE = ".//text()[not(ancestor::script) and not(ancestor::style)]"


def visible_text(node: Any, limit: int | None = None) -> str:
    """The text of a parsel node, scripts and styles left out, white space folded."""
    text = " ".join(node.xpath(_VISIBLE).getall())
    return clean_text(text[:limit] if limit else text)


def node_text(node: Any) -> str:
    """:func:`visible_text`, except that a table row reads as its cells joined by `` | ``."""
    if node is None:
        return ""
    if getattr(node.root, "tag", None) == "tr":
        cells = [clean_text(" ".join(c.xpath(".//text()").getall())) for c in node.xpath("./td|./th")]
        return " | ".join(c for c in cells if c)
    return visible_text(node)


def first_paragraph(root: Any, *, skip: str = "", min_chars: int = MIN_PARAGRAPH, min_words: int = 6) -> str:
    """The first ``<p>`` under ``root`` (an lxml element or a parsel node) with at least
    ``min_chars`` characters and ``min_words`` words that is not ``skip`` (the title); ""."""
    if root is None:
        return ""
    element = getattr(root, "root", root)
    for p in element.iter("p"):
        text = clean_text(" ".join(p.itertext()))
        if len(text) >= min_chars and len(text.split()) >= min_words and text != skip:
            return text
    return ""
