"""The WordPress REST API (``/wp-json/wp/v2/posts`` and ``/pages``): pure JSON → Resources.

Only public fields are read. ``date_gmt``/``modified_gmt`` are UTC without an offset;
titles and excerpts are HTML; ``_embedded`` (from ``_embed=author,wp:term``) gives the
author's and the terms' names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from harvesters.parsers.text import EXCERPT_CHARS, title_from_text
from pipeline.normalize import clean_text, parse_date
from pipeline.resource import Resource

#: Fields asked for; ``content`` is left out (whole posts are large, the excerpt suffices).
FIELDS = "id,date_gmt,modified_gmt,link,title,excerpt,type,author,categories,tags,_links,_embedded"
#: Error codes WordPress answers when its REST API is switched off or needs a login.
CLOSED_CODES = {"rest_disabled", "rest_cannot_access", "rest_login_required", "rest_no_route",
                "rest_forbidden", "rest_not_logged_in", "rest_authentication_error"}


class APIClosed(ValueError):
    """The site's REST API is off, private or missing: use the feed instead."""


@dataclass
class ParsedPosts:
    resources: list[Resource]
    total_pages: int | None
    warnings: list[str] = field(default_factory=list)


def api_base(site_url: str) -> str:
    """``https://host/blog/`` → ``https://host/blog/wp-json/wp/v2/``."""
    if not site_url.endswith("/"):
        site_url += "/"
    return urljoin(site_url, "wp-json/wp/v2/")


def collection_url(api: str, collection: str, page: int, per_page: int) -> str:
    """The URL of one page of posts or pages, oldest query parameters first, stable."""
    if "rest_route=" in api:  # ?rest_route=/wp/v2/ style (sites without pretty permalinks)
        sep = "" if api.endswith("/") else "/"
        return f"{api}{sep}{collection}&" + urlencode({"per_page": per_page, "page": page, "_embed": "author,wp:term",
                                                       "_fields": FIELDS, "orderby": "date", "order": "desc"})
    return urljoin(api, collection) + "?" + urlencode({"per_page": per_page, "page": page, "_embed": "author,wp:term",
                                                       "_fields": FIELDS, "orderby": "date", "order": "desc"})


def feed_url(site_url: str, page: int = 1) -> str:
    """The site's main feed (``/feed/``); WordPress pages it with ``?paged=N``."""
    if not site_url.endswith("/"):
        site_url += "/"
    url = urljoin(site_url, "feed/")
    return url if page <= 1 else f"{url}?paged={page}"


def _rendered(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("rendered")
    return value if isinstance(value, str) else ""


def _terms(post: dict[str, Any]) -> tuple[list[str], list[str]]:
    categories, tags = [], []
    for group in (post.get("_embedded") or {}).get("wp:term") or []:
        for term in group if isinstance(group, list) else []:
            if not isinstance(term, dict) or not term.get("name"):
                continue
            name = clean_text(term["name"], 100)
            (categories if term.get("taxonomy") == "category" else tags).append(name)
    return categories, tags


def parse_posts(body: bytes, url: str, *, status: int = 200, total_pages_header: str | None = None,
                source_id: str = "", organization: str | None = None, content_type: str = "article") -> ParsedPosts:
    """Resources from one page of ``/wp/v2/posts`` (or ``/pages``).

    Raises :class:`APIClosed` when the answer means the API is off or private (401, 403,
    404 or a ``rest_*`` error code, or an HTML page instead of JSON)."""
    text = body.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("code"):
        code = str(data.get("code"))
        if code in CLOSED_CODES or status in (401, 403, 404):
            raise APIClosed(f"the WordPress REST API answered {status} {code}")
        raise ValueError(f"{url}: the WordPress REST API answered {status} {code}: {clean_text(data.get('message'), 200)}")
    if status in (401, 403, 404, 410):
        raise APIClosed(f"the WordPress REST API answered HTTP {status}")
    if not isinstance(data, list):
        raise APIClosed("the WordPress REST API did not answer with JSON (an HTML page instead?)")
    try:
        total = int(total_pages_header) if total_pages_header else None
    except ValueError:
        total = None
    resources, warnings = [], []
    for post in data:
        if not isinstance(post, dict) or not post.get("link"):
            continue
        if urlsplit(str(post["link"])).scheme not in ("http", "https"):
            continue
        categories, tags = _terms(post)
        authors = [a.get("name") for a in (post.get("_embedded") or {}).get("author") or []
                   if isinstance(a, dict) and a.get("name")]
        excerpt = _rendered(post.get("excerpt"))
        content = _rendered(post.get("content"))
        title = _rendered(post.get("title"))
        extra: dict[str, Any] = {"wp_id": post.get("id"), "wp_type": post.get("type")}
        if categories:
            extra["categories"] = categories
        if tags:
            extra["tags"] = tags
        resources.append(Resource(
            url=str(post["link"]),
            # an empty title (status posts, asides) is not the URL: the first sentence of the text
            title=title if clean_text(title) else title_from_text(excerpt or content),
            description=excerpt,
            content_type=content_type,
            source_id=source_id,
            organization=organization,
            published=parse_date(post.get("date_gmt") or post.get("date")),
            updated=parse_date(post.get("modified_gmt") or post.get("modified")),
            author=authors[0] if authors else None,
            excerpt=clean_text(content or excerpt, EXCERPT_CHARS) or None,
            extra=extra,
            raw={k: v for k, v in post.items() if k not in ("_links", "_embedded", "content")},
        ))
    return ParsedPosts(resources, total, warnings)
