"""The Zendesk Help Center API (``/api/v2/help_center/<locale>/articles.json``): pure JSON →
Resources, with the section, category and labels of every article kept.

Both pagination styles are read: offset (``next_page``) and cursor (``meta.has_more``
with ``links.next``). Sections and categories come sideloaded (``include=sections,categories``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from parsel import Selector

from harvesters.parsers.text import EXCERPT_CHARS, first_paragraph
from pipeline.normalize import clean_text, parse_date
from pipeline.resource import Resource
from pipeline.urls import absolute_url

DEFAULT_LOCALE = "en-us"


@dataclass
class ParsedArticles:
    resources: list[Resource]
    next_page: str | None
    warnings: list[str] = field(default_factory=list)
    page_count: int | None = None


def locale_from_url(url: str) -> str | None:
    """``https://support.example.com/hc/en-us`` → ``en-us``."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "hc":
        return parts[1].lower()
    return None


def articles_url(help_center_url: str, locale: str, per_page: int = 100) -> str:
    parts = urlsplit(help_center_url)
    query = urlencode({"per_page": per_page, "include": "sections,categories", "sort_by": "updated_at",
                       "sort_order": "desc"})
    return f"{parts.scheme}://{parts.netloc}/api/v2/help_center/{locale}/articles.json?{query}"


def _description(body_html: str) -> str:
    """The article's first real paragraph, else the start of its text."""
    sel = Selector(text=body_html or "<p></p>", type="html")
    return first_paragraph(sel, min_words=0) or clean_text(body_html, 300)


def parse_articles(body: bytes, url: str, *, source_id: str = "", organization: str | None = None,
                   content_type: str = "documentation") -> ParsedArticles:
    """Resources from one page of a Help Center's articles. Drafts are skipped."""
    try:
        data = json.loads(body.decode("utf-8", errors="replace"))
    except ValueError:
        raise ValueError(f"{url}: not JSON: is this a Zendesk Help Center? (check the URL and locale)") from None
    if not isinstance(data, dict) or not isinstance(data.get("articles"), list):
        raise ValueError(f"{url}: no 'articles' list in the answer (not a Help Center API response)")
    sections = {s.get("id"): s for s in data.get("sections") or [] if isinstance(s, dict)}
    categories = {c.get("id"): c for c in data.get("categories") or [] if isinstance(c, dict)}
    resources = []
    for article in data["articles"]:
        if not isinstance(article, dict):
            continue
        if article.get("draft"):
            continue
        link = absolute_url(article.get("html_url"), url)
        if not link:
            continue
        section = sections.get(article.get("section_id")) or {}
        category = categories.get(section.get("category_id")) or {}
        labels = [clean_text(x, 100) for x in article.get("label_names") or [] if isinstance(x, str) and x.strip()]
        body_html = article.get("body") or ""
        extra: dict[str, Any] = {"zendesk_id": article.get("id"), "section_id": article.get("section_id")}
        if section.get("name"):
            extra["section"] = clean_text(section["name"], 200)
        if category.get("name"):
            extra["category"] = clean_text(category["name"], 200)
        if labels:
            extra["labels"] = labels
        if article.get("promoted"):
            extra["promoted"] = True
        resources.append(Resource(
            url=link,
            title=article.get("title") or "",
            description=_description(body_html),
            content_type=content_type,
            source_id=source_id,
            organization=organization,
            published=parse_date(article.get("created_at")),
            updated=parse_date(article.get("edited_at") or article.get("updated_at")),
            language=article.get("locale"),
            excerpt=clean_text(body_html, EXCERPT_CHARS) or None,
            extra=extra,
            raw={k: v for k, v in article.items() if k != "body"},
        ))
    next_page = data.get("next_page")
    if not next_page and isinstance(data.get("meta"), dict) and data["meta"].get("has_more"):
        next_page = (data.get("links") or {}).get("next")
    next_page = absolute_url(next_page, url) if isinstance(next_page, str) else None
    warnings: list[str] = []  # drafts are not public: skipped without a warning
    page_count = data.get("page_count") if isinstance(data.get("page_count"), int) else None
    return ParsedArticles(resources, next_page, warnings, page_count)
