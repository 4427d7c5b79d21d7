"""Listing pages whose items are the resources (a table of recordings, a list of talks),
read with selectors from the registry: pure (page text + URL + selectors in, Resources out).

A selector is CSS (parsel's dialect, with ``::text`` and ``::attr(name)``) unless it starts
with ``/``, ``./``, ``../`` or ``(``, or is prefixed ``xpath:``; ``css:`` forces CSS.
Field selectors are applied inside each item, so XPath ones should start with ``./``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import html_text
from lxml import etree
from parsel import Selector, SelectorList
from parsel.csstranslator import HTMLTranslator

from harvesters.parsers.links import is_document_url, is_video_url
from harvesters.parsers.page import to_selector
from pipeline.normalize import clean_text, parse_date
from pipeline.resource import Resource
from pipeline.urls import absolute_url

FIELDS = ("title", "url", "description", "date", "duration", "author")
_translator = HTMLTranslator()


def selector_kind(expr: str) -> tuple[str, str]:
    """``("xpath" | "css", expression)`` for a registry selector string."""
    expr = expr.strip()
    if expr.startswith("xpath:"):
        return "xpath", expr[6:].strip()
    if expr.startswith("css:"):
        return "css", expr[4:].strip()
    if expr.startswith(("/", "./", "../", "(")):
        return "xpath", expr
    return "css", expr


def check_selector(expr: str) -> str:
    """Raise ValueError with a readable reason if ``expr`` is not a valid CSS or XPath selector."""
    kind, body = selector_kind(expr)
    if not body:
        raise ValueError("is empty")
    try:
        if kind == "css":
            _translator.css_to_xpath(body)
        else:
            etree.XPath(body)
    except Exception as e:  # noqa: BLE001 - cssselect and lxml raise several types; all mean "invalid"
        raise ValueError(f"{expr!r} is not a valid {'CSS' if kind == 'css' else 'XPath'} selector ({type(e).__name__}: {e})") from None
    return expr


def select(node: Selector, expr: str) -> SelectorList:
    kind, body = selector_kind(expr)
    return node.css(body) if kind == "css" else node.xpath(body)


def _value(node: Selector, expr: str, *, want_url: bool = False) -> str:
    found = select(node, expr)
    if not found:
        return ""
    first = found[0]
    if isinstance(first.root, str):
        return first.root.strip()
    if want_url:
        return (first.attrib.get("href") or first.attrib.get("src") or first.xpath("string(.//a/@href)").get("")).strip()
    return clean_text(html_text.extract_text(first.root, guess_layout=False))


def duration_seconds(text: str) -> int | None:
    """Seconds in "1:02:03", "45:10", "58 min", "1 hr 5 min", "1h05m" or "90 minutes"; else None."""
    text = text.strip().lower()
    m = re.fullmatch(r"(?:(\d+):)?(\d{1,2}):(\d{2})", text)
    if m:
        h, mnt, s = (int(x) if x else 0 for x in m.groups())
        return h * 3600 + mnt * 60 + s
    total, found = 0, False
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)(?![a-z])", text):
        found = True
        value = float(amount)
        total += int(value * (3600 if unit.startswith("h") else 60 if unit.startswith("m") else 1))
    return total if found else None


def _content_type(url: str, links: Mapping[str, str]) -> str:
    if is_video_url(url):
        return "video"
    if is_document_url(url):
        return "document"
    if any(is_video_url(u) for u in links.values()) or "recording" in links:
        return "video"
    return "page"


def parse_listing(body: bytes | str | Selector, url: str, selectors: Mapping[str, Any], *, source_id: str = "",
                  organization: str | None = None, content_type: str | None = None,
                  http_content_type: str | None = None) -> tuple[list[Resource], list[str]]:
    """One Resource per item matched by ``selectors["item"]``, and warnings.

    ``selectors`` holds ``item`` and optionally ``title``, ``url``, ``description``,
    ``date``, ``duration``, ``author`` and ``links`` (name → selector: extra links kept in
    ``extra["links"]``, such as recording, slides, transcript). Without a ``url`` selector
    an item's link is its first link; items with no link are skipped with a warning.
    """
    sel = to_selector(body, url, http_content_type)
    base = absolute_url(sel.xpath("//base/@href").get(), url) or url
    resources: list[Resource] = []
    no_link = 0
    for item in select(sel, selectors["item"]):
        if isinstance(item.root, str):
            continue
        links: dict[str, str] = {}
        for name, expr in (selectors.get("links") or {}).items():
            href = absolute_url(_value(item, expr, want_url=True), base)
            if href:
                links[name] = href
        link = absolute_url(_value(item, selectors["url"], want_url=True), base) if selectors.get("url") else None
        if not link:
            link = absolute_url(item.xpath("string(.//a[@href][1]/@href)").get(""), base)
        if not link:
            no_link += 1
            continue
        title = _value(item, selectors["title"]) if selectors.get("title") else ""
        if not title:
            title = clean_text(item.xpath("normalize-space(string(.//a[@href][1]))").get(""))
        extra: dict[str, Any] = {"listing_page": url}
        if links:
            extra["links"] = links
        if selectors.get("duration"):
            duration = _value(item, selectors["duration"])
            if duration:
                extra["duration"] = duration
                seconds = duration_seconds(duration)
                if seconds is not None:
                    extra["duration_seconds"] = seconds
        date = _value(item, selectors["date"]) if selectors.get("date") else ""
        raw = {"item_text": clean_text(html_text.extract_text(item.root, guess_layout=False), 2000), "links": links}
        resources.append(Resource(
            url=link,
            title=title,
            description=_value(item, selectors["description"]) if selectors.get("description") else "",
            content_type=content_type or _content_type(link, links),
            source_id=source_id,
            organization=organization,
            published=parse_date(date) if date else None,
            author=_value(item, selectors["author"]) or None if selectors.get("author") else None,
            extra=extra,
            raw=raw,
        ))
    warnings = [f"{url}: {no_link} listing item(s) had no link and were skipped"] if no_link else []
    return resources, warnings
