"""``wordpress``: every post (and, with ``pages: true``, every page) of a WordPress site
through its REST API, paged with ``per_page``/``page`` up to ``X-WP-TotalPages`` (and at
most ``max_pages`` API pages per collection). When the API is closed (401/403/404, a
``rest_*`` error, or HTML instead of JSON) the site's feed is read instead, following
WordPress's ``?paged=N`` feed archive pages while they bring new entries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scrapy import Request
from scrapy.http import Response

from harvesters.kinds import register, response_content_type
from harvesters.kinds.web import WebHandler, WebRun
from harvesters.parsers.feed import NotAFeed, parse_feed
from harvesters.parsers.wordpress import APIClosed, api_base, collection_url, feed_url, parse_posts
from pipeline.resource import Batch

#: Answers the handler reads itself (a closed API, the end of the feed archive).
HANDLED_STATUSES = [400, 401, 403, 404, 410]


@register("wordpress")
class WordPressHandler(WebHandler):
    def _api_request(self, run: WebRun, collection: str, page: int) -> Request | None:
        source = run.source
        url = collection_url(source.api_url or api_base(source.url), collection, page, source.per_page)
        if not run.is_new(url):
            return None
        run.mark(url)
        return Request(url, meta={"illhub_step": "wp_api", "illhub_collection": collection, "illhub_page": page,
                                  "handle_httpstatus_list": HANDLED_STATUSES})

    def _feed_request(self, run: WebRun, page: int) -> Request | None:
        url = feed_url(run.source.url, page)
        if not run.is_new(url):
            return None
        run.mark(url)
        return Request(url, meta={"illhub_step": "wp_feed", "illhub_page": page,
                                  "handle_httpstatus_list": [404, 410] if page > 1 else []})

    def start(self, source: Any) -> Iterable[Request]:
        run = self.new_run(source)
        for collection in ("posts", "pages") if source.pages else ("posts",):
            request = self._api_request(run, collection, 1)
            if request is not None:
                yield request

    def _cap(self, run: WebRun, resources: list[Any], warnings: list[str]) -> list[Any]:
        room = max(run.source.max_items - run.resources, 0)
        if len(resources) > room:
            warnings.append(f"max_items ({run.source.max_items}) reached; later posts not kept")
            resources = resources[:room]
        run.resources += len(resources)
        return resources

    def parse(self, response: Response, source: Any) -> Iterable[Any]:
        run = self.run_for(source)
        step = response.meta.get("illhub_step")
        page = int(response.meta.get("illhub_page", 1))
        if step == "wp_feed":
            yield from self._parse_feed(response, run, page)
            return
        collection = response.meta.get("illhub_collection", "posts")
        content_type = source.content_type or ("article" if collection == "posts" else "page")
        total_header = response.headers.get(b"X-WP-TotalPages")
        try:
            parsed = parse_posts(response.body, response.url, status=response.status,
                                 total_pages_header=total_header.decode("latin-1") if total_header else None,
                                 source_id=source.id, organization=source.organization, content_type=content_type)
        except APIClosed as e:
            if page > 1 or run.fallback:
                raise ValueError(f"{response.url}: {e}") from None
            run.fallback = True
            request = self._feed_request(run, 1)
            yield Batch(source.id, [], url=response.url, http_status=response.status,
                        warnings=[f"{e}; read the site's feed instead (the feed has fewer, shorter entries)"])
            if request is not None:
                yield request
            return
        warnings = list(parsed.warnings)
        resources = self._cap(run, parsed.resources, warnings)
        yield Batch(source.id, resources, url=response.url, http_status=response.status, warnings=warnings)
        if run.resources >= source.max_items:
            return
        if page == 1:
            last = parsed.total_pages if parsed.total_pages is not None else None
            if last is None:
                # No X-WP-TotalPages: go on while pages come back full.
                if len(parsed.resources) >= source.per_page and source.max_pages > 1:
                    request = self._api_request(run, collection, 2)
                    if request is not None:
                        yield request
                return
            if last > source.max_pages:
                yield Batch(source.id, [], url=response.url, warnings=[
                    f"{collection}: {last} API pages of {source.per_page}; read the first {source.max_pages} (max_pages)"])
            for n in range(2, min(last, source.max_pages) + 1):
                request = self._api_request(run, collection, n)
                if request is not None:
                    yield request
        elif parsed.total_pages is None and len(parsed.resources) >= source.per_page and page < source.max_pages:
            request = self._api_request(run, collection, page + 1)
            if request is not None:
                yield request

    def _parse_feed(self, response: Response, run: WebRun, page: int) -> Iterable[Any]:
        source = run.source
        if response.status in (404, 410):
            return  # past the last archive page
        try:
            parsed = parse_feed(response.body, response.url, source_id=source.id,
                                content_type=source.content_type or "article", organization=source.organization,
                                max_items=source.max_items, http_content_type=response_content_type(response))
        except NotAFeed as e:
            if page > 1:
                return  # the archive page is not a feed: the archive ended
            raise NotAFeed(f"{response.url}: the REST API is closed and {e}") from None
        seen = run.seen_links
        fresh = [r for r in parsed.resources if r.url not in seen]
        seen.update(r.url for r in fresh)
        warnings = list(parsed.warnings)
        resources = self._cap(run, fresh, warnings)
        yield Batch(source.id, resources, url=response.url, http_status=response.status, warnings=warnings)
        if fresh and page < source.max_pages and run.resources < source.max_items:
            request = self._feed_request(run, page + 1)
            if request is not None:
                yield request
