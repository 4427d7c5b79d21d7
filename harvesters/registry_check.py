"""``illhub check-registry``: for each source, the one request (two at most) that tells whether
its URL answers and is of the promised kind. Pure functions, bytes in and a verdict out; the
Scrapy side (:class:`harvesters.discovery_spider.RegistryCheckSpider`) only fetches.

Each check is a :class:`~harvesters.discover.Proposal` whose candidates are the fetches that
would confirm the source's kind, so the probe machinery of ``illhub add-source`` is reused.
What each kind fetches and how its answer is read are the kind's own, in its module
(``harvesters/kinds/<kind>.py``): its handler's ``check_probes(source)`` lists the fetches as
``(kind, url, purpose, evidence)``, ``read_check(check, candidate, body, headers)`` reads the
answers to purposes other than those the discovery reads (a feed, the WordPress and Zendesk
APIs, robots.txt: :data:`DISCOVERY_PURPOSES`), and ``check_advice`` says what a maintainer can
do when the check fails. A kind without ``check_probes`` is reported as not checked; ``manual``
(no network) as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harvesters.discover import Candidate, NothingHarvestable, Proposal, apply_probe, discover
from harvesters.source import SourceBase, looks_html

#: What a check's status means, worst last.
STATUSES = ("ok", "skipped", "warn", "fail")
#: Purposes the discovery of ``illhub add-source`` reads (:func:`harvesters.discover.apply_probe`);
#: every other purpose is read by the kind's own handler (``read_check``).
DISCOVERY_PURPOSES = ("feed", "wp-api", "zendesk-api", "robots")


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
        if status is None or status >= 400 or c.purpose in DISCOVERY_PURPOSES:
            apply_probe(self.proposal, status, body, headers, error=error)
            return
        try:
            why = read_answer(self, c, body, headers or {})
        except Exception as e:  # noqa: BLE001 - a parser's surprise fails this source only
            why = f"could not be read ({type(e).__name__}: {str(e)[:200]})"
        if why is None:
            self.proposal.accept(c)
        else:
            self.proposal.reject(why)
        self.proposal.next_probe()

    def result(self) -> CheckResult:
        return verdict(self)


def read_answer(check: SourceCheck, c: Candidate, body: bytes, headers: dict[str, Any]) -> str | None:
    """Read an answer to one of the kind's own probes with its handler's ``read_check``: None
    when it confirms the kind (the reader may set ``c.evidence``), else why not."""
    from harvesters.kinds import KINDS

    return KINDS[check.source.kind].handler.read_check(check, c, body, headers)


# -- planning: the fetches that confirm each kind --------------------------------------------

def _candidate(check: SourceCheck, kind: str, probe: str, purpose: str, evidence: str) -> None:
    check.proposal.candidates.append(Candidate(kind, {"url": probe}, evidence, probe=probe, purpose=purpose))


def plan(check: SourceCheck) -> None:
    """Fill ``check.proposal`` with the fetches that would confirm its source's kind: what the
    kind's handler says (``check_probes``), in its own module."""
    from harvesters.kinds import KINDS

    s = check.source
    if not s.uses_network:
        check.skipped = "no network: its links are curated in the registry"
        return
    probes = getattr(KINDS[s.kind].handler, "check_probes", None)
    if probes is None:
        check.skipped = f"kind {s.kind!r} has no online check yet"
        return
    for kind, probe, purpose, evidence in probes(s):
        _candidate(check, kind, probe, purpose, evidence)


# -- helpers for the kinds' readers ------------------------------------------------------------

def content_type(headers: dict[str, Any]) -> str | None:
    from harvesters.discover import header

    return header(headers, "Content-Type") or None


# -- the verdict -------------------------------------------------------------------------------

def verdict(check: SourceCheck) -> CheckResult:
    s = check.source
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
    s = check.source
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
    from harvesters.kinds import KINDS

    return getattr(KINDS[s.kind].handler, "check_advice", "") or "check the URL in a browser"


def _discovered_hint(check: SourceCheck) -> str:
    """When a feed or sitemap URL answered with an HTML page, what add-source's discovery
    sees in it (a linked feed, a WordPress or Zendesk site)."""
    s = check.source
    body = check.last_body
    if s.kind not in ("feed", "sitemap") or not body or not looks_html(body, None):
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
