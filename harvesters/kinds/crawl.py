"""``crawl``: pages reached from a start page by following same-site links.

Breadth first, level by level, at most ``max_depth`` links away from the start page and at
most ``max_pages`` pages requested per run. Links are checked against ``follow``/``exclude``,
robots.txt, their extension (images, scripts, feeds, archives are not pages: Scrapy's
``IGNORED_EXTENSIONS`` and a few more) and the pages already requested before they are asked
for, so a disallowed, repeated or non-page link costs nothing; a response that is not HTML
after all is not followed (no warning). The budget goes to the pages that need it most:
never-fetched pages first, then those fetched longest ago, and the pages the budget left are
remembered for the next run (``harvesters/web.py``, "Rotation"), so runs of ``max_pages`` B
cover a larger site B pages at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from scrapy import Request
from scrapy.http import Response

from harvesters.parsers.links import is_document_url, is_non_page_url
from harvesters.source import (
    SLUG,
    Pattern,
    Strict,
    check_pattern,
    check_patterns,
    kind,
    looks_html,
    response_content_type,
)
from harvesters.web import Candidate, RotatingHandler, WebRun, WebSource, is_html, on_same_site, page_selector
from pipeline.pages import Frontier, load_frontier
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
class CrawlHandler(RotatingHandler):
    def start(self, source: CrawlSource) -> Iterable[Request]:
        run = self.rotating_run(source)
        db = getattr(self.context, "db", None) if self.context is not None else None
        for i, (url, depth) in enumerate(load_frontier(db, source.id).items() if db is not None else ()):
            run.remembered.add(url)
            if depth <= source.max_depth and self._follows(url, source):
                self.offer(run, url, depth=depth, rank=(-1, i))  # waiting since an earlier run: first in line
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

    def _follows(self, url: str, source: CrawlSource) -> bool:
        """A link worth asking for: on the site, a page (not a document nor an image, a script,
        a feed… by its extension), and followed by ``follow``/``exclude``."""
        return (on_same_site(url, source) and not is_document_url(url) and not is_non_page_url(url)
                and source.follows(url))

    def _follows_in(self, run: WebRun, url: str, source: CrawlSource) -> bool:
        """:meth:`_follows`, once per URL of a run (pages link the same pages again and again)."""
        known = run.follows.get(url)
        if known is None:
            known = run.follows[url] = self._follows(url, source)
        return known

    def _links_from(self, response: Response, source: CrawlSource) -> tuple[int, tuple[int, ...]] | None:
        """(depth, rank) of the links of a fetched page, or None when its links are not followed."""
        depth = int(response.meta.get("illhub_depth", 0))
        if depth >= source.max_depth or not on_same_site(response.url, source):
            return None  # as deep as allowed, or redirected off the site: keep the page, follow nothing
        return depth + 1, tuple(response.meta.get("illhub_rank") or ())

    def parse(self, response: Response, source: CrawlSource) -> Iterable[Any]:
        from harvesters.parsers.page import link_urls

        run = self.run_for(source)
        yield from self.page_items(response, run)
        where = self._links_from(response, source) if is_html(response) else None
        if where is None:
            return
        depth, rank = where
        links = link_urls(page_selector(response), response.url)
        for i, url in enumerate(u for u in links if self._follows_in(run, u, source)):
            listed = self.consider(run, response, url, None, [], depth=depth, rank=(*rank, i))
            if listed is not None:
                yield listed  # remembered with this page: unchanged next time, it lists them again

    def unchanged(self, response: Response, source: CrawlSource, follow: list[Request]) -> Iterable[Any]:
        """A page the fetch cache found unchanged: seen again, and the links it gave last time
        are considered again, as when it was parsed."""
        run = self.run_for(source)
        yield from self.page_seen_again(run, response)
        where = self._links_from(response, source)
        if where is None:
            return
        depth, rank = where
        links = [r.url for r in follow if r.meta.get("illhub_step") == "page"]
        for i, url in enumerate(u for u in links if self._follows_in(run, u, source)):
            self.consider(run, response, url, None, [], depth=depth, rank=(*rank, i))

    def closing(self, run: WebRun, waiting: list[Candidate]) -> Iterable[Any]:
        """The pages found but left for later, never fetched, are remembered for the next run
        (``web_frontier``); those requested in this one, or no longer followed, are forgotten."""
        pending = {c.url: c.depth for c in waiting if c.url not in run.history}
        done = [u for u in (*run.fetched, *run.remembered) if u not in pending]
        if pending or done:
            yield Frontier(run.source.id, pending=pending, done=list(dict.fromkeys(done)))
        yield from super().closing(run, waiting)

    # -- illhub check-registry: the one request that says whether the URL is of this kind --

    check_advice = "view the live page's source and rewrite selectors (or remove them to keep the pages only)"

    def check_probes(self, source: CrawlSource) -> list[tuple[str, str, str, str]]:
        return [("crawl", source.url, "page", "the start page")]

    def read_check(self, check: Any, c: Any, body: bytes, headers: dict[str, Any]) -> str | None:
        """The start page: HTML, its selectors match, and it links pages to follow."""
        from harvesters.parsers.crawl import parse_listing
        from harvesters.parsers.page import extract_links, to_selector
        from harvesters.registry_check import content_type

        source = check.source
        ctype = content_type(headers)
        if not looks_html(body, ctype):
            return f"not an HTML page ({(ctype or 'no Content-Type').split(';')[0]})"
        sel = to_selector(body, check.last_url, ctype)
        found: list[str] = []
        if source.selectors is not None:
            items, _warnings = parse_listing(sel, check.last_url, source.selectors.model_dump(exclude_none=True),
                                             source_id=source.id)
            if not items:
                return f"selectors.item {source.selectors.item!r} matched no item with a link on the page"
            found.append(f"selectors matched {len(items)} item{'s' if len(items) != 1 else ''}")
        here = check.last_url.split("#", 1)[0]
        follow = list(dict.fromkeys(
            link.url for link in extract_links(sel, check.last_url)
            if self._follows(link.url, source) and link.url.split("#", 1)[0] != here))
        if source.max_depth > 0:
            if follow:
                found.append(f"{len(follow)} link{'s' if len(follow) != 1 else ''} to follow")
            else:
                check.warning = ("the page links no page that follow/exclude let the crawl reach: only the start "
                                 "page (and its documents) will be kept")
        c.evidence = "an HTML page" + (f": {', '.join(found)}" if found else "")
        return None

