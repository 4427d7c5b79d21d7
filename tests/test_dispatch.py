"""The pieces of a dispatched harvest that need no Scrapyd: what goes to a job (the registry,
the fetch state, spider arguments short enough for a command line, shares split by host),
what comes back (the feed's records), the job's network policy, and the job spider run by
hand with ``scrapy crawl harvest`` (tests/test_scrapyd.py runs it under Scrapyd)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from harvesters.conditional import DocumentRecord
from harvesters.guard import Policy
from harvesters.spider import SourceState
from illhub.distributed import dispatch
from illhub.distributed.collect import JobFailed, check_feed
from illhub.distributed.egg import code_digest
from illhub.distributed.job import JobArgumentError, job_policy
from illhub.distributed.records import (
    PACK_ABOVE,
    End,
    Fail,
    Hello,
    JobState,
    RecordWriter,
    SourceSummary,
    Touch,
    pack,
    read_records,
    registry_text,
    unpack,
)
from illhub.harvest import cache_config, host_key
from illhub.registry import load_registry, parse_registry
from pipeline.fetchcache import CachedDocument, source_fingerprint
from pipeline.pages import PagesUnchanged, PageVisit
from pipeline.resource import Batch, Resource
from pipeline.version import __version__
from tests.conftest import ROOT
from tests.server import StubServer, registry_yaml, rss


def test_registry_text_gives_back_every_real_source():
    """The registry a job receives is the dispatcher's, source for source: same entries, same
    fingerprints (so the fetch cache a job gets applies to it)."""
    registry = load_registry(ROOT / "registry.yaml")
    again = parse_registry(__import__("json").loads(unpack(pack(registry_text(registry, registry.sources)))), "job")
    assert [s.row() for s in again.sources] == [s.row() for s in registry.sources]
    assert again.defaults == registry.defaults
    assert all(source_fingerprint(cache_config(a), __version__) == source_fingerprint(cache_config(b), __version__)
               for a, b in zip(again.sources, registry.sources, strict=True))


def test_pack_compresses_only_long_arguments():
    assert pack("short") == "short" and unpack("short") == "short"
    text = "https://example.org/feed.rss " * 1000
    packed = pack(text)
    assert len(text) > PACK_ABOVE and packed.startswith("z:") and len(packed) < len(text) / 10
    assert unpack(packed) == text


def test_feed_records_come_back_as_the_items_the_store_pipeline_takes():
    out = io.StringIO()
    writer = RecordWriter(out)
    doc = DocumentRecord(CachedDocument("blog", "https://ill.example.org/feed", etag='"v1"', body_sha256="ab",
                                        follow=[{"url": "https://ill.example.org/feed?page=2"}]), pending=2)
    first = Batch("blog", [Resource(url="https://ill.example.org/a", title="A", raw={"n": 1})],
                  url="https://ill.example.org/feed", warnings=["w"], document=doc)
    bad = Batch("blog", [Resource(url="https://ill.example.org/b", raw={"not json": {1, 2}})], document=doc)
    second = Batch("blog", [Resource(url="https://ill.example.org/c", title="C")], document=doc)
    writer.hello(__version__, "digest", ["blog"], "public")
    writer.item(first)
    with pytest.raises(TypeError):
        writer.item(bad)  # nothing of it is written
    writer.item(second)
    writer.item(DocumentRecord(CachedDocument("blog", "https://ill.example.org/empty")))
    writer.item(PageVisit("site", "https://s.example.org/p", "https://s.example.org/p", lastmod="2025-01-01"))
    writer.item(PagesUnchanged("site", ["https://s.example.org/q"], {"https://s.example.org/q": "2025-02-01"}))
    writer.touch(Touch("blog", "https://ill.example.org/feed", "2026-01-01T00:00:00Z", None, '"v2"'))
    writer.summary("blog", SourceState(source=None, run_id=0, documents=2, requests=3, bytes=10,  # type: ignore[arg-type]
                                       errors=["e"]))
    writer.end("finished")
    records = [r for r in read_records(out.getvalue().splitlines()) if r is not None]
    assert [type(r).__name__ for r in records] == ["Hello", "Batch", "Batch", "DocumentRecord", "PageVisit",
                                                   "PagesUnchanged", "Touch", "SourceSummary", "End"]
    a, c = records[1], records[2]
    assert a.resources[0].raw == {"n": 1} and a.warnings == ["w"] and c.resources[0].title == "C"
    assert a.document is c.document and a.document.pending == 2 and a.document.doc.etag == '"v1"'
    assert a.document.doc.follow == [{"url": "https://ill.example.org/feed?page=2"}]
    assert records[3].pending == 0  # a document that gave no batch: saved as it comes
    assert records[5].lastmods == {"https://s.example.org/q": "2025-02-01"} and records[6].etag == '"v2"'
    assert records[7] == SourceSummary("blog", {**records[7].values, "documents": 2, "requests": 3, "errors": ["e"]})
    assert records[8] == End("finished") and records[0] == Hello(1, __version__, "digest", ["blog"], "public")


def test_job_policy_narrows_never_widens():
    assert job_policy(Policy.PRIVATE, "loopback") is Policy.LOOPBACK
    assert job_policy(Policy.PRIVATE, None) is Policy.PRIVATE
    assert job_policy(Policy.PUBLIC, "private") is Policy.PUBLIC
    assert job_policy(Policy.LOOPBACK, "public") is Policy.LOOPBACK
    with pytest.raises(JobArgumentError, match="policy 'intranet'"):
        job_policy(Policy.PUBLIC, "intranet")


def _states(n_hosts: int, per_host: int):
    lines = ["sources:"]
    for h in range(n_hosts):
        for i in range(per_host):
            lines += [f"  - id: s-{h}-{i}", f"    name: S {h} {i}", "    kind: feed",
                      f'    url: "https://host{h}.example.org/feed{i}.rss"']
    from ruamel.yaml import YAML

    registry = parse_registry(YAML(typ="safe").load("\n".join(lines)), "r.yaml")
    return registry, [SourceState(source=s, run_id=i) for i, s in enumerate(registry.sources)]


def test_jobs_keep_each_host_whole_and_stay_under_the_argument_limit(monkeypatch):
    registry, states = _states(6, 5)
    state = JobState(fingerprints={s.source.id: "f" for s in states},
                     cache=[CachedDocument(s.source.id, f"{s.source.url}?p={k}", etag=f'"{k:040d}"',
                                           body_sha256=f"{k:064d}") for s in states for k in range(40)])
    plan = dispatch.plan_jobs(registry, states, 2, "run", state, Policy.PUBLIC, 0.5, None)

    def hosts_of(jobs):
        return [{host_key(s.source) for s in job.states} for job in jobs]

    assert len(plan) <= 2 and sorted(s.source.id for j in plan for s in j.states) == sorted(s.source.id for s in states)
    assert all(len(a & b) == 0 for i, a in enumerate(hosts_of(plan)) for b in hosts_of(plan)[i + 1:])
    assert all(job.args["delay"] == "0.5" and "timeout" not in job.args and job.args["policy"] == "public"
               for job in plan)
    # a share too long to pass on a command line is split, by host
    longest_host = max(len(j) for j in (dispatch.job_arguments(registry, [s for s in states if host_key(s.source) == h],
                                                               "run", state, Policy.PUBLIC, None, None)["state"]
                                        for h in {host_key(s.source) for s in states}))
    monkeypatch.setattr(dispatch, "MAX_ARGUMENT", longest_host + 10)
    split = dispatch.plan_jobs(registry, states, 2, "run", state, Policy.PUBLIC, None, None)
    assert len(split) > len(plan)
    assert all(len(a & b) == 0 for i, a in enumerate(hosts_of(split)) for b in hosts_of(split)[i + 1:])
    assert all(max(len(v) for v in job.args.values()) <= longest_host + 10 for job in split)
    assert all("state" in job.args for job in split)
    # one host whose fetch state alone is too long goes without it (fetched and parsed again)
    monkeypatch.setattr(dispatch, "MAX_ARGUMENT", 1000)
    alone = dispatch.plan_jobs(registry, states, 1, "run", state, Policy.PUBLIC, None, None)
    assert all(len(h) == 1 for h in hosts_of(alone)) and all("state" not in job.args for job in alone)


def _job_feed(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, list]:
    out = tmp_path / "feed.jl"
    result = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "harvest", *args, "-O", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    with out.open(encoding="utf-8") as f:
        return result.returncode, list(read_records(f))


def test_a_job_reads_its_registry_from_a_url_and_harvests_its_shard(tmp_path):
    with StubServer() as srv:
        for name in ("one", "two", "three"):
            srv.add(f"/{name}.rss", rss([(f"{name}-post", f"Borrowing news {name}", "Mon, 01 Dec 2025 10:00:00 GMT")]),
                    "application/rss+xml")
        srv.add("/registry.yaml", registry_yaml(srv.base, [("one", "/one.rss"), ("two", "/two.rss"),
                                                           ("three", "/three.rss")]), "text/plain")
        code, records = _job_feed(tmp_path, "-a", f"registry_url={srv.base}/registry.yaml", "-a", "shard=1/1",
                                  "-a", "sources=one,three", "-a", "contact=mailto:ill@example.org", "-a", "delay=0.01")
        agents = {h.user_agent for h in srv.hits() if h.path.endswith(".rss")}
    assert code == 0
    hello = records[0]
    assert isinstance(hello, Hello) and hello.sources == ["one", "three"] and hello.code == code_digest()
    assert hello.policy == "loopback"  # the machine's own (ILLHUB_NETWORK=loopback in the tests)
    batches = [r for r in records if isinstance(r, Batch)]
    assert {b.source_id for b in batches} == {"one", "three"}
    assert all(b.prepared and b.prepared_result["seen"] == 1 for b in batches)  # normalized and classified
    summaries = {r.source_id: r.values for r in records if isinstance(r, SourceSummary)}
    assert summaries.keys() == {"one", "three"} and all(v["documents"] == 1 for v in summaries.values())
    assert records[-1] == End("finished")
    assert agents == {next(iter(agents))} and "mailto:ill@example.org" in next(iter(agents))


def test_a_job_refused_by_the_network_policy_fails_its_sources_not_the_job(tmp_path):
    with StubServer() as srv:
        srv.add("/one.rss", rss([("p", "Post", "Mon, 01 Dec 2025 10:00:00 GMT")]), "application/rss+xml")
        text = registry_yaml(srv.base, [("one", "/one.rss")])
        # the machine may reach the public internet only: a loopback source is refused by the guard
        code, records = _job_feed(tmp_path, "-a", f"registry={text}", "-a", "policy=private",
                                  env={"ILLHUB_NETWORK": "public"})
        assert srv.hits() == []
    assert code == 0 and records[0].policy == "public"
    summary = next(r for r in records if isinstance(r, SourceSummary))
    assert summary.values["documents"] == 0 and "network guard" in summary.values["errors"][0]


def test_a_job_with_a_bad_argument_says_why_and_is_not_retried(tmp_path):
    code, records = _job_feed(tmp_path, "-a", "registry=sources: [{id: x, kind: nonsense}]")
    assert code != 0
    assert len(records) == 1 and isinstance(records[0], Fail) and "'nonsense' is not a known kind" in records[0].error
    job = SimpleNamespace(jobid="j1", ids=["x"], entry={}, server=SimpleNamespace(url="http://scrapyd:6800"))
    with pytest.raises(JobFailed, match="could not start") as info:
        check_feed(tmp_path / "feed.jl", job, code_digest())
    assert info.value.retry is False


def test_a_feed_that_stops_early_or_comes_from_other_code_is_refused(tmp_path):
    job = SimpleNamespace(jobid="j2", ids=["blog"], entry={}, server=SimpleNamespace(url="http://scrapyd:6800"))
    feed = tmp_path / "f.jl"
    out = io.StringIO()
    writer = RecordWriter(out)
    writer.hello(__version__, code_digest(), ["blog"], "public")
    writer.item(Batch("blog", [Resource(url="https://ill.example.org/a")]))
    feed.write_text(out.getvalue())
    with pytest.raises(JobFailed, match="stopped before the end of its harvest"):
        check_feed(feed, job, code_digest())
    writer.end("shutdown")
    feed.write_text(out.getvalue())
    with pytest.raises(JobFailed, match=r"was stopped \(shutdown\)"):
        check_feed(feed, job, code_digest())
    with pytest.raises(JobFailed, match="ran other illhub code") as info:
        check_feed(feed, job, "0" * 64)
    assert info.value.retry is True
    feed.write_text(out.getvalue().replace('"shutdown"', '"finished"'))
    check_feed(feed, job, code_digest())  # complete, from this code: accepted
