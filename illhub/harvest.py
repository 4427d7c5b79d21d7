"""The harvest runner: registry sources → one Scrapy crawl → SQLite, with a run log."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harvesters.guard import Policy
from harvesters.settings import harvest_settings
from harvesters.spider import HarvestContext, HarvestSpider, SourceState
from illhub.registry import Registry, SourceBase
from pipeline.classify import default_taxonomy
from pipeline.normalize import now_iso
from pipeline.store import finish_run, mark_interrupted_runs, open_db, start_run, sync_sources
from pipeline.version import USER_AGENT, __version__

DEFAULT_DB = Path("data") / "illhub.db"


def default_db_path() -> Path:
    return Path(os.environ.get("ILLHUB_DB") or DEFAULT_DB)


def policy_from_env(allow_private: bool = False) -> Policy:
    """--allow-private-network, or ILLHUB_ALLOW_PRIVATE_NETWORK=1; ILLHUB_NETWORK=loopback
    restricts harvests to this machine (the tests and the demo use it)."""
    env = os.environ.get("ILLHUB_NETWORK", "").strip().lower()
    if env == "loopback":
        return Policy.LOOPBACK
    if allow_private or os.environ.get("ILLHUB_ALLOW_PRIVATE_NETWORK", "") in ("1", "true", "yes"):
        return Policy.PRIVATE
    return Policy.PUBLIC


class UnknownSource(ValueError):
    pass


@dataclass
class HarvestResult:
    run_group: str
    states: list[SourceState]

    @property
    def failed(self) -> list[SourceState]:
        return [s for s in self.states if s.status == "failed"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def select_sources(registry: Registry, source_ids: list[str] | None) -> list[SourceBase]:
    if not source_ids:
        return registry.enabled()
    known = {s.id: s for s in registry.sources}
    missing = [i for i in source_ids if i not in known]
    if missing:
        ids = sorted(known)
        listed = ", ".join(ids[:12]) + (f", … ({len(ids)} in all)" if len(ids) > 12 else "")
        raise UnknownSource(
            f"{registry.path}: no source with id {', '.join(repr(m) for m in missing)}; "
            f"known ids: {listed or 'none'} (see 'illhub sources')"
        )
    return [known[i] for i in source_ids]


def user_agent(registry: Registry) -> str:
    if registry.defaults.contact:
        return f"illhub/{__version__} (+{registry.defaults.contact}; interlibrary loan resource hub harvester)"
    return USER_AGENT


def run_harvest(
    registry: Registry,
    db_path: str | Path,
    *,
    source_ids: list[str] | None = None,
    policy: Policy = Policy.PUBLIC,
    delay: float | None = None,
    timeout: float | None = None,
    log_level: str = "ERROR",
    progress: Any = None,
    settings: dict[str, Any] | None = None,
) -> HarvestResult:
    """Harvest the selected sources in one crawl process and record each source's run.

    ``progress`` is an optional object with ``start(total)``, ``advance(state)`` and
    ``stop()`` (the CLI passes a rich progress bar).
    """
    from scrapy.crawler import CrawlerProcess

    sources = select_sources(registry, source_ids)
    db = open_db(db_path)
    mark_interrupted_runs(db)
    sync_sources(db, [s.row() for s in registry.sources])
    run_group = uuid.uuid4().hex[:12]
    started = now_iso()
    states = {s.id: SourceState(source=s, run_id=start_run(db, s.id, run_group, started)) for s in sources}
    context = HarvestContext(db=db, states=states, taxonomy=default_taxonomy())
    if progress is not None:
        progress.start(len(states))
        context.on_source_done = progress.advance
    extra = {"USER_AGENT": user_agent(registry)}
    extra.update(settings or {})
    try:
        if states:
            process = CrawlerProcess(
                harvest_settings(policy=policy.value, delay=delay, timeout=timeout, log_level=log_level, extra=extra),
            )
            process.crawl(HarvestSpider, context=context)
            process.start()
    finally:
        if progress is not None:
            progress.stop()
        for state in states.values():
            finish_run(
                db, state.run_id, status=state.status, items_seen=state.seen, items_new=state.new,
                items_updated=state.updated, http_status=state.http_status, requests=state.requests,
                bytes=state.bytes, warning="; ".join(dict.fromkeys(state.warnings))[:2000] or None,
                error="; ".join(dict.fromkeys(state.errors + ([state.deferred] if state.deferred else [])))[:2000]
                or None,
            )
        db.close()
    return HarvestResult(run_group, list(states.values()))
