"""``wordpress``: every post (and, with ``pages: true``, every page) of a WordPress site
through its REST API, paged with ``per_page``/``page`` up to ``X-WP-TotalPages`` (and at
most ``max_pages`` API pages per collection). When the API is closed (401/403/404, a
``rest_*`` error, or HTML instead of JSON) the site's feed is read instead, following
WordPress's ``?paged=N`` feed archive pages while they bring new entries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator
from scrapy import Request
from scrapy.http import Response

from harvesters.source import SourceBase, check_http_url, kind, response_content_type
from harvesters.web import WebHandler, WebRun
from pipeline.resource import Batch

#: Answers the handler reads itself (a closed API, the end of the feed archive).
HANDLED_STATUSES = [400, 401, 403, 404, 410]


class WordPressSource(SourceBase):
    """All posts (and optionally pages) of a WordPress site through its REST API; the
    site's feed (paged with ``?paged=N``) when the API is closed."""

    kind_name: ClassVar[str] = "wordpress"
    default_content_type: ClassVar[str] = "article"
    example: ClassVar[str] = """
- id: oclc-next-blog
  name: OCLC Next blog
  kind: wordpress
  url: https://blog.oclc.org/next/
  pages: false       # true: also the site's pages (content type page)
  per_page: 50       # posts per API request (1–100)
  max_pages: 5       # API requests per collection, at most (here: the newest 250 posts)
"""
    kind: Literal["wordpress"]
    url: str
    """The site's address (`https://blog.example.org/news/`): the API is at `<url>wp-json/wp/v2/`, the feed at
    `<url>feed/`."""
    pages: bool = False
    """Also harvest the site's pages (content type `page`), not only its posts."""
    per_page: int = Field(default=50, ge=1, le=100)
    """Posts per API request."""
    max_pages: int = Field(default=10, ge=1, le=1000)
    """API requests per collection (posts, pages), at most; for the feed fallback, archive pages read."""
    api_url: str | None = None
    """The REST API's base when it is not at `<url>wp-json/wp/v2/` (sites without pretty permalinks:
    `https://example.org/?rest_route=/wp/v2/`)."""

    _check_api = field_validator("api_url")(classmethod(lambda cls, v: None if v is None else check_http_url(v)))


@kind(WordPressSource)
class WordPressHandler(WebHandler):
    def _api_request(self, run: WebRun, collection: str, page: int) -> Request | None:
        from harvesters.parsers.wordpress import api_base, collection_url

        source = run.source
        assert isinstance(source, WordPressSource)
        url = collection_url(source.api_url or api_base(source.url), collection, page, source.per_page)
        if not run.is_new(url):
            return None
        run.mark(url)
        return Request(url, meta={"illhub_step": "wp_api", "illhub_collection": collection, "illhub_page": page,
                                  "handle_httpstatus_list": HANDLED_STATUSES})

    def _feed_request(self, run: WebRun, page: int) -> Request | None:
        from harvesters.parsers.wordpress import feed_url

        url = feed_url(run.source.url, page)
        if not run.is_new(url):
            return None
        run.mark(url)
        return Request(url, meta={"illhub_step": "wp_feed", "illhub_page": page,
                                  "handle_httpstatus_list": [404, 410] if page > 1 else []})

    def start(self, source: WordPressSource) -> Iterable[Request]:
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

    def parse(self, response: Response, source: WordPressSource) -> Iterable[Any]:
        from harvesters.parsers.wordpress import APIClosed, parse_posts

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
        from harvesters.parsers.feed import NotAFeed, parse_feed

        source = run.source
        assert isinstance(source, WordPressSource)
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

    # -- illhub check-registry: the one request that says whether the URL is of this kind --

    check_advice = "not a WordPress site? run illhub add-source URL to find the right kind"

    def check_probes(self, source: WordPressSource) -> list[tuple[str, str, str, str]]:
        from harvesters.parsers.wordpress import api_base, collection_url, feed_url

        return [("wordpress", collection_url(source.api_url or api_base(source.url), "posts", 1, 1), "wp-api",
                 "the WordPress REST API"),
                ("feed", feed_url(source.url), "feed", "only the site's feed (the harvest's fallback)")]

