"""What the web kinds (sitemap, crawl, wordpress, zendesk) share: the fields of the kinds
that fetch HTML pages, per-source run state (requests deduplicated by the handler, since the
spider sets ``dont_filter``; the ``max_pages`` budget), robots.txt checks on discovered
links, and turning a fetched page into resources.

*Rotation* (:class:`RotatingHandler`, the sitemap and crawl kinds): pages found (listed by a
sitemap, linked from a crawled page) are not requested at once but become candidates; when
everything asked for is answered, the spider asks the handler (``idle``) and the budget goes
to the candidates that need it most: pages never fetched (and pages whose sitemap ``lastmod``
changed) first, newest ``lastmod`` first, nearest the start first; then the pages fetched
longest ago. So N runs of budget B cover N×B pages of a larger site, and a run that leaves
pages for later says how many in its warning. A crawl remembers the pages it found but left
(table ``web_frontier``) and starts its next run with them."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from scrapy import Request
from scrapy.http import Response

from harvesters.parsers.links import document_title, is_document_url, is_slides_url
from harvesters.source import Pattern, SourceBase, check_patterns, looks_html, response_content_type
from pipeline.pages import PageState, PagesUnchanged, PageVisit, known_lastmods, page_history
from pipeline.resource import Batch, Resource
from pipeline.urls import canonical_url, same_site

if TYPE_CHECKING:
    from harvesters.spider import HarvestContext

logger = logging.getLogger(__name__)

PDF_TYPES = ("application/pdf", "application/vnd.ms-powerpoint",
             "application/vnd.openxmlformats-officedocument.presentationml.presentation",
             "application/msword", "application/vnd.openxmlformats-officedocument.wordprocessingml.document")


class WebSource(SourceBase):
    """Fields shared by the kinds that fetch HTML pages (sitemap, crawl)."""

    url: str
    """The sitemap (sitemap kind) or the start page (crawl kind)."""
    include: list[Pattern] = Field(default_factory=list)
    """Regular expressions (Python `re.search` on the full URL); when given, a page must match one."""
    exclude: list[Pattern] = Field(default_factory=list)
    """Regular expressions; a page matching any is never requested."""
    max_pages: int = Field(default=50, ge=1, le=5000)
    """HTML pages requested per run, at most: the cap is exact (requests are counted when made)."""
    documents: bool = False
    """Same-site links to PDFs and slide decks (`.pdf .ppt .pptx .pps .odp .key .doc .docx`) become
    `document` resources of their own (not fetched); links to other sites never do."""

    _check_patterns = field_validator("include", "exclude")(classmethod(lambda cls, v: check_patterns(v)))

    def wants(self, url: str) -> bool:
        """Whether ``url`` passes the include (any, when given) and exclude (none) patterns."""
        if self.include and not any(re.search(p, url) for p in self.include):
            return False
        return not any(re.search(p, url) for p in self.exclude)


def page_selector(response: Response) -> Any:
    """The response's parsed HTML, built once and shared by every extractor (Scrapy decodes
    it as a browser would, like :func:`harvesters.parsers.page.to_selector`)."""
    selector = getattr(response, "selector", None)
    return selector if selector is not None else response.body


@dataclass
class Candidate:
    """A page a run may request: listed by a sitemap, or linked from a crawled page."""

    url: str
    lastmod: str | None = None
    depth: int = 0
    #: Discovery order (position in the sitemap; the linking page's rank plus the link's position).
    rank: tuple[int, ...] = ()


@dataclass
class WebRun:
    """One source's state during one harvest."""

    source: SourceBase
    requested: set[str] = field(default_factory=set)
    pages_requested: int = 0
    documents: set[str] = field(default_factory=set)
    robots_skipped: int = 0
    budget_hit: bool = False
    known: dict[str, str] = field(default_factory=dict)
    resources: int = 0
    sitemaps: int = 0
    api_pages: int = 0
    fallback: bool = False
    #: Entry links already taken from a feed (the WordPress fallback's archive pages).
    seen_links: set[str] = field(default_factory=set)
    #: Rotation: what is remembered of the source's pages, the pages this run may request
    #: (canonical URL → :class:`Candidate`), the pages it did request, and whether the
    #: budget has been planned for the last time.
    history: dict[str, PageState] = field(default_factory=dict)
    candidates: dict[str, Candidate] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)
    planned: bool = False
    #: Pages a crawl's previous run left for this one (``web_frontier``).
    remembered: set[str] = field(default_factory=set)
    #: Whether a crawl follows a link, by URL; the listed request of a found page, by URL and
    #: ``lastmod`` (the same object each time: documents only remember it).
    follows: dict[str, bool] = field(default_factory=dict)
    listed: dict[tuple[str, str | None], Request] = field(default_factory=dict)

    @staticmethod
    def key(url: str) -> str:
        """What a page is known by: its canonical URL (the URL itself when it has none)."""
        return canonical_url(url) or url

    def is_new(self, url: str) -> bool:
        return self.key(url) not in self.requested

    def mark(self, url: str) -> None:
        self.requested.add(self.key(url))

    def take_page(self, url: str) -> bool:
        """Reserve one of ``max_pages`` for ``url`` (and mark it requested); False when spent."""
        if self.pages_requested >= self.source.max_pages:
            self.budget_hit = True
            return False
        self.pages_requested += 1
        self.mark(url)
        return True


def robots_allows(response: Response, url: str) -> bool:
    """What the robots.txt of the response's host says about ``url`` (same scheme and host
    only; any other URL is checked by the robots middleware when requested)."""
    can_fetch: Callable[[str], bool] | None = response.meta.get("illhub_robots_can_fetch")
    if can_fetch is None:
        return True
    a, b = urlsplit(response.url), urlsplit(url)
    if (a.scheme, a.netloc) != (b.scheme, b.netloc):
        return True
    return bool(can_fetch(url))


def is_html(response: Response) -> bool:
    return looks_html(response.body, response_content_type(response))


def is_document_response(response: Response) -> bool:
    ctype = (response_content_type(response) or "").split(";", 1)[0].strip().lower()
    return ctype in PDF_TYPES or is_document_url(response.url)


class WebHandler:
    """Base for handlers that fetch HTML pages (sitemap, crawl)."""

    def __init__(self) -> None:
        self.context: HarvestContext | None = None
        self.runs: dict[str, WebRun] = {}

    def bind(self, context: HarvestContext) -> None:
        self.context = context

    def new_run(self, source: SourceBase, *, remember_lastmod: bool = False) -> WebRun:
        run = WebRun(source)
        if remember_lastmod and self.context is not None and getattr(self.context, "db", None) is not None:
            run.known = known_lastmods(self.context.db, source.id)
        self.runs[source.id] = run
        return run

    def run_for(self, source: SourceBase) -> WebRun:
        run = self.runs.get(source.id)
        if run is None or run.source is not source:
            run = self.new_run(source)
        return run

    # -- resources -------------------------------------------------------------------

    def document_resource(self, run: WebRun, url: str, text: str, *, linked_from: str | None,
                          page_title: str = "", updated: str | None = None) -> Resource | None:
        key = canonical_url(url) or url
        if key in run.documents:
            return None
        run.documents.add(key)
        extra: dict[str, Any] = {"format": "slides" if is_slides_url(url) else "document"}
        if linked_from:
            extra["linked_from"] = linked_from
        return Resource(
            url=url, title=document_title(url, text),
            description=f"Linked from “{page_title}”." if page_title else "",
            content_type="document", source_id=run.source.id, organization=run.source.organization,
            updated=updated, extra=extra, raw={"url": url, "link_text": text, "linked_from": linked_from},
        )

    def page_resources(self, response: Response, run: WebRun) -> tuple[list[Resource], dict[str, Any] | None]:
        """The page itself (metadata from :func:`extract_page`), its listing items when the
        source has ``selectors``, and its same-site documents when ``documents`` is set."""
        from harvesters.parsers.page import extract_page  # the HTML extractors: only for the kinds reading pages

        source = run.source
        assert isinstance(source, WebSource)
        if is_document_response(response):
            doc = self.document_resource(run, response.url, "", linked_from=None)
            return ([doc] if doc else []), None
        if not is_html(response):
            return [], None
        meta = extract_page(page_selector(response), response.url, http_content_type=response_content_type(response))
        url = meta["canonical_url"] or response.url
        if meta["canonical_url"]:
            run.mark(meta["canonical_url"])
        run.mark(response.url)
        extra: dict[str, Any] = {}
        for key in ("publisher", "site_name", "generator"):
            if meta.get(key):
                extra[key] = meta[key]
        if meta["tags"]:
            extra["tags"] = meta["tags"]
        if response.meta.get("illhub_depth") is not None:
            extra["depth"] = response.meta["illhub_depth"]
        page = Resource(
            url=url, title=meta["title"], description=meta["description"],
            content_type=source.content_type or meta["content_type"], source_id=source.id,
            organization=source.organization or meta["publisher"], published=meta["published"],
            updated=meta["modified"], author=meta["author"], language=meta["language"],
            thumbnail=meta["thumbnail"], excerpt=meta["excerpt"], extra=extra,
            raw={k: v for k, v in meta.items() if k not in ("excerpt",)},
        )
        resources = [page, *self.listing_items(response, source, meta)]
        if source.documents:
            for doc in meta["documents"]:
                r = self.document_resource(run, doc["url"], doc["text"], linked_from=url, page_title=meta["title"])
                if r is not None:
                    resources.append(r)
        return resources, meta

    def listing_items(self, response: Response, source: WebSource, meta: dict[str, Any]) -> list[Resource]:
        """Resources a page lists besides itself (the crawl kind's ``selectors``); warnings go
        to ``meta["warnings"]``."""
        return []

    def page_items(self, response: Response, run: WebRun, *, lastmod: str | None = None) -> Iterable[Any]:
        resources, meta = self.page_resources(response, run)
        room = max(run.source.max_items - run.resources, 0)
        warnings = list((meta or {}).get("warnings", []))
        if len(resources) > room:
            warnings.append(f"max_items ({run.source.max_items}) reached; later resources dropped")
            resources = resources[:room]
        run.resources += len(resources)
        yield Batch(run.source.id, resources, url=response.url, http_status=response.status, warnings=warnings)
        listed = response.meta.get("illhub_listed_url") or response.request.url
        if resources:
            yield PageVisit(run.source.id, listed, resources[0].url, lastmod=lastmod, http_status=response.status)
        elif meta is None:
            # not an HTML page nor a document (an image, a feed, a script behind a page-like
            # link): not followed, and no warning; remembered as fetched, so rotation moves on
            logger.debug("%s: not an HTML page or document (%s); not followed", response.url,
                         response_content_type(response) or "no Content-Type")
            yield PageVisit(run.source.id, listed, "", lastmod=lastmod, http_status=response.status)

    def page_request(self, run: WebRun, url: str, *, depth: int = 0, lastmod: str | None = None,
                     rank: tuple[int, ...] = ()) -> Request | None:
        if not run.take_page(url):
            return None
        run.fetched.append(url)
        meta: dict[str, Any] = {"illhub_step": "page", "illhub_depth": depth, "illhub_listed_url": url}
        if lastmod:
            meta["illhub_lastmod"] = lastmod
        if rank:
            meta["illhub_rank"] = list(rank)
        return Request(url, priority=-depth, meta=meta)

    def page_seen_again(self, run: WebRun, response: Response) -> Iterable[Any]:
        """A page the fetch cache found unchanged: its resource is seen again, and it counts as
        fetched now (rotation moves on to other pages)."""
        listed = response.meta.get("illhub_listed_url") or response.url
        run.mark(listed)
        lastmod = response.meta.get("illhub_lastmod")
        yield PagesUnchanged(run.source.id, [listed], lastmods={listed: lastmod} if lastmod else {}, fetched=True)

    def unchanged(self, response: Response, source: SourceBase, follow: list[Request]) -> Iterable[Any]:
        """A document the fetch cache found unchanged (a 304, or the same body as last time):
        its page, if it gave one, is seen again; the follow-up requests it made last time pass
        the same checks as new links (deduplicated, robots.txt, ``max_pages``, ``lastmod``)."""
        run = self.run_for(source)
        if response.meta.get("illhub_step") == "page":
            yield from self.page_seen_again(run, response)
        unchanged: list[str] = []
        for request in follow:
            url = request.url
            if not run.is_new(url):
                continue
            if request.meta.get("illhub_step") != "page":
                run.mark(url)
                yield request
                continue
            if not robots_allows(response, url):
                run.robots_skipped += 1
                run.mark(url)
                continue
            lastmod = request.meta.get("illhub_lastmod")
            if lastmod and run.known.get(url) == lastmod:
                run.mark(url)
                unchanged.append(url)
                continue
            again = self.page_request(run, url, depth=int(request.meta.get("illhub_depth", 0)), lastmod=lastmod)
            if again is not None:
                yield again
        if unchanged:
            yield PagesUnchanged(source.id, unchanged)


def on_same_site(url: str, source: SourceBase) -> bool:
    return same_site(url, source.url)


class RotatingHandler(WebHandler):
    """Base for the kinds that spend ``max_pages`` on the pages that need it most (sitemap,
    crawl): see the module docstring, "Rotation"."""

    def rotating_run(self, source: SourceBase) -> WebRun:
        run = self.new_run(source, remember_lastmod=True)
        if self.context is not None and getattr(self.context, "db", None) is not None:
            run.history = page_history(self.context.db, source.id)
        return run

    @staticmethod
    def listed(url: str, lastmod: str | None = None) -> Request:
        """A found page as the document remembers it (``illhub_listed``: never sent as such)."""
        meta: dict[str, Any] = {"illhub_step": "page", "illhub_listed": True}
        if lastmod:
            meta["illhub_lastmod"] = lastmod
        return Request(url, meta=meta)

    def offer(self, run: WebRun, url: str, *, lastmod: str | None = None, depth: int = 0,
              rank: tuple[int, ...] = (), key: str | None = None) -> None:
        key = key or run.key(url)
        if key in run.requested:
            return
        found = run.candidates.get(key)
        if found is None:
            run.candidates[key] = Candidate(url, lastmod, depth, rank)
        elif (depth, rank) < (found.depth, found.rank):
            found.depth, found.rank = depth, rank

    def consider(self, run: WebRun, response: Response, url: str, lastmod: str | None, unchanged: list[str], *,
                 depth: int = 0, rank: tuple[int, ...] = ()) -> Request | None:
        """A found page: refused by robots.txt, seen again without a fetch (its ``lastmod`` is
        the one it had when fetched: added to ``unchanged``), or a candidate for the budget.
        Returns the listed request the document remembers, None for a refused page."""
        key = run.key(url)  # once per link (is_new, mark and offer each computed it)
        if key not in run.requested:
            if not robots_allows(response, url):
                run.robots_skipped += 1
                run.requested.add(key)
                return None
            if lastmod and run.known.get(url) == lastmod:
                run.requested.add(key)
                unchanged.append(url)
            else:
                self.offer(run, url, lastmod=lastmod, depth=depth, rank=rank, key=key)
        listed = run.listed.get((url, lastmod))
        if listed is None:
            listed = run.listed[url, lastmod] = self.listed(url, lastmod)
        return listed

    @staticmethod
    def priority(run: WebRun, c: Candidate) -> tuple[Any, ...]:
        """Never-fetched (or changed) pages first: newest ``lastmod`` first, nearest first; then
        the pages fetched longest ago."""
        seen = run.history.get(c.url)
        if seen is None or not seen.last_fetched or (c.lastmod and c.lastmod != seen.lastmod):
            newest = tuple(-ord(ch) for ch in c.lastmod) if c.lastmod else ()
            return (0, c.depth, c.lastmod is None, newest, c.rank)
        return (1, seen.last_fetched, c.depth, c.rank)

    def idle(self, source: SourceBase) -> Iterable[Any]:
        """Called by the spider when all this source asked for is answered: the budget left
        goes to the best candidates; with nothing left to ask, the run's closing items."""
        run = self.runs.get(source.id)
        if run is None or run.source is not source or run.planned:
            return
        waiting = [c for c in run.candidates.values() if run.is_new(c.url)]
        room = run.source.max_pages - run.pages_requested  # type: ignore[attr-defined]
        if waiting and room > 0:
            waiting.sort(key=lambda c: self.priority(run, c))
            for c in waiting[:room]:
                request = self.page_request(run, c.url, depth=c.depth, lastmod=c.lastmod, rank=c.rank)
                if request is not None:
                    yield request
            return
        run.planned = True
        yield from self.closing(run, waiting)

    def closing(self, run: WebRun, waiting: list[Candidate]) -> Iterable[Any]:
        if waiting:
            run.budget_hit = True
            limit = run.source.max_pages  # type: ignore[attr-defined]
            yield Batch(run.source.id, [], warnings=[
                f"max_pages ({limit}) reached: {len(waiting)} more page(s) left for later runs (never-fetched "
                "pages come first next time, then those fetched longest ago; raise max_pages to cover them sooner)"])
