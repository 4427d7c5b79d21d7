"""A page's main content: where it is (:data:`MAIN_XPATHS`), its page chrome
(:func:`is_boilerplate`), and its excerpt, read from lxml's tree without copying it."""

from __future__ import annotations

import copy
import re
from typing import Any

from lxml import etree
from parsel import Selector

from harvesters.parsers.text import all_elements as _all
from harvesters.parsers.text import clean, extracted_text, joined_runs, text_runs
from harvesters.parsers.text import string_of as _STRING


def has_class(name: str) -> str:
    """An XPath test: ``name`` is one of the element's classes (the cheap substring test first)."""
    return f"(contains(@class, '{name}') and contains(concat(' ', normalize-space(@class), ' '), ' {name} '))"


#: Where the main content usually is, tried in order (platform containers included). (An
#: attribute's presence is tested first: libxml2 then skips the other tests on most elements.)
MAIN_XPATHS = (
    "//main", "//*[@role][@role='main']", "//article",
    f"//*[@class][{has_class('mt-content-container')}]",  # MindTouch
    "//*[@id][@id='s-lg-guide-main']",  # LibGuides
    f"//*[@class][{has_class('article-body')}]",  # Zendesk
    "//*[@id][@id='content' or @id='main-content' or @id='main' or @id='primary']",
    "//body",
)


#: Removed before reading text: navigation, page chrome, forms, scripts (:func:`is_boilerplate`).
BOILERPLATE_TAGS = frozenset({"nav", "header", "footer", "aside", "form", "script", "style", "noscript", "template",
                              "svg", "iframe"})
BOILERPLATE_ROLES = frozenset({"navigation", "banner", "contentinfo", "search"})
BOILERPLATE_CLASSES = frozenset({"breadcrumb", "breadcrumbs", "skip-link"})
_XML_SPACE = re.compile(r"[ \t\r\n]+")


_MAIN = tuple((lambda root, tag=xp[2:]: list(_all(root, tag))) if xp[2:].isalpha() else etree.XPath(xp)
              for xp in MAIN_XPATHS)


def main_node(sel: Selector) -> Any:
    """The page's main content element (:data:`MAIN_XPATHS`), or None."""
    node = None
    page = sel.root
    if not isinstance(page, etree._Element):
        return None
    for xp in _MAIN:
        found = xp(page)
        if found:
            # the largest candidate of this kind (pages sometimes have several <article>s)
            node = found[0] if len(found) == 1 else max(found, key=lambda e: len(_STRING(e)))
            break
    return node if isinstance(node, etree._Element) else None


def without_boilerplate(node: Any) -> Any:
    """A copy of ``node`` without its page chrome (:func:`is_boilerplate`)."""
    if node is None:
        return None
    root = copy.deepcopy(node)
    for bad in [el for el in root.iterdescendants() if is_boilerplate(el)]:
        if bad.getparent() is not None:
            bad.drop_tree()
    return root


class MainContent:
    """The main content element, and its copy without page chrome, made only when a reader
    needs it (the excerpt reads the element itself, skipping the chrome)."""

    _UNREAD = object()

    def __init__(self, sel: Selector):
        self.node = main_node(sel)
        self._content: Any = self._UNREAD

    @property
    def content(self) -> Any:
        if self._content is self._UNREAD:
            self._content = without_boilerplate(self.node)
        return self._content


def is_boilerplate(el: Any) -> bool:
    """Page chrome, removed with its content before a page's text is read: a tag of
    :data:`BOILERPLATE_TAGS`, a role of :data:`BOILERPLATE_ROLES`, ``aria-hidden="true"``,
    ``hidden``, or a class of :data:`BOILERPLATE_CLASSES` (XPath's ``.//nav | … |
    .//*[contains(concat(' ', normalize-space(@class), ' '), ' breadcrumb ')]``: tested in
    Python, a page's elements are read three times faster than by those twenty tests in libxml2).
    Comments and processing instructions are not elements: never chrome."""
    tag = el.tag
    if not isinstance(tag, str):
        return False
    if tag in BOILERPLATE_TAGS:
        return True
    get = el.get
    if get("role") in BOILERPLATE_ROLES or get("aria-hidden") == "true" or get("hidden") is not None:
        return True
    classes = get("class")
    return bool(classes and ("breadcrumb" in classes or "skip-link" in classes)
                and not BOILERPLATE_CLASSES.isdisjoint(_XML_SPACE.split(classes)))


def excerpt(main: MainContent, limit: int) -> str:
    if main.node is None:
        return ""
    # The main element's text once its chrome is removed, read without copying it; clean_text
    # reads at most limit * 20 characters: the text is read no further.
    runs = text_runs(main.node, skip=is_boilerplate)
    if runs is None:
        text = extracted_text(main.content)
    else:
        text = joined_runs(runs, limit * 20 if limit else None)
    return clean(text, limit)
