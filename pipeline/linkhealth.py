"""Link health: what a link check means, and each resource's status derived from its history.

Pure code (no network, no Scrapy): the link-check spider hands over what it saw (an
HTTP status, a few headers, the first bytes of the body, or an error) and this module
decides the check's *outcome*, keeps the history in ``link_checks`` and derives the
resource's ``link_status``:

* outcome of one check: ``ok``, ``redirected``, ``blocked``, ``failed`` or ``skipped``;
* ``link_status`` of a resource: ``ok``, ``redirected``, ``blocked``, ``broken`` or
  ``unchecked``. A link becomes ``broken`` only after :data:`BROKEN_AFTER` failed checks
  in a row, each in a separate run; one failure never marks a link broken.

The rules are written out in docs/link-health.md; keep the two in step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from pipeline.fetchcache import parse_retry_after
from pipeline.normalize import now_iso, parse_date
from pipeline.urls import canonical_url

#: Consecutive failed checks (in separate runs) before a link counts as broken.
BROKEN_AFTER = 3

OUTCOMES = ("ok", "redirected", "blocked", "failed", "skipped")
LINK_STATUSES = ("ok", "redirected", "blocked", "broken", "unchecked")

#: Answers that mean "not for a robot": the link probably works for a person.
BLOCKED_STATUSES = {401: "needs a login", 403: "forbidden to robots", 407: "proxy login required",
                    429: "rate-limited", 451: "unavailable for legal reasons", 999: "refused to robots"}
#: Answers that mean the page is not there.
GONE_STATUSES = {404: "not found", 410: "gone"}
#: A HEAD answered with one of these is tried again with GET: the server may refuse or
#: mishandle HEAD only, and a dead link is confirmed with GET before it counts as failed.
HEAD_FALLBACK_STATUSES = frozenset({400, 403, 404, 405, 406, 410, 500, 501})
#: ...and after one of these the host is asked with GET straight away for the rest of the run.
HEAD_REFUSED_STATUSES = frozenset({405, 501})
#: Worth asking again within the same run (after a pause).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})

_CHALLENGE_MARKERS = (
    (re.compile(rb"<title>\s*(just a moment|attention required! \| cloudflare)", re.I), "Cloudflare"),
    (re.compile(rb"challenge-platform|cf-chl-|cf_chl_", re.I), "Cloudflare"),
    (re.compile(rb"_incapsula_resource|incapsula incident", re.I), "Imperva"),
    (re.compile(rb"px-captcha|perimeterx", re.I), "PerimeterX"),
    (re.compile(rb"ddos-guard", re.I), "DDoS-Guard"),
    (re.compile(rb"sucuri website firewall", re.I), "Sucuri"),
    (re.compile(rb"awswafintegration|aws-waf-token", re.I), "AWS WAF"),
    (re.compile(rb"captcha-delivery\.com|datadome", re.I), "DataDome"),
    (re.compile(rb"<title>\s*(access denied|are you a robot|verify you are human|human verification)", re.I), "generic"),
)


def bot_challenge(status: int, headers: Mapping[str, str], body: bytes = b"") -> str | None:
    """The name of the bot wall a response comes from (``"Cloudflare"``, ...), or None.

    ``headers`` has lower-case names. Looks at the challenge headers Cloudflare and AWS
    WAF send, and at the first bytes of an error page's body.
    """
    if headers.get("cf-mitigated", "").lower() == "challenge":
        return "Cloudflare"
    if headers.get("x-amzn-waf-action", "").lower() in ("challenge", "captcha"):
        return "AWS WAF"
    if status in (403, 429, 503) or (status == 200 and len(body) < 20_000 and body):
        head = body[:20_000]
        for pattern, name in _CHALLENGE_MARKERS:
            if pattern.search(head):
                if status == 200 and name == "generic":
                    continue  # a normal page titled "Access denied" is still a page
                return name
        if status in (403, 503) and "cloudflare" in headers.get("server", "").lower() and b"cf-" in head:
            return "Cloudflare"
    return None


def same_link(a: str, b: str) -> bool:
    """Whether two URLs are the same link once canonicalized (so a redirect that only
    adds a tracking parameter or reorders the query does not count as a move)."""
    return (canonical_url(a) or a) == (canonical_url(b) or b)


@dataclass
class Verdict:
    outcome: str
    note: str | None = None
    retry: bool = False


def judge_response(status: int, url: str, final_url: str, headers: Mapping[str, str] | None = None,
                   body: bytes = b"") -> Verdict:
    """What an HTTP answer (after redirects) says about a link."""
    headers = headers or {}
    wall = bot_challenge(status, headers, body)
    if wall:
        return Verdict("blocked", f"HTTP {status}: bot challenge ({wall}); a person's browser gets through")
    if 200 <= status < 300:
        if same_link(url, final_url):
            return Verdict("ok")
        return Verdict("redirected", f"moved to {final_url}")
    if status in BLOCKED_STATUSES:
        return Verdict("blocked", f"HTTP {status}: {BLOCKED_STATUSES[status]}", retry=status == 429)
    if status in GONE_STATUSES:
        return Verdict("failed", f"HTTP {status}: {GONE_STATUSES[status]}")
    if 300 <= status < 400:
        return Verdict("failed", f"HTTP {status}: a redirect without a usable Location")
    if status >= 500:
        return Verdict("failed", f"HTTP {status}: server error", retry=status in RETRY_STATUSES)
    return Verdict("failed", f"HTTP {status}", retry=status in RETRY_STATUSES)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date, read by
    :func:`pipeline.fetchcache.parse_retry_after`), or None."""
    now = now or datetime.now(UTC)
    when = parse_retry_after(value, now)
    return None if when is None else (when - now).total_seconds()


def wayback_url(url: str, when: str | None = None) -> str:
    """The Wayback Machine address of ``url`` as near as possible to ``when``.

    Built without any network call: ``https://web.archive.org/web/<timestamp>/<url>``
    redirects to the capture nearest that time (``2`` stands for "the latest").
    """
    url = url.split("#", 1)[0]
    stamp = "2"
    if when:
        iso = parse_date(when)
        if iso:
            stamp = re.sub(r"\D", "", iso)[:14]
    return f"https://web.archive.org/web/{stamp}/{url}"


# -- storage ---------------------------------------------------------------------------


@dataclass
class CheckRecord:
    """One finished check of one resource, as the spider saw it."""

    resource_id: str
    url: str
    outcome: str
    http_status: int | None = None
    final_url: str | None = None
    error: str | None = None
    elapsed_ms: int | None = None
    method: str | None = None
    attempts: int = 1


@dataclass
class Transition:
    resource_id: str
    url: str
    before: str
    after: str
    failures: int

    @property
    def newly_broken(self) -> bool:
        return self.after == "broken" and self.before != "broken"

    @property
    def recovered(self) -> bool:
        return self.before == "broken" and self.after in ("ok", "redirected")


def derive_status(outcomes: list[tuple[str, int]], broken_after: int = BROKEN_AFTER) -> tuple[str, int]:
    """``(link_status, consecutive_failures)`` from a resource's checks, newest first.

    ``outcomes`` holds ``(outcome, run_id)`` pairs; ``skipped`` checks are ignored. The
    latest ``ok``, ``redirected`` or ``blocked`` check sets the status. Failed checks in a
    row (one per run) make the link ``broken`` once there are ``broken_after`` of them;
    fewer leave the status the link had before they began (``unchecked`` if none).
    """
    failed_runs: set[int] = set()
    for outcome, run_id in outcomes:
        if outcome == "skipped":
            continue
        if outcome == "failed":
            failed_runs.add(run_id)
            if len(failed_runs) >= broken_after:
                return "broken", len(failed_runs)
            continue
        return outcome, len(failed_runs)
    return "unchecked", len(failed_runs)


def start_link_run(db: Database, source_id: str | None = None, started_at: str | None = None) -> int:
    with db.atomic():
        db.execute("UPDATE link_check_runs SET status = 'interrupted', finished_at = ?, "
                   "error = coalesce(error, 'the link check stopped before it finished') WHERE status = 'running'",
                   [now_iso()])
        cur = db.execute("INSERT INTO link_check_runs (started_at, status, source_id) VALUES (?, 'running', ?)",
                         [started_at or now_iso(), source_id])
    return int(cur.lastrowid)


def finish_link_run(db: Database, run_id: int, **fields: Any) -> None:
    fields.setdefault("finished_at", now_iso())
    with db.atomic():
        db.execute(f"UPDATE link_check_runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                   [*fields.values(), run_id])


def select_due(db: Database, *, source_id: str | None = None, older_than_days: float = 0,
               limit: int | None = None, now: datetime | None = None) -> list[tuple[str, str]]:
    """``(resource_id, url)`` of the links to check: never checked first, then the least
    recently checked; only links not checked within ``older_than_days``; only those a
    source lists when ``source_id`` is given."""
    where, params = [], []
    if older_than_days and older_than_days > 0:
        cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
        where.append("(link_checked_at IS NULL OR link_checked_at < ?)")
        params.append(cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if source_id:
        where.append("id IN (SELECT resource_id FROM resource_sources WHERE source_id = ?)")
        params.append(source_id)
    sql = "SELECT id, url FROM resources"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY link_checked_at IS NOT NULL, link_checked_at, first_seen, id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [(r[0], r[1]) for r in db.execute(sql, params).fetchall()]


def record_check(db: Database, run_id: int, check: CheckRecord, *, now: str | None = None,
                 broken_after: int = BROKEN_AFTER) -> Transition:
    """Add one check to the history and update the resource's derived link fields, in
    one transaction. Returns the status before and after."""
    if check.outcome not in OUTCOMES:
        raise ValueError(f"unknown link check outcome {check.outcome!r}")
    now = now or now_iso()
    with db.atomic():
        row = db.execute("SELECT link_status, first_seen, link_recovered_at FROM resources WHERE id = ?",
                         [check.resource_id]).fetchone()
        if row is None:
            raise KeyError(f"no resource {check.resource_id}")
        before, first_seen, recovered_at = row
        cur = db.execute(
            "INSERT INTO link_checks (run_id, resource_id, url, checked_at, method, attempts, http_status, "
            "final_url, outcome, error, elapsed_ms, link_status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [run_id, check.resource_id, check.url, now, check.method, check.attempts, check.http_status,
             check.final_url, check.outcome, check.error, check.elapsed_ms, before],
        )
        check_id = cur.lastrowid
        history = db.execute(
            "SELECT outcome, run_id FROM link_checks WHERE resource_id = ? AND outcome != 'skipped' "
            "ORDER BY id DESC LIMIT ?", [check.resource_id, broken_after + 1],
        ).fetchall()
        after, failures = derive_status([(o, r) for o, r in history], broken_after)
        db.execute("UPDATE link_checks SET link_status = ? WHERE id = ?", [after, check_id])
        fields: dict[str, Any] = {"link_status": after, "link_failures": failures, "link_checked_at": now}
        if check.outcome != "skipped":
            fields.update(link_http_status=check.http_status, link_final_url=check.final_url,
                          link_error=check.error)
        if after in ("broken", "blocked"):
            last_good = db.execute(
                "SELECT max(checked_at) FROM link_checks WHERE resource_id = ? AND outcome IN ('ok', 'redirected')",
                [check.resource_id],
            ).fetchone()[0]
            fields["archived_url"] = wayback_url(check.url, last_good or first_seen)
        else:
            fields["archived_url"] = None
        transition = Transition(check.resource_id, check.url, before, after, failures)
        fields["link_recovered_at"] = now if transition.recovered else recovered_at
        db.execute(f"UPDATE resources SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                   [*fields.values(), check.resource_id])
    return transition
