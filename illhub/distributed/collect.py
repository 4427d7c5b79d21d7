"""Storing a finished Scrapyd job's feed into the catalog, as a local harvest stores its items.

The feed is downloaded, read through once to check it (it is from this code, for these
sources, and complete: it ends with the ``end`` record of a crawl that finished), then its
items go through the store pipeline (:class:`harvesters.store_pipeline.StorePipeline`) in the order
the job produced them, documents found unchanged are touched in the fetch cache, and each
source's run takes the counts the job's spider kept. A feed that fails the check is not
stored at all: the job failed (:class:`JobFailed`), and the dispatcher retries it or records
its sources failed.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from harvesters.spider import HarvestContext, SourceState
from illhub.distributed.records import FORMAT, BadOutput, End, Fail, Hello, SourceSummary, Touch, read_records
from illhub.distributed.scrapyd import ScrapydError
from pipeline.fetchcache import touch_document
from pipeline.version import __version__


class JobFailed(Exception):
    """A job gave nothing to store; ``retry`` when another attempt might go better."""

    def __init__(self, reason: str, retry: bool = True):
        super().__init__(reason)
        self.retry = retry


def log_hint(job: Any) -> str:
    """The last error line of the job's log, to say why it stopped ('' when none is found)."""
    log_url = job.entry.get("log_url")
    if not log_url or job.server is None:
        return ""
    try:
        text = job.server.api.tail(log_url)
    except ScrapydError:
        return f" (its log: {job.server.url}{log_url})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if " ERROR: " in line or " CRITICAL: " in line
              or line.split(":", 1)[0].endswith(("Error", "Exception"))]
    last = (errors or lines or ["(empty)"])[-1]
    return f" (its log {job.server.url}{log_url} ends: {last[:300]})"


def store_job_output(job: Any, context: HarvestContext, pipe: Any, digest: str, workdir: Path) -> None:
    server = job.server
    items_url = job.entry.get("items_url")
    if not items_url:
        raise JobFailed(f"job {job.jobid} on {server.url} ended without writing its feed{log_hint(job)}")
    path = workdir / f"{job.jobid}.jl"
    try:
        server.api.download(items_url, path)
    except ScrapydError as e:
        raise JobFailed(f"the feed of job {job.jobid} could not be downloaded: {e}") from None
    try:
        check_feed(path, job, digest)
        replay(path, job, context, pipe)
    finally:
        path.unlink(missing_ok=True)


def check_feed(path: Path, job: Any, digest: str) -> None:
    """Raise :class:`JobFailed` unless the feed is this code's complete harvest of the job's sources."""
    hello: Hello | None = None
    end: End | None = None
    where = f"job {job.jobid} on {job.server.url}"
    try:
        with path.open(encoding="utf-8") as f:
            for record in read_records(f):
                if isinstance(record, Fail):
                    raise JobFailed(f"{where} could not start: {record.error}", retry=False)
                if hello is None and not isinstance(record, Hello):
                    raise JobFailed(f"{where}: its feed does not start with illhub's hello record")
                if isinstance(record, Hello):
                    hello = record
                elif isinstance(record, End):
                    end = record
                elif end is not None:
                    raise JobFailed(f"{where}: its feed goes on after its end record")
    except BadOutput as e:
        raise JobFailed(f"{where}: its feed cannot be read ({e})") from None
    if hello is None:
        raise JobFailed(f"{where} ended before it began harvesting{log_hint(job)}")
    if hello.format != FORMAT or hello.code != digest:
        raise JobFailed(f"{where} ran other illhub code (version {hello.version}, code {hello.code[:12]}) than this "
                        f"dispatcher ({__version__}, code {digest[:12]}): let the dispatcher deploy its egg "
                        "(without --no-deploy), and do not install another illhub where Scrapyd runs")
    if sorted(hello.sources) != sorted(job.ids):
        raise JobFailed(f"{where} harvested other sources than it was given", retry=False)
    if end is None:
        raise JobFailed(f"{where} stopped before the end of its harvest{log_hint(job)}")
    if end.reason != "finished":
        raise JobFailed(f"{where} was stopped ({end.reason}) before the end of its harvest")


def replay(path: Path, job: Any, context: HarvestContext, pipe: Any) -> None:
    """Store a checked feed: items through the store pipeline, touches into the fetch cache,
    each source's summary into its state."""
    ids = set(job.ids)
    summaries: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as f:
        for record in read_records(f):
            if record is None or isinstance(record, (Hello, End)):
                continue
            if isinstance(record, Touch):
                touch_document(context.db, record.source_id, record.url, checked_at=record.checked_at,
                               fresh_until=record.fresh_until, etag=record.etag, last_modified=record.last_modified)
            elif isinstance(record, SourceSummary):
                summaries[record.source_id] = record.values
            elif (getattr(record, "source_id", None) or record.doc.source_id) in ids:
                pipe.process_item(record)
    pipe.commit()
    for state in job.states:
        apply_summary(state, summaries.get(state.source.id))


def apply_summary(state: SourceState, values: dict[str, Any] | None) -> None:
    """Add what the job's spider counted for a source to the run being closed here (where
    the store pipeline already counted the items seen, new and updated)."""
    state.done = True
    if values is None:
        state.errors.append("the job's feed has no summary of this source")
        return
    for k in ("documents", "requests", "bytes", "unchanged"):
        setattr(state, k, getattr(state, k) + int(values[k] or 0))
    if state.http_status is None:
        state.http_status = values["http_status"]
    state.errors[:0] = list(values["errors"])
    state.warnings[:0] = list(values["warnings"])
    state.deferred = values["deferred"]
    if values["retry_after"]:
        state.retry_after = datetime.fromisoformat(values["retry_after"])



