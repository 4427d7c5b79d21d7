"""``sitemap``: the pages a sitemap lists (a sitemap, a sitemap index, gzip or not, or the
``Sitemap:`` lines of a robots.txt).

Pages are filtered by ``include``/``exclude``, the site, robots.txt and their extension (an
image or a feed is not a page), and a page whose ``lastmod`` is the one it had when last
fetched is not fetched again (it is counted as seen). At most ``MAX_SITEMAPS`` sitemap
documents are read; once all are, the ``max_pages`` budget goes to the pages that need it
most (never fetched or changed first, then the longest unvisited: see ``harvesters/web.py``,
"Rotation"), so a sitemap larger than the budget is covered over several runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.http import Response

from harvesters.parsers.links import is_document_url, is_non_page_url
from harvesters.source import kind
from harvesters.web import RotatingHandler, WebRun, WebSource, on_same_site, robots_allows
from pipeline.pages import PagesUnchanged
from pipeline.resource import Batch

#: Sitemap documents (index, children) read per source and run, at most.
MAX_SITEMAPS = 50


class SitemapSource(WebSource):
    """Pages listed by a sitemap, a sitemap index (gzip or not) or robots.txt's ``Sitemap:``
    lines; pages whose ``lastmod`` has not changed since the last run are not fetched."""

    kind_name: ClassVar[str] = "sitemap"
    example: ClassVar[str] = """
- id: atlas-illiad-docs-sitemap
  name: ILLiad documentation (Atlas Systems)
  kind: sitemap
  url: https://docs.atlas-sys.com/sitemap.xml       # or …/robots.txt, or a sitemap index
  include: ['^https://docs\\.atlas-sys\\.com/docs/illiad/']
  exclude: ['/release-notes/']
  max_pages: 50
"""
    kind: Literal["sitemap"]


@kind(SitemapSource)
class SitemapHandler(RotatingHandler):
    def start(self, source: SitemapSource) -> Iterable[Request]:
        run = self.rotating_run(source)
        run.mark(source.url)
        run.sitemaps = 1
        yield Request(source.url, meta={"illhub_step": "sitemap"})

    def _children(self, run: WebRun, urls: list[str], warnings: list[str]) -> Iterable[Request]:
        for url in urls:
            if not run.is_new(url):
                continue
            if run.sitemaps >= MAX_SITEMAPS:
                warnings.append(f"more than {MAX_SITEMAPS} sitemaps; the rest were not read")
                break
            run.mark(url)
            run.sitemaps += 1
            yield Request(url, meta={"illhub_step": "sitemap"})

    def _wanted(self, url: str, source: SitemapSource) -> bool:
        return source.wants(url) and not is_non_page_url(url)

    def parse(self, response: Response, source: SitemapSource) -> Iterable[Any]:
        from harvesters.parsers.sitemap import NotASitemap, parse_sitemap

        run = self.run_for(source)
        if response.meta.get("illhub_step") == "page":
            yield from self.page_items(response, run, lastmod=response.meta.get("illhub_lastmod"))
            return
        try:
            parsed = parse_sitemap(response.body, response.url)
        except NotASitemap as e:
            if response.url.rstrip("/").endswith("/robots.txt"):
                # No Sitemap: lines: try the conventional location once.
                parts = urlsplit(response.url)
                fallback = f"{parts.scheme}://{parts.netloc}/sitemap.xml"
                if run.is_new(fallback):
                    run.mark(fallback)
                    yield Request(fallback, meta={"illhub_step": "sitemap"})
                    return
            raise NotASitemap(f"{response.url}: {e}") from None
        warnings = list(parsed.warnings)
        yield from self._children(run, [child.url for child in parsed.sitemaps], warnings)
        unchanged: list[str] = []
        documents = []
        off_site = 0
        order = len(run.candidates)
        for i, entry in enumerate(parsed.pages):
            url = entry.url
            if not on_same_site(url, source):
                off_site += 1
                continue
            if not self._wanted(url, source):
                continue
            if is_document_url(url):
                if not robots_allows(response, url):
                    run.robots_skipped += 1
                elif source.documents and run.is_new(url):
                    run.mark(url)
                    doc = self.document_resource(run, url, "", linked_from=None, updated=entry.lastmod)
                    if doc is not None:
                        documents.append(doc)
                continue
            listed = self.consider(run, response, url, entry.lastmod, unchanged, rank=(order + i,))
            if listed is not None:
                yield listed  # remembered with this sitemap: an unchanged sitemap lists its pages again
        if off_site and off_site == len(parsed.pages):
            warnings.append(f"{response.url}: every URL listed is on another site than {source.url}; none harvested")
        yield Batch(source.id, documents, url=response.url, http_status=response.status, warnings=warnings)
        if unchanged:
            yield PagesUnchanged(source.id, unchanged)

    def unchanged(self, response: Response, source: SitemapSource, follow: list[Request]) -> Iterable[Any]:
        """A sitemap (or page) the fetch cache found unchanged: its child sitemaps are read and
        its pages considered again, as when it was parsed."""
        run = self.run_for(source)
        if response.meta.get("illhub_step") == "page":
            yield from self.page_seen_again(run, response)
            return
        warnings: list[str] = []
        children = [r.url for r in follow if r.meta.get("illhub_step") == "sitemap"]
        yield from self._children(run, children, warnings)
        unchanged: list[str] = []
        order = len(run.candidates)
        pages = [r for r in follow if r.meta.get("illhub_step") == "page" and self._wanted(r.url, source)]
        for i, request in enumerate(pages):
            if on_same_site(request.url, source) and not is_document_url(request.url):
                self.consider(run, response, request.url, request.meta.get("illhub_lastmod"), unchanged,
                              rank=(order + i,))
        if warnings:
            yield Batch(source.id, [], url=response.url, warnings=warnings)
        if unchanged:
            yield PagesUnchanged(source.id, unchanged)

    # -- illhub check-registry: the one request that says whether the URL is of this kind --

    check_advice = "check robots.txt for its Sitemap: line, or the include patterns; else use kind: crawl"

    def check_probes(self, source: SitemapSource) -> list[tuple[str, str, str, str]]:
        if source.url.split("?", 1)[0].rstrip("/").endswith("/robots.txt"):
            return [("sitemap", source.url, "robots", "robots.txt")]
        return [("sitemap", source.url, "sitemap", "a sitemap")]

    def read_check(self, check: Any, c: Any, body: bytes, headers: dict[str, Any]) -> str | None:
        from harvesters.parsers.sitemap import NotASitemap, parse_sitemap

        source = check.source
        try:
            parsed = parse_sitemap(body, check.last_url)
        except NotASitemap as e:
            return str(e)
        if parsed.kind == "sitemapindex":
            if not parsed.sitemaps:
                return "the sitemap index lists no sitemap"
            c.evidence = f"a sitemap index of {len(parsed.sitemaps)} sitemaps"
            return None
        if parsed.kind == "robots":  # a Sitemap: URL that answers with robots.txt lines
            c.evidence = f"robots.txt naming {len(parsed.sitemaps)} sitemaps"
            return None
        if not parsed.pages:
            return "the sitemap lists no URL"
        wanted = [p for p in parsed.pages if source.wants(p.url)]
        if not wanted:
            return f"none of the {len(parsed.pages)} URLs listed passes include/exclude (first: {parsed.pages[0].url})"
        c.evidence = f"a sitemap: {len(parsed.pages)} URLs, {len(wanted)} wanted"
        return None

