"""``zendesk``: every public article of a Zendesk Help Center through its Help Center API,
following ``next_page`` (at most ``max_pages`` API pages, on the Help Center's own host)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scrapy import Request
from scrapy.http import Response

from harvesters.kinds import register
from harvesters.kinds.web import WebHandler, on_same_site
from harvesters.parsers.zendesk import articles_url, parse_articles
from pipeline.resource import Batch


@register("zendesk")
class ZendeskHandler(WebHandler):
    def start(self, source: Any) -> Iterable[Request]:
        run = self.new_run(source)
        url = articles_url(source.url, source.help_center_locale, source.per_page)
        run.mark(url)
        run.api_pages = 1
        yield Request(url, meta={"illhub_step": "zendesk"})

    def parse(self, response: Response, source: Any) -> Iterable[Any]:
        run = self.run_for(source)
        parsed = parse_articles(response.body, response.url, source_id=source.id, organization=source.organization,
                                content_type=source.content_type or "documentation")
        warnings = list(parsed.warnings)
        room = max(source.max_items - run.resources, 0)
        resources = parsed.resources[:room]
        if len(parsed.resources) > room:
            warnings.append(f"max_items ({source.max_items}) reached; later articles not kept")
        run.resources += len(resources)
        nxt = parsed.next_page
        if nxt and run.api_pages >= source.max_pages and run.resources < source.max_items:
            warnings.append(f"more articles than {source.max_pages} API pages (max_pages); the rest not read")
        yield Batch(source.id, resources, url=response.url, http_status=response.status, warnings=warnings)
        if not nxt or run.api_pages >= source.max_pages or run.resources >= source.max_items:
            return
        if not on_same_site(nxt, source):
            raise ValueError(f"{response.url}: next_page points to another site ({nxt}); not followed")
        if run.is_new(nxt):
            run.mark(nxt)
            run.api_pages += 1
            yield Request(nxt, meta={"illhub_step": "zendesk"})
