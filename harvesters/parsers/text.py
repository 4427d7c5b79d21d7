"""Text out of HTML, the same way for every parser: a node's visible text, a page's first
real paragraph, a visible "Last updated" date, how much body text is kept as an excerpt."""

from __future__ import annotations

import html
import re
from typing import Any

from lxml import etree
from parsel import Selector

from pipeline.normalize import cap_text, clean_text, parse_date

#: Characters of body text kept as the excerpt (for full-text search; not the whole page).
EXCERPT_CHARS = 1200
#: The first paragraph used as a description must have at least this many characters.
MIN_PARAGRAPH = 40

UPDATED_LABELS = ("last updated", "last modified", "page last updated", "page last modified", "last revised",
                  "updated", "modified", "revised")

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


def _date_after_label(text: str) -> str | None:
    """The date in a visible line such as "Last Updated: Oct 3, 2025 10:12 AM"."""
    low = text.lower()
    for label in UPDATED_LABELS:
        i = low.find(label)
        if i < 0:
            continue
        rest = text[i + len(label):].lstrip(" :\u00a0-–—").removeprefix("on ").removeprefix("On ")
        words = rest.split()
        for n in range(min(len(words), 7), 0, -1):
            candidate = " ".join(words[:n]).rstrip(".,;|")
            if any(c.isdigit() for c in candidate):
                date = parse_date(candidate)
                if date:
                    return date
        return None
    return None


_XML_SPACE = re.compile(r"[ \t\r\n]+")
_VISIBLE_LABELS = ("last updated", "last modified", "updated:", "modified:", "updated on", "last revised")
_LABEL_WORDS = ("updated", "modified", "revised")


def normalize_space(text: str) -> str:
    """XPath's normalize-space(): runs of XML white space (not NBSP) become one space."""
    return _XML_SPACE.sub(" ", text).strip(" ")


def visible_updated(sel: Selector) -> str | None:
    """The date after a visible "Last updated" (or similar) label: the elements holding a
    text node with a label (at most 10, in document order), each tried with its parent."""
    root = sel.root
    if not isinstance(root, etree._Element):
        return None
    # The body's whole text, white space collapsed, contains any label that one of its text
    # nodes contains: a page without one (most pages) is done without looking at each node.
    whole = normalize_space(sel.xpath("string(//body)").get("")).lower()
    if not any(lab in whole for lab in _VISIBLE_LABELS):
        return None
    holders: dict[Any, None] = {}
    for text in root.xpath("//body//text()"):
        low = text.lower()
        if not any(word in low for word in _LABEL_WORDS):
            continue  # every label has one of these words, which collapsing white space leaves alone
        low = normalize_space(low)
        if any(lab in low for lab in _VISIBLE_LABELS):
            # a tail's element is its preceding sibling; the text node's own parent is that one's
            holder = text.getparent()
            if text.is_tail and holder is not None:
                holder = holder.getparent()
            if holder is not None:
                holders[holder] = None
    if not holders:
        return None
    nodes = list(holders)
    if len(nodes) > 1:  # in document order (a tail's holder can come before an earlier text's)
        order = {el: i for i, el in enumerate(root.iter())}
        nodes.sort(key=lambda el: order.get(el, 0))
    for node in nodes[:10]:
        parent = node.getparent()
        for element in (node, parent) if parent is not None else (node,):
            text = clean_text("".join(element.itertext()))
            if len(text) > 160:
                break
            date = _date_after_label(text)
            if date:
                return date
    return None


#: Longest title derived from an entry's text (see :func:`title_from_text`).
DERIVED_TITLE_CHARS = 100
MIN_SENTENCE = 20
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=\S)")
_BLOCK_END = re.compile(r"(?i)</(?:p|div|li|h[1-6]|blockquote|tr)\s*>|<br\s*/?>")
_BARE_URL = re.compile(r"\bhttps?://\S+")


def title_from_text(text: str | None, limit: int = DERIVED_TITLE_CHARS) -> str:
    """A title for an entry that has none (a microblog post, a WordPress post with an empty
    title): the first sentence of its text (a paragraph or line break ends one too), bare
    links left out, capped at ``limit`` characters on a word boundary; "" when there is no text.

    Given HTML (as the entry's text comes), it gives HTML: the plain title escaped, so that
    normalizing it (which decodes once) gives back exactly the text it was taken from."""
    if not text:
        return ""
    text = _BLOCK_END.sub("\n", text)
    for block in text.split("\n"):
        plain = " ".join(_BARE_URL.sub(" ", clean_text(block)).split())
        if plain:
            # the first sentence end past a few words ("Mr. Smith …" is not a sentence of its own)
            end = next((m.start() for m in _SENTENCE_END.finditer(plain) if m.start() >= MIN_SENTENCE), len(plain))
            return html.escape(cap_text(plain[:end], limit), quote=False)
    return ""
