"""The spider a Scrapyd job runs (``scrapy crawl harvest -a ...``): the harvest spider over
sources given as spider arguments, writing what it harvested to the job's item feed.

Spider arguments (all text; long ones may be :func:`~illhub.distributed.records.pack`-ed):

``registry``
    a registry, YAML or JSON (the dispatcher sends only the job's sources), or
``registry_url``
    where to download one (through the harvest's own downloader: guard, robots.txt);
    the User-Agent's contact is then the ``contact`` argument, when given.
``sources`` / ``shard``
    the source ids to harvest (comma-separated), or ``K/N``: the K-th of N shares of the
    registry's enabled sources split by host (``illhub harvest --shard``); both: those ids
    in that share. Neither: every enabled source.
``run_group``
    the dispatcher's harvest run (written to the job's log).
``state``
    the sources' fetch state (:class:`~illhub.distributed.records.JobState`); without it
    every document is fetched and parsed.
``delay``, ``timeout``
    as ``illhub harvest --delay/--timeout``.
``policy``
    ``public``, ``private`` or ``loopback``: narrows the machine's network policy (a job
    never widens it; see :mod:`illhub.distributed.settings`).

The job has no catalog: its context's database is an in-memory one holding only what the
harvest reads (the sitemap pages already known), and every item goes to the feed
(:class:`JobOutputPipeline`), as do documents found unchanged and each source's summary.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

from ruamel.yaml.error import YAMLError
from scrapy import Request
from scrapy.exceptions import CloseSpider
from w3lib.url import file_uri_to_path

from harvesters.conditional import FetchState, header
from harvesters.guard import Policy
from harvesters.offload import store_options
from harvesters.settings import DEFAULT_DELAY
from harvesters.spider import HarvestContext, HarvestSpider, SourceState
from illhub.distributed.egg import code_digest
from illhub.distributed.records import JobState, RecordWriter, Touch, unpack
from illhub.harvest import cache_config, policy_from_env, shard_of, user_agent
from illhub.registry import Defaults, Registry, RegistryError, parse_registry
from pipeline import safeyaml
from pipeline.fetchcache import source_fingerprint
from pipeline.resource import Batch
from pipeline.store import open_db, prepare_batch
from pipeline.taxonomy import default_taxonomy
from pipeline.version import __version__

logger = logging.getLogger(__name__)


class JobArgumentError(ValueError):
    """A spider argument the job cannot use (one line, naming the argument)."""


def job_policy(machine: Policy, requested: str | None) -> Policy:
    """The machine's policy, narrowed to the requested one when that is narrower: a machine
    that may reach private networks (``private``) takes any; otherwise its own applies."""
    if not requested:
        return machine
    try:
        wanted = Policy.parse(requested)
    except ValueError:
        raise JobArgumentError(f"policy {requested!r}: expected public, private or loopback") from None
    return wanted if machine is Policy.PRIVATE else machine


def parse_registry_text(text: str, where: str) -> Registry:
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else safeyaml.parse(text)
    except (ValueError, YAMLError) as e:
        raise JobArgumentError(f"{where}: neither JSON nor YAML ({str(e).splitlines()[0]})") from None
    try:
        return parse_registry(data, where)
    except RegistryError as e:
        raise JobArgumentError(f"{where}: " + "; ".join(e.problems[:5])
                               + (f" (and {len(e.problems) - 5} more)" if len(e.problems) > 5 else "")) from None


def select(registry: Registry, ids: str | None, shard: str | None) -> list[Any]:
    """The sources named by the ``sources`` and ``shard`` arguments."""
    if ids:
        known = {s.id: s for s in registry.sources}
        wanted = [i.strip() for i in ids.split(",") if i.strip()]
        missing = [i for i in wanted if i not in known]
        if missing:
            raise JobArgumentError(f"sources: no source {', '.join(map(repr, missing))} in the registry")
        sources = [known[i] for i in wanted]
    else:
        sources = registry.enabled()
    if shard:
        k, _, n = shard.partition("/")
        if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
            raise JobArgumentError(f"shard {shard!r}: expected K/N with 1 <= K <= N")
        sources = [s for s in sources if shard_of(s, int(n)) == int(k)]
    return sources


def _number(kwargs: dict[str, Any], name: str) -> float | None:
    value = kwargs.get(name)
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except ValueError:
        raise JobArgumentError(f"{name} {value!r}: expected a number of seconds") from None
    if number < 0:
        raise JobArgumentError(f"{name} {value!r}: expected a number of seconds")
    return number


class JobFetchState(FetchState):
    """The fetch state of a job: a document found unchanged is also sent to the dispatcher,
    whose catalog holds the cache row."""

    output: RecordWriter | None = None

    def unchanged(self, response: Any, source_id: str) -> Any:
        found = super().unchanged(response, source_id)
        if found is not None and self.output is not None:
            doc = found[1]
            self.output.touch(Touch(source_id, response.request.url, doc.checked_at, doc.fresh_until,
                                    header(response, "ETag"), header(response, "Last-Modified")))
        return found


def job_database(state: JobState | None) -> Any:
    """An in-memory database with what the harvest reads of a catalog: the pages of
    sitemap sources already harvested, with their lastmod (:func:`pipeline.pages.known_lastmods`)."""
    db = open_db(":memory:")
    if state is None or not state.lastmods:
        return db
    now = "1970-01-01T00:00:00Z"
    with db.atomic():
        for sid, pages in state.lastmods.items():
            for i, (url, lastmod) in enumerate(pages.items()):
                rid = f"job:{sid}:{i}"
                db.execute("INSERT INTO resources (id, url, title, content_type, source_id, content_hash, first_seen, "
                           "last_seen, last_changed) VALUES (?, ?, '', 'page', ?, '', ?, ?, ?)",
                           [rid, rid, sid, now, now, now])
                db.execute("INSERT INTO web_pages (source_id, url, resource_id, lastmod, first_fetched, last_fetched, "
                           "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)", [sid, url, rid, lastmod, now, now, now])
    return db


def open_output(settings: Any) -> IO[str]:
    """The job's feed file: Scrapyd's item feed for the job (its ``FEEDS`` setting, from
    ``items_dir``), ``-O FILE`` on the command line, or the ``ILLHUB_JOB_OUTPUT`` setting."""
    target = settings.get("ILLHUB_JOB_OUTPUT")
    if not target:
        feeds = settings.getdict("FEEDS")
        if not feeds:
            raise JobArgumentError("no item feed to write to: set items_dir in scrapyd.conf (a local folder), "
                                   "or run the spider with -O FILE")
        target = str(next(iter(feeds)))
    if "://" in target:
        if not target.startswith("file://"):
            raise JobArgumentError(f"item feed {target}: illhub writes its feed to a local file; set items_dir "
                                   "in scrapyd.conf to a local folder")
        target = file_uri_to_path(target)
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("w", encoding="utf-8")


class JobSpider(HarvestSpider):
    """``harvest``: the harvest of the sources given as arguments (see the module docstring)."""

    name = "harvest"

    def __init__(self, context: HarvestContext, output: RecordWriter, stream: IO[str], policy: Policy,
                 arguments: dict[str, Any]):
        super().__init__(context=context)
        self.output = output
        self.stream = stream
        self.policy = policy
        self.arguments = arguments
        self.registry: Registry | None = None

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> JobSpider:
        stream = open_output(crawler.settings)
        output = RecordWriter(stream)
        try:
            policy = job_policy(Policy.parse(crawler.settings.get("ILLHUB_NETWORK_POLICY") or policy_from_env().value),
                                kwargs.get("policy"))
            delay, timeout = _number(kwargs, "delay"), _number(kwargs, "timeout")
            registry = None
            if kwargs.get("registry"):
                registry = parse_registry_text(unpack(kwargs["registry"]), "registry (spider argument)")
            elif not kwargs.get("registry_url"):
                raise JobArgumentError("give the registry (registry=TEXT) or where to find it (registry_url=URL)")
            state = JobState.from_json(unpack(kwargs["state"])) if kwargs.get("state") else None
        except (JobArgumentError, ValueError, TypeError) as e:
            output.fail(str(e))
            stream.close()
            raise
        fetch = JobFetchState(db=None, cache={}, fingerprints={})
        context = HarvestContext(db=job_database(state), states={}, fetch=fetch)
        fetch.db = context.db
        fetch.output = output
        if state is not None:
            fetch.cache = {(d.source_id, d.url): d for d in state.cache}
            fetch.fingerprints = dict(state.fingerprints)
            fetch.use_cache, fetch.honour_freshness = state.use_cache, state.honour_freshness
        agent = user_agent(registry or SimpleNamespace(defaults=Defaults(contact=kwargs.get("contact") or None)))
        crawler.settings.set("ILLHUB_NETWORK_POLICY", policy.value, priority="spider")
        crawler.settings.set("USER_AGENT", agent, priority="spider")
        crawler.settings.set("DOWNLOAD_DELAY", max(DEFAULT_DELAY if delay is None else delay, 0.001), priority="spider")
        if timeout is not None:
            crawler.settings.set("DOWNLOAD_TIMEOUT", timeout, priority="spider")
        spider = cls(context, output, stream, policy, dict(kwargs))
        spider.registry = registry
        spider._set_crawler(crawler)
        return spider

    async def start(self) -> AsyncIterator[Any]:
        try:
            if self.registry is None:
                self.registry = await self._download_registry(self.arguments["registry_url"])
            sources = select(self.registry, self.arguments.get("sources"), self.arguments.get("shard"))
        except JobArgumentError as e:
            self.output.fail(str(e))
            raise CloseSpider("bad arguments") from None
        fetch = self.context.fetch
        for s in sources:
            self.context.states[s.id] = SourceState(source=s, run_id=0)
            if s.id not in fetch.fingerprints:
                fetch.fingerprints[s.id] = source_fingerprint(cache_config(s), __version__)
        self.output.hello(__version__, code_digest(), [s.id for s in sources], self.policy.value)
        logger.info("illhub job of run %s: %d sources, network policy %s; the harvest goes to %s (illhub writes it "
                    "itself: Scrapy's feed exporter stays off)", self.arguments.get("run_group", "?"), len(sources),
                    self.policy.value, getattr(self.stream, "name", "?"))
        async for out in super().start():
            yield out

    async def _download_registry(self, url: str) -> Registry:
        request = Request(url, dont_filter=True)
        try:
            response = await self.crawler.engine.download_async(request)
        except Exception as e:  # noqa: BLE001 - reported as the job's failure
            raise JobArgumentError(f"registry_url {url}: could not be downloaded: {type(e).__name__}: {e}") from None
        if response.status != 200:
            raise JobArgumentError(f"registry_url {url}: HTTP {response.status}")
        return parse_registry_text(response.text, url)

    def closed(self, reason: str) -> None:
        super().closed(reason)
        if self.stream.closed:
            return
        try:
            for sid, state in self.context.states.items():
                self.output.summary(sid, state)
            self.output.end(reason)
        finally:
            self.stream.close()


class JobOutputPipeline:
    """Writes every item of the harvest to the job's feed, where a local harvest stores it
    (:class:`harvesters.store_pipeline.StorePipeline`). A batch is first normalized and classified
    here (:func:`pipeline.store.prepare_batch`, the CPU stage a parse worker does locally), so
    the dispatcher only writes it. An item that cannot be written fails its source."""

    def __init__(self, crawler: Any):
        self.crawler = crawler
        self.taxonomy: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> JobOutputPipeline:
        return cls(crawler)

    def prepare(self, batch: Batch, source: Any) -> None:
        if self.taxonomy is None:
            self.taxonomy = default_taxonomy()
        batch.prepared, result = prepare_batch(batch, taxonomy=self.taxonomy, **store_options(source))
        batch.prepared_result = dict(result)
        batch.resources = []

    def process_item(self, item: Any, spider: Any = None) -> Any:
        spider = spider or self.crawler.spider
        state = spider.context.states.get(getattr(item, "source_id", None))
        count = len(getattr(item, "resources", None) or [])
        try:
            if isinstance(item, Batch) and item.prepared is None and state is not None:
                self.prepare(item, state.source)
            spider.output.item(item)
        except Exception as e:  # noqa: BLE001 - fails this source, not the job (as the store pipeline does)
            logger.exception("could not prepare or write an item of %s", getattr(item, "source_id", "?"))
            if state is not None:
                state.errors.append(f"could not store {count} items: {type(e).__name__}: {e}")
                state.store_failures += 1
        return item
