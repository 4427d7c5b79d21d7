"""``crawl``: pages reached from a start page by following same-site links.

Breadth first (a request's priority is minus its depth), at most ``max_depth`` links away
from the start page and at most ``max_pages`` pages requested. Links are checked against
``follow``/``exclude``, robots.txt and the pages already requested before they are asked
for, so a disallowed or repeated link costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scrapy import Request
from scrapy.http import Response

from harvesters.kinds import register
from harvesters.kinds.web import WebHandler, is_html, on_same_site, page_selector, robots_allows
from harvesters.parsers.page import extract_links, is_document_url


@register("crawl")
class CrawlHandler(WebHandler):
    def start(self, source: Any) -> Iterable[Request]:
        run = self.new_run(source)
        request = self.page_request(run, source.url, depth=0)
        if request is not None:
            yield request

    def parse(self, response: Response, source: Any) -> Iterable[Any]:
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
