"""``zendesk``: every public article of a Zendesk Help Center through its Help Center API,
following ``next_page`` (at most ``max_pages`` API pages, on the Help Center's own host)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Literal

from pydantic import Field
from scrapy import Request
from scrapy.http import Response

from harvesters.source import SourceBase, kind
from harvesters.web import WebHandler, on_same_site
from pipeline.resource import Batch


class ZendeskSource(SourceBase):
    """All public articles of a Zendesk Help Center through its Help Center API."""

    kind_name: ClassVar[str] = "zendesk"
    default_content_type: ClassVar[str] = "documentation"
    example: ClassVar[str] = """
- id: atlas-illiad-support
  name: Atlas Systems support (ILLiad)
  kind: zendesk
  url: https://support.atlas-sys.com/hc/en-us
  # locale: en-us    # default: from the URL's /hc/<locale>, else en-us
  per_page: 100      # 1–100
  max_pages: 10      # API requests, at most
"""
    kind: Literal["zendesk"]
    url: str
    """The Help Center's address (`https://support.example.com/hc/en-us`)."""
    locale: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    """The Help Center locale (`en-us`); default: from the URL's `/hc/<locale>`, else `en-us`."""
    per_page: int = Field(default=100, ge=1, le=100)
    """Articles per API request."""
    max_pages: int = Field(default=10, ge=1, le=1000)
    """API requests per run, at most."""

    @property
    def help_center_locale(self) -> str:
        from harvesters.parsers.zendesk import DEFAULT_LOCALE, locale_from_url

        return (self.locale or locale_from_url(self.url) or DEFAULT_LOCALE).lower()


@kind(ZendeskSource)
class ZendeskHandler(WebHandler):
    def start(self, source: ZendeskSource) -> Iterable[Request]:
        from harvesters.parsers.zendesk import articles_url

        run = self.new_run(source)
        url = articles_url(source.url, source.help_center_locale, source.per_page)
        run.mark(url)
        run.api_pages = 1
        yield Request(url, meta={"illhub_step": "zendesk"})

    def parse(self, response: Response, source: ZendeskSource) -> Iterable[Any]:
        from harvesters.parsers.zendesk import parse_articles

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

    # -- illhub check-registry: the one request that says whether the URL is of this kind --

    check_advice = "the Help Center API is closed: harvest it with kind: crawl"

    def check_probes(self, source: ZendeskSource) -> list[tuple[str, str, str, str]]:
        from harvesters.parsers.zendesk import articles_url

        return [("zendesk", articles_url(source.url, source.help_center_locale, 1), "zendesk-api",
                 "the Help Center API")]

