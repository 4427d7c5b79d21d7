"""``crawl``: pages reached from a start page by following same-site links.

Breadth first (a request's priority is minus its depth), at most ``max_depth`` links away
from the start page and at most ``max_pages`` pages requested. Links are checked against
``follow``/``exclude``, robots.txt and the pages already requested before they are asked
for, so a disallowed or repeated link costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from scrapy import Request
from scrapy.http import Response

from harvesters.parsers.links import is_document_url
from harvesters.source import SLUG, Pattern, Strict, check_pattern, check_patterns, kind, response_content_type
from harvesters.web import WebHandler, WebSource, is_html, on_same_site, page_selector, robots_allows
from pipeline.resource import Resource


class ListingSelectors(Strict):
    """Selectors for a listing page whose items are the resources (CSS, or XPath when the
    selector starts with ``/``, ``./`` or ``(``; ``xpath:``/``css:`` prefixes force one)."""

    item: str = Field(min_length=1)
    """Each item of the listing: one resource per match (a table row, a list item)."""
    title: str | None = None
    """The item's title (default: its text)."""
    url: str | None = None
    """The item's link (default: the item's first link)."""
    description: str | None = None
    """The item's description."""
    date: str | None = None
    """Its date (becomes `published`)."""
    duration: str | None = None
    """A recording's length (`12:30`, `1:05:00`, `45 min` → `extra.duration_seconds`)."""
    author: str | None = None
    """Its author or presenter."""
    links: dict[str, str] = Field(default_factory=dict)
    """More links kept in `extra.links`, by name (such as `recording`, `transcript`, `slides`)."""
    pages: Pattern | None = None
    """A regular expression: apply the selectors only on pages whose URL matches (default: every crawled page
    where `item` matches)."""

    @model_validator(mode="after")
    def _compile(self) -> ListingSelectors:
        from harvesters.parsers.crawl import check_selector

        problems = []
        for name in ("item", "title", "url", "description", "date", "duration", "author"):
            value = getattr(self, name)
            if value is not None:
                try:
                    check_selector(value)
                except ValueError as e:
                    problems.append(f"{name}: {e}")
        for name, value in self.links.items():
            if not SLUG.match(name.replace("_", "-")):
                problems.append(f"links: {name!r} is not a simple name (such as recording, slides, transcript)")
            try:
                check_selector(value)
            except ValueError as e:
                problems.append(f"links.{name}: {e}")
        if self.pages is not None:
            try:
                check_pattern(self.pages)
            except ValueError as e:
                problems.append(f"pages: {e}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class CrawlSource(WebSource):
    """Pages reached by following links from a start page, on the same site only."""

    kind_name: ClassVar[str] = "crawl"
    example: ClassVar[str] = """
- id: oclc-help-tipasa
  name: Tipasa help (OCLC)
  kind: crawl
  url: https://help.oclc.org/Resource_Sharing/Tipasa
  max_depth: 2
  max_pages: 40
  follow: ['^https://help\\.oclc\\.org/Resource_Sharing/Tipasa(/|$)']   # optional
  exclude: ['/Special:', '\\?action=']
  documents: true
"""
    kind: Literal["crawl"]
    follow: list[Pattern] = Field(default_factory=list)
    """Regular expressions of links to follow. Without it, a link is followed when it lies under the start page's
    folder: `…/Resource_Sharing/Tipasa` and `…/Tipasa/…` for a MindTouch-style path, `…/guides/` for
    `…/guides/start.html`, the whole site for `…/c.php?g=1`."""
    max_depth: int = Field(default=2, ge=0, le=10)
    """Links away from the start page (0: the start page only)."""
    selectors: ListingSelectors | None = None
    """Read listing pages whose items are resources (a table of recordings, a list of talks)."""

    _check_follow = field_validator("follow")(classmethod(lambda cls, v: check_patterns(v)))

    def follows(self, url: str) -> bool:
        """Whether a same-site link is followed: it matches ``follow`` (by default, it lies
        under the start page's folder) and no ``exclude`` pattern."""
        if any(re.search(p, url) for p in self.exclude):
            return False
        if self.follow:
            return any(re.search(p, url) for p in self.follow)
        folder = start_folder(self.url)
        bare = url.split("#", 1)[0].split("?", 1)[0]
        if folder.endswith("/"):
            return bare.startswith(folder)
        return bare == folder or bare.startswith(folder + "/")


def start_folder(url: str) -> str:
    """``https://h/a/b/page.html`` → ``https://h/a/b/``; ``https://h/a/b`` → ``https://h/a/b``
    (a MindTouch-style path is its own folder); ``https://h/c.php?g=1`` → ``https://h/``."""
    base = url.split("#", 1)[0].split("?", 1)[0]
    last = base.rsplit("/", 1)[-1]
    if "." in last:
        return base[: len(base) - len(last)]
    return base


@kind(CrawlSource)
class CrawlHandler(WebHandler):
    def start(self, source: CrawlSource) -> Iterable[Request]:
        run = self.new_run(source)
        request = self.page_request(run, source.url, depth=0)
        if request is not None:
            yield request

    def listing_items(self, response: Response, source: WebSource, meta: dict[str, Any]) -> list[Resource]:
        """One resource per item of a listing page, when the source has ``selectors``."""
        selectors = source.selectors if isinstance(source, CrawlSource) else None
        if selectors is None or (selectors.pages is not None and not re.search(selectors.pages, response.url)):
            return []
        from harvesters.parsers.crawl import parse_listing

        items, warnings = parse_listing(
            page_selector(response), response.url, selectors.model_dump(exclude_none=True), source_id=source.id,
            organization=source.organization, content_type=source.content_type,
            http_content_type=response_content_type(response),
        )
        if warnings:
            meta.setdefault("warnings", []).extend(warnings)
        return items

    def parse(self, response: Response, source: CrawlSource) -> Iterable[Any]:
        from harvesters.parsers.page import extract_links

        run = self.run_for(source)
        depth = int(response.meta.get("illhub_depth", 0))
        yield from self.page_items(response, run)
        if depth >= source.max_depth or not is_html(response):
            return
        if not on_same_site(response.url, source):
            return  # redirected off the site: keep the page, follow nothing from it
        for link in extract_links(page_selector(response), response.url):
            url = link.url
            if not on_same_site(url, source) or not run.is_new(url) or is_document_url(url):
                continue
            if not source.follows(url):
                continue
            if not robots_allows(response, url):
                run.robots_skipped += 1
                run.mark(url)
                continue
            request = self.page_request(run, url, depth=depth + 1)
            if request is None:
                break  # max_pages requested
            yield request
