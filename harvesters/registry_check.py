"""``illhub check-registry``: for each source, the one request (two at most) that tells whether
its URL answers and is of the promised kind. Pure functions, bytes in and a verdict out; the
Scrapy side (:class:`harvesters.discovery_spider.RegistryCheckSpider`) only fetches.

Each check is a :class:`~harvesters.discover.Proposal` whose candidates are the fetches that
would confirm the source's kind, so the probe machinery of ``illhub add-source`` is reused:
the feed, WordPress API, Zendesk API and robots.txt answers are read by
:func:`harvesters.discover.apply_probe`; this module reads what only a registry check asks
for (a crawl's start page and its selectors, a program page, a calendar, a YouTube channel
page or feed, a sitemap's URLs against the source's include patterns).

What each kind's check fetches:

- ``feed``: the URL; it must parse as RSS or Atom with entries.
- ``youtube``: the feed derived from ``channel_id``/``playlist_id`` (or the feed URL); a
  ``/@handle`` page must name its channel's feed.
- ``wordpress``: one post from the REST API; when the API is closed, the site's feed (the
  harvest's own fallback), reported as a warning.
- ``zendesk``: one article from the Help Center API.
- ``sitemap``: the sitemap (or robots.txt, then the sitemap it names); it must list URLs,
  and when it lists pages some must pass the source's ``include``/``exclude``.
- ``crawl``: the start page; it must be HTML, its ``selectors.item`` (when given) must match,
  and it must link at least one page to follow when ``max_depth`` > 0 (else a warning).
- ``conference``: the program page; sessions must be found in it.
- ``ical``: the calendar; it must hold events.
- ``manual``: nothing (no network); reported as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harvesters.discover import Candidate, NothingHarvestable, Proposal, apply_probe, discover
from harvesters.source import SourceBase

#: What a check's status means, worst last.
STATUSES = ("ok", "skipped", "warn", "fail")
#: Purposes read here; the others (feed, wp-api, zendesk-api, robots) by discover.apply_probe.
OWN_PURPOSES = ("page", "program", "ical", "youtube-feed", "channel-page", "sitemap")


@dataclass
class CheckResult:
    """One source's verdict, as the table shows it."""

    source_id: str
    kind: str
    url: str
    status: str  # one of STATUSES
    detail: str
    action: str = ""
    http_status: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source_id, "kind": self.kind, "url": self.url, "status": self.status,
                "http_status": self.http_status, "detail": self.detail, "action": self.action}


class SourceCheck:
    """One source's check: the fetches still to make, and what their answers said."""

    def __init__(self, source: SourceBase):
        self.source = source
        self.proposal = Proposal(url=source.url or "")
        self.http_status: int | None = None
        self.last_url = source.url or ""
        self.last_body = b""
        self.deferred = False
        self.skipped: str | None = None
        self.warning: str | None = None
        plan(self)

    def next_probe(self) -> Candidate | None:
        if self.skipped is not None:
            return None
        return self.proposal.next_probe()

    def read(self, status: int | None, body: bytes, headers: dict[str, Any] | None = None, *,
             url: str | None = None, error: str | None = None, deferred: bool = False) -> None:
        """Read the answer to :meth:`next_probe` (``status`` None and ``error`` set when the
        fetch failed); a reader's own exception fails the candidate, never the run."""
        c = self.proposal.next_probe()
        if c is None:
            return
        self.http_status = status
        self.last_url = url or c.probe or self.last_url
        self.last_body = body if status is not None else b""
        self.deferred = self.deferred or deferred
        if status is None or status >= 400 or c.purpose not in OWN_PURPOSES:
            apply_probe(self.proposal, status, body, headers, error=error)
            return
        try:
            why = READERS[c.purpose](self, c, body, headers or {})
        except Exception as e:  # noqa: BLE001 - a parser's surprise fails this source only
            why = f"could not be read ({type(e).__name__}: {str(e)[:200]})"
        if why is None:
            self.proposal.accept(c)
        else:
            self.proposal.reject(why)
        self.proposal.next_probe()

    def result(self) -> CheckResult:
        return verdict(self)


# -- planning: the fetches that confirm each kind --------------------------------------------

def _candidate(check: SourceCheck, kind: str, probe: str, purpose: str, evidence: str) -> None:
    check.proposal.candidates.append(Candidate(kind, {"url": probe}, evidence, probe=probe, purpose=purpose))


def plan(check: SourceCheck) -> None:
    """Fill ``check.proposal`` with the fetches that would confirm its source's kind."""
    s: Any = check.source
    kind = s.kind
    if not s.uses_network:
        check.skipped = "no network: its links are curated in the registry"
        return
    if kind == "feed":
        _candidate(check, kind, s.url, "feed", "a feed")
    elif kind == "youtube":
        from harvesters.parsers.youtube import feed_url_for, feed_url_from_page_url

        feed = (feed_url_for(channel_id=s.channel_id, playlist_id=s.playlist_id)
                if s.channel_id or s.playlist_id else feed_url_from_page_url(s.url))
        if feed:
            _candidate(check, kind, feed, "youtube-feed", "a YouTube feed")
        else:
            _candidate(check, kind, s.url, "channel-page", "a YouTube channel page")
    elif kind == "wordpress":
        from harvesters.parsers.wordpress import api_base, collection_url, feed_url

        api = collection_url(s.api_url or api_base(s.url), "posts", 1, 1)
        _candidate(check, kind, api, "wp-api", "the WordPress REST API")
        _candidate(check, "feed", feed_url(s.url), "feed", "only the site's feed (the harvest's fallback)")
    elif kind == "zendesk":
        from harvesters.parsers.zendesk import articles_url

        _candidate(check, kind, articles_url(s.url, s.help_center_locale, 1), "zendesk-api", "the Help Center API")
    elif kind == "sitemap":
        robots = s.url.split("?", 1)[0].rstrip("/").endswith("/robots.txt")
        _candidate(check, kind, s.url, "robots" if robots else "sitemap", "robots.txt" if robots else "a sitemap")
    elif kind == "crawl":
        _candidate(check, kind, s.url, "page", "the start page")
    elif kind == "conference":
        _candidate(check, kind, s.url, "program", "a program page")
    elif kind == "ical":
        _candidate(check, kind, s.url, "ical", "a calendar")
    else:
        check.skipped = f"kind {kind!r} has no online check yet"


# -- reading the answers this module plans -----------------------------------------------------

def _content_type(headers: dict[str, Any]) -> str | None:
    from harvesters.discover import _header

    return _header(headers, "Content-Type") or None


def _looks_html(body: bytes, content_type: str | None) -> bool:
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype:
        return ctype in ("text/html", "application/xhtml+xml")
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def read_page(check: SourceCheck, c: Candidate, body: bytes, headers: dict[str, Any]) -> str | None:
    """A crawl's start page: HTML, its selectors match, and it links pages to follow."""
    from harvesters.parsers.crawl import parse_listing
    from harvesters.parsers.links import is_document_url
    from harvesters.parsers.page import extract_links, to_selector
    from pipeline.urls import same_site

    s: Any = check.source
    ctype = _content_type(headers)
    if not _looks_html(body, ctype):
        return f"not an HTML page ({(ctype or 'no Content-Type').split(';')[0]})"
    sel = to_selector(body, check.last_url, ctype)
    found: list[str] = []
    if s.selectors is not None:
        selectors = s.selectors.model_dump(exclude_none=True)
        items, _warnings = parse_listing(sel, check.last_url, selectors, source_id=s.id)
        if not items:
            return f"selectors.item {s.selectors.item!r} matched no item with a link on the page"
        found.append(f"selectors matched {len(items)} item{'s' if len(items) != 1 else ''}")
    follow = [link.url for link in extract_links(sel, check.last_url)
              if same_site(link.url, s.url) and not is_document_url(link.url) and s.follows(link.url)]
    follow = list(dict.fromkeys(u for u in follow if u.split("#", 1)[0] != check.last_url.split("#", 1)[0]))
    if s.max_depth > 0:
        if follow:
            found.append(f"{len(follow)} link{'s' if len(follow) != 1 else ''} to follow")
        else:
            check.warning = ("the page links no page that follow/exclude let the crawl reach: only the start page "
                             "(and its documents) will be kept")
    c.evidence = "an HTML page" + (f": {', '.join(found)}" if found else "")
    return None


def read_program(check: SourceCheck, c: Candidate, body: bytes, headers: dict[str, Any]) -> str | None:
    from harvesters.parsers.conference import NoSessions, parse_program

    s: Any = check.source
    try:
        parsed = parse_program(body, check.last_url, source_id=s.id, event_name=s.event_name, year=s.year,
                               timezone=s.timezone, selectors=s.selectors.model_dump() if s.selectors else None,
                               include_breaks=s.include_breaks, http_content_type=_content_type(headers))
    except NoSessions as e:
        return str(e)
    n = len(parsed.resources)
    if not n:
        return "no sessions found on the page"
    how = f", read by {parsed.method}" if getattr(parsed, "method", "") else ""
    c.evidence = f"a program page: {n} session{'s' if n != 1 else ''}{how}"
    return None


def read_ical(check: SourceCheck, c: Candidate, body: bytes, headers: dict[str, Any]) -> str | None:
    from harvesters.parsers.ical import NotACalendar, parse_ical

    s: Any = check.source
    try:
        parsed = parse_ical(body, check.last_url, source_id=s.id, event_name=s.event_name, timezone=s.timezone,
                            include_breaks=s.include_breaks)
    except NotACalendar as e:
        return str(e)
    n = len(parsed.resources)
    if not n:
        return "the calendar holds no events"
    c.evidence = f"a calendar: {n} event{'s' if n != 1 else ''}"
    return None


def read_youtube_feed(check: SourceCheck, c: Candidate, body: bytes, headers: dict[str, Any]) -> str | None:
    from harvesters.discover import _feed

    parsed = _feed(body, c.probe or check.last_url, _content_type(headers) or "")
    if parsed is None:
        return "not a YouTube feed (no Atom feed in the answer)"
    title = (parsed.feed.get("title") or "").strip()
    n = len(parsed.entries)
    c.evidence = f"a YouTube feed{f' ({title})' if title else ''}: {n} video{'s' if n != 1 else ''}"
    return None


def read_channel_page(check: SourceCheck, c: Candidate, body: bytes, headers: dict[str, Any]) -> str | None:
    from harvesters.parsers.youtube import feed_url_from_page

    feed = feed_url_from_page(body, check.last_url)
    if not feed:
        return "the page names no channel feed (is it a channel page?)"
    channel = feed.rsplit("channel_id=", 1)[-1]
    c.evidence = f"a channel page: channel {channel}"
    c.fields["channel_id"] = channel
    return None


def read_sitemap(check: SourceCheck, c: Candidate, body: bytes, headers: dict[str, Any]) -> str | None:
    from harvesters.parsers.sitemap import NotASitemap, parse_sitemap

    s: Any = check.source
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
    wanted = [p for p in parsed.pages if s.wants(p.url)]
    if not wanted:
        return f"none of the {len(parsed.pages)} URLs listed passes include/exclude (first: {parsed.pages[0].url})"
    c.evidence = f"a sitemap: {len(parsed.pages)} URLs, {len(wanted)} wanted"
    return None


READERS = {"page": read_page, "program": read_program, "ical": read_ical, "youtube-feed": read_youtube_feed,
           "channel-page": read_channel_page, "sitemap": read_sitemap}


# -- the verdict -------------------------------------------------------------------------------

def verdict(check: SourceCheck) -> CheckResult:
    s: Any = check.source
    url = check.last_url or (s.url or "")
    if check.skipped is not None:
        return CheckResult(s.id, s.kind, s.url or "", "skipped", check.skipped)
    p = check.proposal
    if p.kind is not None:
        status, detail, action = "ok", p.evidence, ""
        if p.kind != s.kind:
            status = "warn"
            why = p.tried[-1].split(": ", 1)[-1] if p.tried else "it did not answer"
            detail = f"{p.evidence}: the REST API failed ({why})"
            action = "the harvest reads the feed instead (fewer, shorter entries); nothing to do unless that is wrong"
        elif check.warning:
            status, action = "warn", check.warning
        elif p.fields.get("channel_id"):
            action = f"optional: set channel_id: {p.fields['channel_id']} (saves the page fetch)"
        return CheckResult(s.id, s.kind, url, status, detail, action, check.http_status)
    detail = "; ".join(p.tried) or (p.error or "no answer")
    return CheckResult(s.id, s.kind, url, "fail", detail, advice(check), check.http_status)


def advice(check: SourceCheck) -> str:
    """What a maintainer can do about a failed check, from the last answer."""
    s: Any = check.source
    status = check.http_status
    reason = check.proposal.tried[-1] if check.proposal.tried else (check.proposal.error or "")
    low = reason.lower()
    if check.deferred:
        return ("the site could not be reached (or its robots.txt asked us to wait): run the check again later; "
                "if it persists, the site may have moved or gone")
    if status in (404, 410):
        return "the address is gone: find the page's new address on the site and update url (or set enabled: false)"
    if status in (401, 403):
        return "the site refuses us: open the URL in a browser; if it needs a login, remove the source"
    if status == 429 or (status is not None and status >= 500):
        return "the site is overloaded or failing: run the check again later"
    if "robots.txt" in low and ("forbid" in low or "disallow" in low):
        return "robots.txt forbids it: remove the source, or ask the site's owner"
    if "dns" in low or "does not resolve" in low:
        return "the host name does not resolve: check its spelling, or whether the site moved"
    if "timed out" in low or "connection" in low:
        return "no answer in time: run the check again later; if it persists, the site may be gone"
    hint = _discovered_hint(check)
    if hint:
        return hint
    return {
        "feed": "point url at the feed itself (the page's RSS/Atom link), or run illhub add-source URL",
        "youtube": "set channel_id (UC…, from the channel page's source) instead of url",
        "wordpress": "not a WordPress site? run illhub add-source URL to find the right kind",
        "zendesk": "the Help Center API is closed: harvest it with kind: crawl",
        "sitemap": "check robots.txt for its Sitemap: line, or the include patterns; else use kind: crawl",
        "crawl": "view the live page's source and rewrite selectors (or remove them to keep the pages only)",
        "conference": "write selectors for the program (see docs/events.md), or find its Sched calendar (kind: ical)",
        "ical": "point url at the .ics itself (Sched: https://<event>.sched.com/all.ics)",
    }.get(s.kind, "check the URL in a browser")


def _discovered_hint(check: SourceCheck) -> str:
    """When a feed or sitemap URL answered with an HTML page, what add-source's discovery
    sees in it (a linked feed, a WordPress or Zendesk site)."""
    s: Any = check.source
    body = check.last_body
    if s.kind not in ("feed", "sitemap") or not body or not _looks_html(body, None):
        return ""
    try:
        found = discover(body, check.last_url)
    except NothingHarvestable:
        return ""
    for c in found.candidates:
        if c.kind == "feed" and c.fields.get("url") and c.fields["url"] != s.url:
            return f"the URL answers with a web page that links a feed: set url: {c.fields['url']}"
        if c.kind in ("wordpress", "zendesk", "youtube"):
            return f"the URL answers with a web page of a {c.kind} site ({c.evidence}): try kind: {c.kind}"
    return "the URL answers with a web page: run illhub add-source URL to find what to harvest"
