"""Discovery for ``illhub add-source``: from one fetched URL to a proposed registry entry.

Pure functions, bytes in and a :class:`Proposal` out; the Scrapy side
(:mod:`harvesters.discovery_spider`) only fetches what the proposal asks for.

:func:`discover` reads the first document and lists the candidate ways to harvest the site,
best first: the URL is itself a feed (``feed``, or ``youtube`` for a YouTube feed); a YouTube
channel or playlist page (``youtube``); a WordPress site (``wordpress``: the ``/wp-json/``
API link or the generator tag); a Zendesk help center (``zendesk``); the page's
``<link rel="alternate">`` feeds (``feed``); a sitemap named by robots.txt (``sitemap``,
limited to the page's section); and, always last, a ``crawl`` of the page's section. Most
candidates need one more fetch to be sure (the WordPress or Zendesk API answers, the feed is
a feed, robots.txt names a sitemap that is one): :meth:`Proposal.next_probe` says which, and
:func:`apply_probe` reads the answer, accepting the candidate or moving on to the next.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from parsel import Selector
from protego import Protego

from harvesters.parsers.feed import parse_feed_bytes
from harvesters.parsers.text import visible_text
from harvesters.parsers.youtube import feed_url_for, feed_url_from_page
from pipeline.classify import match_text
from pipeline.normalize import clean_text
from pipeline.taxonomy import Taxonomy

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/xml",
              "text/xml")
YOUTUBE_PAGE = re.compile(r"^/(@[\w.\-]+|channel/UC[\w\-]{22}|c/[^/]+|user/[^/]+)/?")
PLAYLIST_ID = re.compile(r"^(PL|UU|FL|OL)[\w\-]{10,}$")
ZENDESK_LOCALE = re.compile(r"/hc/([a-z]{2,3}(?:-[a-z0-9]{2,8})*)(?:/|$)", re.IGNORECASE)
MAX_ALTERNATE_FEEDS = 3
MAX_SITEMAPS = 2
#: Kinds add-source can propose, in the order of preference described above.
KIND_ORDER = ("feed", "youtube", "wordpress", "zendesk", "sitemap", "crawl")


class NothingHarvestable(ValueError):
    """The URL answered, but with nothing illhub can harvest."""


@dataclass
class Candidate:
    """One way to harvest the site, and the fetch (if any) that would confirm it."""

    kind: str
    fields: dict[str, Any]
    evidence: str
    probe: str | None = None
    purpose: str | None = None  # what the probe checks: feed, wp-api, zendesk-api, robots, sitemap


@dataclass
class Proposal:
    """What add-source will propose; ``kind`` is set once a candidate is accepted."""

    url: str
    name: str | None = None
    organization: str | None = None
    description: str | None = None
    topics: list[str] = field(default_factory=list)
    topic_reasons: dict[str, str] = field(default_factory=dict)
    kind: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    evidence: str = ""
    candidates: list[Candidate] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)
    error: str | None = None
    items: list[str] = field(default_factory=list)  # item titles sampled to guess topics
    off_topic_items: int = 0  # how many of them no topic or system matches

    @property
    def mostly_off_topic(self) -> bool:
        """Whether at least a third of four or more sampled items are about nothing in the
        vocabulary: a broad channel or news feed, to be harvested with ``on_topic_only`` (a
        state library's channel with 3 of 7 videos on ILL was missed at a half)."""
        return len(self.items) >= 4 and 3 * self.off_topic_items >= len(self.items)

    @property
    def done(self) -> bool:
        return self.kind is not None or self.error is not None

    def next_probe(self) -> Candidate | None:
        """The candidate whose probe must be fetched next, accepting probe-less ones."""
        while not self.done:
            if not self.candidates:
                self.error = "found nothing harvestable" + (f" ({'; '.join(self.tried)})" if self.tried else "")
                return None
            c = self.candidates[0]
            if c.probe is None:
                self.accept(c)
                return None
            return c
        return None

    def accept(self, c: Candidate) -> None:
        self.kind, self.fields, self.evidence = c.kind, dict(c.fields), c.evidence
        self.candidates = []

    def reject(self, why: str) -> None:
        c = self.candidates.pop(0)
        self.tried.append(f"{c.kind} {c.probe}: {why}")

    def restrict(self, kind: str) -> None:
        """Keep only candidates of ``kind`` (``--kind``); a forced crawl or feed of the URL
        itself is always possible when discovery found nothing better."""
        if self.kind is not None:
            if self.kind == kind:
                return
            self.kind = None
        keep = [c for c in self.candidates if c.kind == kind]
        if not keep:
            keep = [Candidate(kind, {"url": self.url}, f"--kind {kind} (not confirmed by discovery)")]
        self.candidates = keep

    def guess_topics(self, taxonomy: Taxonomy) -> None:
        """Topics of the source as a whole: those its name and description support, and
        those that at least a third of its sampled items (feed entries, page headings) get."""
        c = match_text(taxonomy, {"title": self.name or "", "description": self.description or ""})
        reasons = dict(c.reasons)
        counts: dict[str, int] = {}
        self.off_topic_items = 0
        for item in self.items:
            matched = match_text(taxonomy, {"title": item})
            self.off_topic_items += not (matched.topics or matched.systems)
            for t in matched.topics:
                counts[t] = counts.get(t, 0) + 1
        need = max(2, -(-len(self.items) // 3))
        for t, n in counts.items():
            if n >= need and t not in reasons:
                reasons[t] = f"{n} of {len(self.items)} items sampled match it"
        self.topics = [t for t in taxonomy.topics if t in reasons]
        self.topic_reasons = {t: reasons[t] for t in self.topics}


# -- the first document -------------------------------------------------------------------

def header(headers: dict[str, Any] | None, name: str) -> str:
    for k, v in (headers or {}).items():
        key = k.decode("latin-1") if isinstance(k, bytes) else str(k)
        if key.lower() == name.lower():
            if isinstance(v, list):
                v = v[0] if v else b""
            return v.decode("latin-1") if isinstance(v, bytes) else str(v)
    return ""


def _site(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


def looks_like_html(body: bytes, content_type: str) -> bool:
    """Whether a response is an HTML page: its Content-Type says html, or its first bytes do."""
    head = body[:4096].lstrip().lower()
    return "html" in content_type.lower() or head.startswith(b"<!doctype html") or b"<html" in head


def read_feed(body: bytes, url: str, content_type: str) -> Any | None:
    head = body[:4096].lstrip().lower()
    if looks_like_html(body, content_type) and not head.startswith(b"<?xml"):
        return None
    if not (b"<rss" in body[:8192] or b"<feed" in body[:8192] or b"<rdf:rdf" in body[:8192].lower()):
        return None
    parsed = parse_feed_bytes(body, url, content_type or None)
    return parsed if parsed.get("version") else None


def section_of(url: str) -> str:
    """The folder a crawl of ``url`` stays in: ``https://h/a/b/page.html`` → ``https://h/a/b/``;
    ``https://h/a/b`` → ``https://h/a/b``; a query-only page → the site root."""
    base = url.split("#", 1)[0].split("?", 1)[0]
    if urlsplit(base).path in ("", "/"):
        return base.rstrip("/") + "/"
    last = base.rsplit("/", 1)[-1]
    if "." in last:
        return base[: len(base) - len(last)]
    return base


def _meta(sel: Selector, *names: str) -> str | None:
    for n in names:
        v = sel.xpath(f'//meta[@property="{n}" or @name="{n}"]/@content').get()
        if v and v.strip():
            return clean_text(v, 300)
    return None


def _jsonld_org(sel: Selector) -> str | None:
    for block in sel.xpath('//script[@type="application/ld+json"]/text()').getall()[:5]:
        try:
            data = json.loads(block)
        except ValueError:
            continue
        items = data if isinstance(data, list) else data.get("@graph", [data]) if isinstance(data, dict) else []
        for item in items:
            if not isinstance(item, dict):
                continue
            for key in ("publisher", "author", "provider"):
                who = item.get(key)
                if isinstance(who, dict) and isinstance(who.get("name"), str):
                    return clean_text(who["name"], 200)
            if item.get("@type") in ("Organization", "Library", "CollegeOrUniversity", "EducationalOrganization") \
                    and isinstance(item.get("name"), str):
                return clean_text(item["name"], 200)
    return None


def _alternate_feeds(sel: Selector, url: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for link in sel.xpath("//link[@href]"):
        rel = (link.attrib.get("rel") or "").lower().split()
        ctype = (link.attrib.get("type") or "").lower().split(";")[0].strip()
        if "alternate" not in rel or ctype not in FEED_TYPES[:3]:
            continue
        href = urljoin(url, link.attrib["href"].strip())
        title = clean_text(link.attrib.get("title") or "", 200)
        if "comments" in title.lower() or "/comments/" in href:
            continue
        if href.startswith(("http://", "https://")) and href not in [f for f, _ in found]:
            found.append((href, title))
    return found[:MAX_ALTERNATE_FEEDS]


def _wordpress(sel: Selector, url: str, feeds: list[tuple[str, str]]) -> Candidate | None:
    api = sel.xpath('//link[@rel="https://api.w.org/"]/@href').get()
    generator = (_meta(sel, "generator") or "").lower()
    if not api and not generator.startswith("wordpress"):
        return None
    if api:
        api = urljoin(url, api.strip())
        root = api.split("wp-json", 1)[0] if "wp-json" in api else _site(url) + "/"
        evidence = f"WordPress site (REST API linked at {api})"
    else:
        root = next((f[: -len("feed/")] for f, _ in feeds if f.endswith("/feed/")), _site(url) + "/")
        api = root + "wp-json/"
        evidence = "WordPress site (generator tag)"
    fields: dict[str, Any] = {"url": root}
    if "wp-json" in api and api.split("wp-json", 1)[0] != root:
        fields["api_url"] = api
    probe = (api if api.endswith("/") else api + "/") + "wp/v2/posts?per_page=1" if "?" not in api else None
    return Candidate("wordpress", fields, evidence, probe=probe, purpose="wp-api")


def _zendesk(sel: Selector, body: bytes, url: str) -> Candidate | None:
    low = body[:200_000].lower()
    signals = b"zdassets.com" in low or b"zendesk" in low
    if not signals:
        return None
    m = ZENDESK_LOCALE.search(urlsplit(url).path)
    if m:
        locale = m.group(1).lower()
    else:
        hrefs = " ".join(sel.xpath("//a/@href").getall()[:200])
        m2 = ZENDESK_LOCALE.search(hrefs)
        if not m2 and "/hc" not in urlsplit(url).path:
            return None
        locale = (m2.group(1) if m2 else (sel.xpath("/html/@lang").get() or "en-us")).lower()
    site = _site(url)
    return Candidate("zendesk", {"url": f"{site}/hc/{locale}", "locale": locale},
                     f"Zendesk help center (locale {locale})",
                     probe=f"{site}/api/v2/help_center/{locale}/articles.json?per_page=1", purpose="zendesk-api")


def _youtube(body: bytes, url: str) -> Candidate | None:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    is_youtube_host = host == "youtube.com" or host.endswith(".youtube.com")
    if parts.path.rstrip("/") == "/playlist":
        ids = parse_qs(parts.query).get("list") or []
        if ids and PLAYLIST_ID.match(ids[0]):
            base = f"{parts.scheme}://{parts.netloc}"
            feed = feed_url_for(playlist_id=ids[0], base=base)
            fields = {"playlist_id": ids[0]} if is_youtube_host else {"url": feed}
            return Candidate("youtube", fields, f"YouTube playlist {ids[0]}", probe=feed, purpose="feed")
        return None
    if not YOUTUBE_PAGE.match(parts.path):
        return None
    feed = feed_url_from_page(body, url)
    if not feed:
        return None
    channel = parse_qs(urlsplit(feed).query).get("channel_id", [""])[0]
    fields = {"channel_id": channel} if is_youtube_host and channel else {"url": feed}
    return Candidate("youtube", fields, f"YouTube channel {channel} (from the channel page)", probe=feed,
                     purpose="feed")


def discover(body: bytes, url: str, headers: dict[str, Any] | None = None, *,
             taxonomy: Taxonomy | None = None) -> Proposal:
    """Read the first document of ``url`` (after redirects) and propose how to harvest it.

    Raises :class:`NothingHarvestable` when the document is neither a feed nor an HTML page.
    """
    content_type = header(headers, "Content-Type")
    proposal = Proposal(url=url)
    parsed = read_feed(body, url, content_type)
    if parsed is not None:
        feed = parsed.feed
        proposal.name = clean_text(feed.get("title"), 200) or None
        proposal.description = clean_text(feed.get("subtitle") or feed.get("description"), 500) or None
        proposal.organization = clean_text(feed.get("publisher") or feed.get("author") or "", 200) or None
        proposal.items = [clean_text(e.get("title"), 300) for e in parsed.entries[:30] if e.get("title")]
        n = len(parsed.entries)
        # kind youtube takes YouTube's own feed path; a YouTube-shaped feed served elsewhere (a
        # mirror, a feed proxy) is an Atom feed like any other
        if urlsplit(url).path.endswith("/feeds/videos.xml"):
            q = parse_qs(urlsplit(url).query)
            host = (urlsplit(url).hostname or "").lower()
            fields: dict[str, Any] = {"url": url}
            if host.endswith("youtube.com") and q.get("channel_id"):
                fields = {"channel_id": q["channel_id"][0]}
            elif host.endswith("youtube.com") and q.get("playlist_id"):
                fields = {"playlist_id": q["playlist_id"][0]}
            proposal.accept(Candidate("youtube", fields, f"a YouTube feed with {n} videos"))
        else:
            version = parsed.get("version") or "feed"
            proposal.accept(Candidate("feed", {"url": url}, f"the URL is a feed ({version}, {n} entries)"))
        if taxonomy:
            proposal.guess_topics(taxonomy)
        return proposal
    if not looks_like_html(body, content_type):
        shown = content_type.split(";")[0] or "an unknown type"
        raise NothingHarvestable(f"{url} is neither a web page nor a feed (it serves {shown})")
    sel = Selector(text=body.decode(_charset(content_type), errors="replace"))
    title = clean_text(sel.xpath("//title/text()").get(), 200) or None
    site_name = _meta(sel, "og:site_name", "application-name")
    proposal.name = site_name or _meta(sel, "og:title") or title
    if site_name and title and site_name.lower() not in title.lower() and urlsplit(url).path.strip("/"):
        proposal.name = f"{site_name}: {title}"
    proposal.description = _meta(sel, "description", "og:description", "twitter:description")
    proposal.organization = _jsonld_org(sel) or site_name or _meta(sel, "author")
    headings = [clean_text(h, 200) for h in sel.xpath("//h1 | //h2 | //h3").xpath("string()").getall()[:30]]
    proposal.items = [h for h in headings if h]
    youtube = _youtube(body, url)
    text = visible_text(sel.xpath("//body"))
    links = sel.xpath("//a/@href").getall()
    if youtube is None and not text and not links:
        raise NothingHarvestable(f"{url} is an empty page: no text and no links to harvest")
    feeds = _alternate_feeds(sel, url)
    candidates: list[Candidate] = []
    for c in (youtube, _wordpress(sel, url, feeds), _zendesk(sel, body, url)):
        if c is not None:
            candidates.append(c)
    for href, ftitle in feeds:
        candidates.append(Candidate("feed", {"url": href}, f"the page links its feed{f' ({ftitle})' if ftitle else ''}",
                                    probe=href, purpose="feed"))
    site = _site(url)
    candidates.append(Candidate("sitemap", {}, "", probe=f"{site}/robots.txt", purpose="robots"))
    section = section_of(url)
    candidates.append(Candidate("crawl", {"url": url}, f"no feed, API or sitemap found: crawl the pages under {section}"))
    proposal.candidates = candidates
    if taxonomy:
        proposal.guess_topics(taxonomy)
    return proposal


def _charset(content_type: str) -> str:
    m = re.search(r"charset=([\w\-]+)", content_type or "", re.IGNORECASE)
    if m:
        try:
            "".encode(m.group(1))
            return m.group(1)
        except LookupError:
            pass
    return "utf-8"


# -- the follow-up fetches ------------------------------------------------------------------

def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8", errors="replace"))
    except ValueError:
        return None


def _sitemap_root(body: bytes) -> str | None:
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body[:5_000_000])[:200_000]
        except (OSError, EOFError):
            return None
    head = body[:4096].lower()
    if b"<sitemapindex" in head:
        return "sitemap index"
    if b"<urlset" in head:
        return "sitemap"
    return None


def apply_probe(proposal: Proposal, status: int | None, body: bytes, headers: dict[str, Any] | None = None,
                *, error: str | None = None, page_url: str | None = None) -> Proposal:
    """Read the answer to ``proposal.next_probe()`` (``status`` None and ``error`` set when
    the fetch failed) and accept or reject that candidate; a following candidate that needs
    no fetch (a crawl) is then accepted at once."""
    _apply(proposal, status, body, headers, error=error, page_url=page_url)
    proposal.next_probe()
    return proposal


def _apply(proposal: Proposal, status: int | None, body: bytes, headers: dict[str, Any] | None,
           *, error: str | None, page_url: str | None) -> Proposal:
    c = proposal.next_probe()
    if c is None:
        return proposal
    if status is None or status >= 400:
        proposal.reject(error or f"HTTP {status}")
        return proposal
    content_type = header(headers, "Content-Type")
    if c.purpose == "feed":
        parsed = read_feed(body, c.probe, content_type)
        if parsed is None:
            proposal.reject("not an RSS or Atom feed")
            return proposal
        n = len(parsed.entries)
        if not n:
            proposal.reject("the feed has no entries")
            return proposal
        if not proposal.name:
            proposal.name = clean_text(parsed.feed.get("title"), 200) or None
        proposal.items = [clean_text(e.get("title"), 300) for e in parsed.entries[:30] if e.get("title")]
        c.evidence += f" ({n} {'entry' if n == 1 else 'entries'})"
        proposal.accept(c)
    elif c.purpose == "wp-api":
        data = _json(body)
        if not isinstance(data, list):
            proposal.reject("the WordPress REST API did not answer with a list of posts")
            return proposal
        total = header(headers, "X-WP-Total")
        c.evidence += f"; {total} posts" if total else ""
        proposal.accept(c)
    elif c.purpose == "zendesk-api":
        data = _json(body)
        if not isinstance(data, dict) or not isinstance(data.get("articles"), list):
            proposal.reject("the Help Center API did not answer with articles")
            return proposal
        count = data.get("count")
        c.evidence += f"; {count} public articles" if isinstance(count, int) else ""
        proposal.accept(c)
    elif c.purpose == "robots":
        try:
            sitemaps = list(Protego.parse(body.decode("utf-8", errors="replace")).sitemaps)
        except Exception:  # noqa: BLE001 - an unreadable robots.txt names no sitemap
            sitemaps = []
        site = _site(c.probe)
        sitemaps = [s for s in sitemaps if s.startswith(("http://", "https://")) and _site(s) == site]
        if not sitemaps:
            proposal.reject("robots.txt names no sitemap on this site")
            return proposal
        proposal.candidates.pop(0)
        section = section_of(page_url or proposal.url)
        include = [] if urlsplit(section).path in ("", "/") else ["^" + re.escape(section)]
        for sm in reversed(sitemaps[:MAX_SITEMAPS]):
            fields: dict[str, Any] = {"url": sm}
            if include:
                fields["include"] = include
            where = f", limited to {section}" if include else ""
            proposal.candidates.insert(0, Candidate("sitemap", fields, f"robots.txt names the sitemap {sm}{where}",
                                                    probe=sm, purpose="sitemap"))
    elif c.purpose == "sitemap":
        what = _sitemap_root(body)
        if what is None:
            proposal.reject("not a sitemap (no <urlset> or <sitemapindex>)")
            return proposal
        c.evidence = c.evidence.replace("the sitemap", f"the {what}", 1)
        proposal.accept(c)
    else:  # pragma: no cover - every purpose is handled above
        proposal.reject(f"unknown probe {c.purpose}")
    return proposal


def slugify(text: str, limit: int = 50) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(slug) > limit:
        slug = slug[:limit].rsplit("-", 1)[0]
    return slug or "source"


def propose_id(proposal: Proposal) -> str:
    if proposal.name:
        return slugify(proposal.name)
    host = (urlsplit(proposal.url).hostname or "source").removeprefix("www.")
    return slugify(host)
