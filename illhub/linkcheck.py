"""The link-check runner: catalogued links → one Scrapy crawl of HEAD/GET checks → history
and derived status in the catalog (``link_checks``, ``link_check_runs``, ``resources``).

``run_link_check`` is what ``illhub check-links`` calls; ``scheduled_link_check`` is the
entry point for the scheduler (``defaults.link_check_schedule`` in the registry, weekly
by default), and ``link_check_argv`` the command line to run it as its own process.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harvesters.guard import Policy
from harvesters.linkcheck import (
    LinkCheckContext,
    LinkCheckOptions,
    LinkCheckSpider,
    LinkTarget,
    linkcheck_settings_extra,
)
from harvesters.settings import harvest_settings
from pipeline.linkhealth import (
    OUTCOMES,
    CheckRecord,
    Transition,
    finish_link_run,
    record_check,
    select_due,
    start_link_run,
)
from pipeline.store import open_db
from pipeline.writelock import writer_lock

#: By default a link checked within the last day is not checked again.
DEFAULT_OLDER_THAN_DAYS = 1.0


class UnknownLinkSource(ValueError):
    pass


@dataclass
class LinkCheckResult:
    run_id: int
    selected: int
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    newly_broken: list[Transition] = field(default_factory=list)
    recovered: list[Transition] = field(default_factory=list)
    records: list[CheckRecord] = field(default_factory=list)
    requests: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def checked(self) -> int:
        return sum(self.counts.values())

    def add(self, record: CheckRecord, transition: Transition) -> None:
        self.counts[record.outcome] = self.counts.get(record.outcome, 0) + 1
        self.records.append(record)
        if transition.newly_broken:
            self.newly_broken.append(transition)
        if transition.recovered:
            self.recovered.append(transition)


def check_source_exists(db: Any, source_id: str) -> None:
    known = [r[0] for r in db.execute("SELECT DISTINCT source_id FROM resource_sources ORDER BY 1").fetchall()]
    if source_id not in known:
        listed = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
        raise UnknownLinkSource(
            f"no resources from source {source_id!r} in the catalog"
            + (f" (sources with resources: {listed})" if known else " (the catalog is empty: run 'illhub harvest')")
        )


def run_link_check(
    db_path: str | Path,
    *,
    source_id: str | None = None,
    older_than_days: float = DEFAULT_OLDER_THAN_DAYS,
    limit: int | None = None,
    policy: Policy = Policy.PUBLIC,
    delay: float | None = None,
    timeout: float | None = None,
    options: LinkCheckOptions | None = None,
    user_agent: str | None = None,
    log_level: str = "ERROR",
    progress: Any = None,
    proxy: str | None = None,
    lock_wait: float | None = None,
    on_lock_wait: Any = None,
) -> LinkCheckResult:
    """Check the links that are due, in one crawl process, and record every check.

    ``progress`` is an optional object with ``start(total)``, ``advance(record)`` and
    ``stop()``. The run holds the catalog's writer lock (``lock_wait``, ``on_lock_wait``: as
    for :func:`illhub.harvest.run_harvest`).
    """
    with writer_lock(db_path, "check-links", wait=lock_wait, on_wait=on_lock_wait):
        return _check_links_locked(db_path, source_id=source_id, older_than_days=older_than_days, limit=limit,
                                   policy=policy, delay=delay, timeout=timeout, options=options,
                                   user_agent=user_agent, log_level=log_level, progress=progress, proxy=proxy)


def _check_links_locked(db_path: str | Path, *, source_id: str | None, older_than_days: float, limit: int | None,
                        policy: Policy, delay: float | None, timeout: float | None,
                        options: LinkCheckOptions | None, user_agent: str | None, log_level: str,
                        progress: Any, proxy: str | None) -> LinkCheckResult:
    from scrapy.crawler import CrawlerProcess

    from illhub.harvest import quiet_retries

    db = open_db(db_path)
    try:
        if source_id:
            check_source_exists(db, source_id)
        due = select_due(db, source_id=source_id, older_than_days=older_than_days, limit=limit)
        run_id = start_link_run(db, source_id)
        result = LinkCheckResult(run_id=run_id, selected=len(due))

        def on_result(record: CheckRecord) -> None:
            result.add(record, record_check(db, run_id, record))
            if progress is not None:
                progress.advance(record)

        context = LinkCheckContext(targets=(LinkTarget(rid, url) for rid, url in due), on_result=on_result,
                                   options=options or LinkCheckOptions())
        extra = linkcheck_settings_extra()
        if user_agent:
            extra["USER_AGENT"] = user_agent
        if progress is not None:
            progress.start(len(due))
        try:
            if due:
                extra["LOG_INSTALL_ROOT_HANDLER"] = True
                process = CrawlerProcess(
                    harvest_settings(policy=policy.value, delay=delay, timeout=timeout, log_level=log_level,
                                     extra=extra, proxy=proxy),
                )
                quiet_retries(log_level)
                process.crawl(LinkCheckSpider, context=context)
                process.start()
        finally:
            if progress is not None:
                progress.stop()
            result.requests = context.requests
            unfinished = result.selected - result.checked
            if unfinished > 0:
                result.errors.append(f"{unfinished} link(s) were not checked (the crawl stopped early)")
            finish_link_run(
                db, run_id, status="ok" if not result.errors else "incomplete", selected=result.selected,
                checked=result.checked, newly_broken=len(result.newly_broken), recovered=len(result.recovered),
                requests=result.requests, error="; ".join(result.errors) or None,
                **{k: result.counts.get(k, 0) for k in OUTCOMES},
            )
    finally:
        db.close()
    return result


def link_check_schedule(registry: Any) -> str:
    """When scheduled link checks run: the registry's ``defaults.link_check_schedule``
    (``weekly`` unless set; a schedule word or a 5-field cron expression)."""
    return registry.defaults.link_check_schedule


def scheduled_link_check(registry: Any, db_path: str | Path, *, policy: Policy | None = None,
                         log_level: str = "ERROR") -> LinkCheckResult:
    """One scheduled link check with the default options (run it in its own process:
    Scrapy's reactor cannot be started twice in one)."""
    from illhub.harvest import policy_from_env, user_agent

    return run_link_check(db_path, policy=policy or policy_from_env(), user_agent=user_agent(registry),
                          log_level=log_level)


def link_check_argv(registry_path: str | Path, db_path: str | Path) -> list[str]:
    """The command a scheduler runs for a scheduled link check, as its own process."""
    return [sys.executable, "-m", "illhub", "check-links", "--registry", str(registry_path), "--db", str(db_path),
            "--quiet"]
