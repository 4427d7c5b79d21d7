"""``sitemap``: the pages a sitemap lists (a sitemap, a sitemap index, gzip or not, or the
``Sitemap:`` lines of a robots.txt).

Pages are filtered by ``include``/``exclude``, the site and robots.txt, and a page whose
``lastmod`` is the one it had when last fetched is not fetched again (it is counted as
seen). At most ``max_pages`` pages and ``MAX_SITEMAPS`` sitemap documents are requested.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.http import Response

from harvesters.parsers.links import is_document_url
from harvesters.source import kind
from harvesters.web import WebHandler, WebSource, on_same_site, robots_allows
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
class SitemapHandler(WebHandler):
    def start(self, source: SitemapSource) -> Iterable[Request]:
        run = self.new_run(source, remember_lastmod=True)
        run.mark(source.url)
        run.sitemaps = 1
        yield Request(source.url, meta={"illhub_step": "sitemap"})

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
        for child in parsed.sitemaps:
            if not run.is_new(child.url):
                continue
            if run.sitemaps >= MAX_SITEMAPS:
                warnings.append(f"more than {MAX_SITEMAPS} sitemaps; the rest were not read")
                break
            run.mark(child.url)
            run.sitemaps += 1
            yield Request(child.url, meta={"illhub_step": "sitemap"})
        unchanged: list[str] = []
        documents = []
        off_site = 0
        for entry in parsed.pages:
            url = entry.url
            if not on_same_site(url, source):
                off_site += 1
                continue
            if not source.wants(url) or not run.is_new(url):
                continue
            if not robots_allows(response, url):
                run.robots_skipped += 1
                run.mark(url)
                continue
            if is_document_url(url):
                if source.documents:
                    run.mark(url)
                    doc = self.document_resource(run, url, "", linked_from=None, updated=entry.lastmod)
                    if doc is not None:
                        documents.append(doc)
                continue
            if entry.lastmod and run.known.get(url) == entry.lastmod:
                run.mark(url)
                unchanged.append(url)
                continue
            request = self.page_request(run, url, lastmod=entry.lastmod)
            if request is not None:
                yield request
        if off_site and off_site == len(parsed.pages):
            warnings.append(f"{response.url}: every URL listed is on another site than {source.url}; none harvested")
        yield Batch(source.id, documents, url=response.url, http_status=response.status, warnings=warnings)
        if unchanged:
            yield PagesUnchanged(source.id, unchanged)
