"""Text out of HTML, the same way for every parser: a node's visible text, a page's first
real paragraph, a visible "Last updated" date, how much body text is kept as an excerpt."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from itertools import chain
from typing import Any

import html_text
from html_text.html_text import _has_open_bracket_before as _ht_open_bracket_before
from html_text.html_text import _has_punct_after as _ht_punct_after
from html_text.html_text import _has_trailing_whitespace as _ht_trailing_space
from html_text.html_text import _whitespace as _ht_whitespace
from lxml import etree
from parsel import Selector

from pipeline.normalize import cap_text, clean_text, parse_date


def clean(value: Any, limit: int | None = None) -> str:
    """:func:`pipeline.normalize.clean_text`, without its work on text it would only trim and
    cap (most of a page's values): printable (no control, format or separator character but
    the space), no markup or character reference to read (``<``, ``&``), no run of spaces."""
    if isinstance(value, str):
        text = value[: limit * 20] if limit and len(value) > limit * 20 else value  # as clean_text bounds it
        if text.isprintable() and "<" not in text and "&" not in text and "  " not in text:
            return cap_text(text.strip(" "), limit)
    return clean_text(value, limit)


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
    return clean(text[:limit] if limit else text)


def node_text(node: Any) -> str:
    """:func:`visible_text`, except that a table row reads as its cells joined by `` | ``."""
    if node is None:
        return ""
    if getattr(node.root, "tag", None) == "tr":
        cells = [clean(" ".join(c.xpath(".//text()").getall())) for c in node.xpath("./td|./th")]
        return " | ".join(c for c in cells if c)
    return visible_text(node)


def first_paragraph(root: Any, *, skip: str = "", min_chars: int = MIN_PARAGRAPH, min_words: int = 6) -> str:
    """The first ``<p>`` under ``root`` (an lxml element or a parsel node) with at least
    ``min_chars`` characters and ``min_words`` words that is not ``skip`` (the title); ""."""
    if root is None:
        return ""
    element = getattr(root, "root", root)
    for p in element.iter("p"):
        text = clean(" ".join(p.itertext()))
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
    if "\n" in text or "\t" in text or "\r" in text or "  " in text:
        text = _XML_SPACE.sub(" ", text)
    return text.strip(" ")


#: XPath's ``string(.)`` of an element: all its text, as parsel's ``string()`` gives it.
string_of = etree.XPath("string(.)")
_BODY_STRING = etree.XPath("string(//body)")
_BODIES = etree.XPath("count(//body)")
_BODY_TEXTS = etree.XPath("//body//text()")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _spellings(text: str, words: tuple[str, ...]) -> set[str]:
    """How ``words`` are spelled in ``text``, any ASCII case. (A text node whose ``str.lower()``
    holds a word holds one of these: the only other letters that lower-case to ASCII ones are
    "K" (Kelvin), in none of the words, and "İ", which brings a combining dot along.)"""
    low = text.translate(_ASCII_LOWER)  # as long as the text: positions match
    found = set()
    for word in words:
        i = low.find(word)
        while i >= 0:
            found.add(text[i : i + len(word)])
            i = low.find(word, i + 1)
    return found


@lru_cache(maxsize=16)
def _texts_containing(n: int) -> etree.XPath:
    """Text nodes under ``<body>`` containing one of ``n`` strings (``$w0``…)."""
    return etree.XPath("//body//text()[" + " or ".join(f"contains(., $w{i})" for i in range(n)) + "]")


def visible_updated(sel: Selector) -> str | None:
    """The date after a visible "Last updated" (or similar) label: the elements holding a
    text node with a label (at most 10, in document order), each tried with its parent."""
    root = sel.root
    if not isinstance(root, etree._Element):
        return None
    # The body's whole text, white space collapsed, contains any label that one of its text
    # nodes contains: a page without one (most pages) is done without looking at each node.
    body = _BODY_STRING(root)
    spellings = sorted(_spellings(body, _LABEL_WORDS))
    if not spellings:
        return None  # every label holds one of the words, in any case (see _spellings)
    whole = normalize_space(body).lower()
    if not any(lab in whole for lab in _VISIBLE_LABELS):
        return None
    if _BODIES(root) == 1 and 0 < len(spellings) <= 8:
        # the text nodes are the body's text: only those holding a word's spelling are read
        texts = _texts_containing(len(spellings))(root, **{f"w{i}": w for i, w in enumerate(spellings)})
    else:
        texts = _BODY_TEXTS(root)
    holders: dict[Any, None] = {}
    for text in texts:
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
            text = clean("".join(element.itertext()))
            if len(text) > 160:
                break
            date = _date_after_label(text)
            if date:
                return date
    return None


# -- the text of an element, as html_text reads it ---------------------------------------

#: What html_text's cleaner removes with their content (comments and processing instructions
#: too), and the tags it removes keeping their content (``<param>`` only inside an ``<object>``;
#: elsewhere with its content). lxml_html_clean's Cleaner as html_text configures it.
_KILLED = frozenset({"script", "style", "link", "meta", "applet", "frameset", "frame", "noframes"})
_UNWRAPPED = frozenset({"iframe", "embed", "layer", "object"})


def text_runs(root: Any, skip: Callable[[Any], bool] | None = None) -> list[str] | None:
    """The text slots of ``root`` (its text, each kept element's text and tail) as they are once
    html_text's cleaner has removed what it removes: a removed element's text and tail join the
    slot they fall in. None for a tree the cleaner would treat otherwise (an element to remove at
    the root, namespaced tags). ``skip``: elements removed with their content before (as
    ``drop_tree`` does: their tail joins the slot before them)."""
    tag = root.tag
    if not isinstance(tag, str) or tag in _KILLED or tag in _UNWRAPPED or tag in ("param", "image") \
            or tag[:1] == "{":
        return None
    runs: list[str] = []
    current = root.text or ""
    in_object = 0
    # (element, its children, whether its start and end are kept)
    stack: list[tuple[Any, Any, bool]] = [(root, iter(root), True)]
    while stack:
        element, children, kept = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if not stack:
                break
            if element.tag == "object":
                in_object -= 1
            if kept:
                runs.append(current)
                current = element.tail or ""
            elif element.tail:
                current += element.tail
            continue
        tag = child.tag
        if not isinstance(tag, str) or tag in _KILLED or (tag == "param" and not in_object) \
                or (skip is not None and skip(child)):
            if child.tail:  # removed with its content: its tail joins the slot before it
                current += child.tail
            continue
        if tag[:1] == "{":
            return None
        if tag in _UNWRAPPED or tag == "param":
            if child.text:
                current += child.text
            stack.append((child, iter(child), False))
        else:
            runs.append(current)
            current = child.text or ""
            stack.append((child, iter(child), True))
        if tag == "object":
            in_object += 1
    runs.append(current)
    return runs


def extracted_text(element: Any, limit: int | None = None) -> str:
    """``html_text.extract_text(element, guess_layout=False)`` of an lxml element, read
    without copying and cleaning the tree as html_text does. With ``limit``, the text may stop
    once longer than ``limit`` characters (its first ``limit`` characters are the same)."""
    runs = text_runs(element)
    if runs is None:
        return html_text.extract_text(element, guess_layout=False)
    return joined_runs(runs, limit)


def joined_runs(runs: list[str], limit: int | None = None) -> str:
    """The text html_text makes of these slots (see :func:`extracted_text`)."""
    chunks: list[str] = []
    size = 0
    prev: str | None = None
    for raw in runs:
        if not raw:
            continue
        text = raw.strip()
        if not text:
            continue
        if not text.isprintable() or "  " in text:  # else its only white space is single spaces
            text = _ht_whitespace.sub(" ", text)
        if prev is not None and (_ht_trailing_space(prev)
                                 or (not _ht_punct_after(text) and not _ht_open_bracket_before(prev))):
            chunks.append(" ")
            size += 1
        chunks.append(text)
        size += len(text)
        prev = raw
        if limit is not None and size > limit:
            break
    return "".join(chunks)


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
        plain = " ".join(_BARE_URL.sub(" ", clean(block)).split())
        if plain:
            # the first sentence end past a few words ("Mr. Smith …" is not a sentence of its own)
            end = next((m.start() for m in _SENTENCE_END.finditer(plain) if m.start() >= MIN_SENTENCE), len(plain))
            return html.escape(cap_text(plain[:end], limit), quote=False)
    return ""


def all_elements(root: Any, tag: str) -> Iterator[Any]:
    """XPath's ``//tag`` from ``root``: the elements of that tag in the whole document, in
    document order (libxml2 can leave elements beside the root element: lxml's ``iter``
    walks only the root's)."""
    if root.getnext() is None:
        return root.iter(tag)
    return chain.from_iterable(el.iter(tag) for el in (root, *root.itersiblings()))
