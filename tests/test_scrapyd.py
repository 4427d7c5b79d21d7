"""Harvesting through real Scrapyd servers (``illhub harvest --scrapyd``), against the demo web
spread over three loopback hosts: the catalog equals a single-machine harvest of the same
registry, a Scrapyd that dies mid-run costs nothing but a retry, and a job that fails twice
leaves its sources failed with the reason. Skipped, with the reason, where Scrapyd cannot
start (it comes with the ``[distributed]`` extra, which ``make install`` installs)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from harvesters.guard import Policy
from illhub.demo import DEMO_REGISTRY, DemoServer
from illhub.distributed.dispatch import DispatchOptions, connect, dispatch_harvest
from illhub.distributed.egg import build_egg, code_digest
from illhub.distributed.local import LocalScrapyd, ScrapydUnavailable
from illhub.distributed.records import read_records
from illhub.distributed.scrapyd import Scrapyd, ScrapydError
from illhub.harvest import host_key
from illhub.registry import load_registry
from tests.conftest import ROOT, run_cli

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
CONTENT = ("id, url, title, description, content_type, organization, source_id, published, updated, topics, "
           "systems, extra")
RUNS = ("source_id, status, items_seen, http_status, documents, documents_unchanged, requests, bytes, error, "
        "warning")


def start_scrapyd(directory: Path, **options) -> LocalScrapyd:
    try:
        return LocalScrapyd(directory, **options).start()
    except ScrapydUnavailable as e:
        pytest.skip(f"Scrapyd cannot start here: {e}")


@pytest.fixture(scope="module")
def demo_web(tmp_path_factory):
    """The demo web served from three loopback hosts, and a registry with its sources spread
    over them (source i on host i mod 3), so that the harvest splits into several jobs."""
    servers = [DemoServer(host) for host in HOSTS]
    for s in servers:
        s.__enter__()
    data = YAML(typ="safe").load(DEMO_REGISTRY.read_text(encoding="utf-8"))
    for i, source in enumerate(data["sources"]):
        base = servers[i % len(servers)].base
        data["sources"][i] = json.loads(json.dumps(source).replace("{base}", base))
    path = tmp_path_factory.mktemp("web") / "registry.yaml"
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    yield path
    for s in servers:
        s.__exit__(None, None, None)


@pytest.fixture(scope="module")
def scrapyd_pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("scrapyd")
    first = start_scrapyd(base / "one")
    try:
        second = start_scrapyd(base / "two")
    except BaseException:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture(scope="module")
def local_catalog(demo_web, tmp_path_factory):
    """A single-machine harvest of the registry, twice (the second one conditional)."""
    db = tmp_path_factory.mktemp("local") / "local.db"
    for code in (1, 0):  # each in its own process, as Scrapy's reactor runs once per process
        result = run_cli("harvest", "--registry", str(demo_web), "--db", str(db), "--delay", "0.02", "--quiet")
        # demo-moved-feed fails on purpose (a 404), then is skipped while it backs off
        assert result.returncode == code, result.stdout + result.stderr
    return db


def catalog(db: Path, run: int | None = None) -> dict[str, list]:
    """What must not depend on where the crawling ran: resources, their sources, and the
    harvest runs (all, or those of the run-th harvest) without their times and ids."""
    conn = sqlite3.connect(db)
    groups = [g for (g,) in conn.execute("SELECT run_group FROM harvest_runs GROUP BY run_group ORDER BY min(id)")]
    where = f"WHERE run_group = '{groups[run]}'" if run is not None else "WHERE 1"
    out = {
        "resources": conn.execute(f"SELECT {CONTENT} FROM resources ORDER BY id").fetchall(),
        "attribution": conn.execute("SELECT resource_id, source_id, missed_runs FROM resource_sources "
                                    "ORDER BY 1, 2").fetchall(),
        "runs": [tuple(re.sub(r"\d{4}-\d\d-\d\dT[\d:]+Z", "(time)", v) if isinstance(v, str) else v for v in row)
                 for row in conn.execute(f"SELECT {RUNS} FROM harvest_runs {where} ORDER BY source_id, id")],
        # A resource listed by two sources is new for the one stored first and updated (or
        # unchanged) for the other: which one that is depends on which download, or job, ended
        # first, on one machine too. So new and updated are compared for the sources that share
        # no resource, and the new resources are counted over the whole harvest.
        "new": conn.execute(f"SELECT source_id, items_new, items_updated FROM harvest_runs {where} AND source_id NOT IN "
                            "(SELECT source_id FROM resource_sources WHERE resource_id IN (SELECT resource_id FROM "
                            "resource_sources GROUP BY resource_id HAVING count(*) > 1)) ORDER BY source_id, id"
                            ).fetchall(),
        "total_new": conn.execute(f"SELECT sum(items_new) FROM harvest_runs {where}").fetchone()[0],
        "fetch_cache": conn.execute("SELECT source_id, url, etag, last_modified, body_sha256, fingerprint, follow, "
                                    "http_status, bytes FROM fetch_cache ORDER BY 1, 2").fetchall(),
        "web_pages": conn.execute("SELECT source_id, url, resource_id, lastmod, http_status FROM web_pages "
                                  "ORDER BY 1, 2").fetchall(),
    }
    conn.close()
    return out


def test_scrapy_project_lists_the_harvest_spider():
    result = subprocess.run([sys.executable, "-m", "scrapy", "list"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["harvest"]


def test_dispatched_harvest_equals_a_local_one(demo_web, scrapyd_pair, local_catalog, tmp_path):
    """Two harvests through two Scrapyd servers (the CLI, as a user runs it): the same
    resources, attributions, fetch cache and run rows as two harvests on one machine, the
    second one conditional (documents unchanged, nothing parsed again)."""
    urls = ",".join(s.url for s in scrapyd_pair)
    db = tmp_path / "dispatched.db"
    for code, how in ((1, ["--scrapyd", urls]), (0, [])):  # the second time, the servers come from the environment
        result = run_cli("harvest", *how, "--jobs", "3", "--registry", str(demo_web), "--db", str(db),
                         "--delay", "0.02", "--quiet", env={"ILLHUB_SCRAPYD": urls})
        # demo-moved-feed fails on purpose, then backs off, here as on one machine
        assert result.returncode == code, result.stdout + result.stderr
        assert "demo-moved-feed" in result.stdout and "on 2 Scrapyd server(s)" in result.stdout, result.stdout
    local, dispatched = catalog(local_catalog), catalog(db)
    assert len(dispatched["resources"]) > 40
    for part in ("resources", "attribution", "fetch_cache", "web_pages"):
        assert dispatched[part] == local[part], part
    for run in (0, 1):
        assert catalog(db, run)["runs"] == catalog(local_catalog, run)["runs"]
        assert catalog(db, run)["new"] == catalog(local_catalog, run)["new"]
        assert catalog(db, run)["total_new"] == catalog(local_catalog, run)["total_new"]
    second = catalog(db, 1)["runs"]
    assert sum(r[5] for r in second) > 10  # documents_unchanged: the second harvest was conditional
    assert catalog(db, 1)["total_new"] == 0
    # every Scrapyd ran jobs, and each host's sources were in one job only
    logs = {s.url: list((s.dir / "items" / "illhub" / "harvest").glob("*.jl")) for s in scrapyd_pair}
    assert all(logs.values()), logs
    hosts: dict[str, set[str]] = {}
    for feeds in logs.values():
        for feed in feeds:
            with feed.open(encoding="utf-8") as f:
                hello = next(read_records(f))
            for sid in hello.sources:
                hosts.setdefault(host_key(load_registry(demo_web).get(sid)), set()).add(feed.stem.rsplit("-", 2)[1])
    assert len(hosts) >= 3 and all(len(jobs) == 1 for jobs in hosts.values()), hosts


class Watch:
    """A progress display that kills a Scrapyd as soon as one of its jobs is running."""

    def __init__(self, victim: LocalScrapyd):
        self.victim = victim
        self.killed = False
        self.events: list[tuple[int, str, str | None]] = []

    def start(self, total):
        self.total = total

    def advance(self, state):
        pass

    def stop(self):
        pass

    def job(self, job):
        self.events.append((job.number, job.status, job.server.url if job.server else None))
        if not self.killed and job.status == "running" and job.server.url == self.victim.url:
            self.victim.kill()
            self.killed = True


def test_a_scrapyd_killed_mid_run_loses_nothing(demo_web, scrapyd_pair, local_catalog, tmp_path):
    survivor = scrapyd_pair[1]
    victim = start_scrapyd(tmp_path / "victim")
    try:
        servers, problems = connect([victim.url, survivor.url])
        assert not problems and len(servers) == 2
        watch = Watch(victim)
        # a polite delay, so that the jobs are still running when the victim is killed
        result = dispatch_harvest(load_registry(demo_web), tmp_path / "d.db", servers, policy=Policy.LOOPBACK,
                                  delay=0.15, progress=watch, options=DispatchOptions(poll=0.2, gone_after=1.0))
    finally:
        victim.stop()
    assert watch.killed
    gone = [s for s in result.servers if not s.alive]
    assert [s.url for s in gone] == [victim.url] and "does not answer" in gone[0].problem
    retried = [j for j in result.jobs if j.attempt]
    assert retried and all(j.status == "stored" and j.server.url == survivor.url for j in retried)
    assert all(j.status == "stored" for j in result.jobs)
    assert [s.source.id for s in result.failed] == ["demo-moved-feed"]
    local, dispatched = catalog(local_catalog), catalog(tmp_path / "d.db")
    assert dispatched["resources"] == local["resources"] and dispatched["attribution"] == local["attribution"]
    assert dispatched["runs"] == catalog(local_catalog, 0)["runs"]
    assert dispatched["new"] == catalog(local_catalog, 0)["new"] and len(dispatched["new"]) > 10
    assert dispatched["total_new"] == catalog(local_catalog, 0)["total_new"]


def test_a_job_failing_twice_fails_its_sources_with_the_reason(demo_web, scrapyd_pair, tmp_path):
    """Both servers run another build of illhub (an egg of changed code, deployed with
    addversion.json): each job is tried twice, then its sources are recorded failed, with why;
    nothing of what the jobs harvested is stored."""
    other = tmp_path / "other"
    for name in ("illhub", "harvesters", "pipeline", "catalog"):
        shutil.copytree(ROOT / name, other / name, ignore=shutil.ignore_patterns("__pycache__"))
    (other / "data").mkdir()
    shutil.copy(ROOT / "data" / "taxonomy.yaml", other / "data" / "taxonomy.yaml")
    with (other / "pipeline" / "version.py").open("a", encoding="utf-8") as f:
        f.write("# another build\n")
    version = "zz-other-build"  # sorts after this code's version: Scrapyd's latest
    for server in scrapyd_pair:
        Scrapyd(server.url).add_version("illhub", version, build_egg(version, other))
    try:
        servers, problems = connect([s.url for s in scrapyd_pair], deploy=False)
        assert not problems
        registry = load_registry(demo_web)
        ids = ["demo-northwind-blog"]
        result = dispatch_harvest(registry, tmp_path / "f.db", servers, source_ids=ids, policy=Policy.LOOPBACK,
                                  delay=0.02, options=DispatchOptions(poll=0.2))
    finally:
        for server in scrapyd_pair:
            Scrapyd(server.url)._post("delversion.json", [("project", "illhub"), ("version", version)])
    assert {s.source.id for s in result.failed} == set(ids)
    assert len(result.jobs) == 1 and result.jobs[0].attempt == 1 and result.jobs[0].status == "failed"
    assert {url for url in result.jobs[0].tried} == {s.url for s in scrapyd_pair}  # once on each server
    conn = sqlite3.connect(tmp_path / "f.db")
    errors = [e for (e,) in conn.execute("SELECT error FROM harvest_runs WHERE status = 'failed'")]
    # each job was tried on both servers, and the error says what happened on each
    assert len(errors) == 1 and all(e.count("ran other illhub code") == 2 and "first attempt" in e
                                    and all(s.url in e for s in scrapyd_pair) for e in errors), errors
    assert conn.execute("SELECT count(*) FROM resources").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM fetch_cache").fetchone()[0] == 0


def test_no_scrapyd_answering_is_a_clear_error_and_records_nothing(demo_web, tmp_path):
    from illhub.distributed.local import free_port

    db = tmp_path / "x.db"
    result = run_cli("harvest", "--scrapyd", f"http://127.0.0.1:{free_port()}", "--registry", str(demo_web),
                     "--db", str(db), "--quiet")
    assert result.returncode == 1
    assert "does not answer" in result.stderr and "no Scrapyd server can take the harvest" in result.stderr
    assert not db.exists()


def test_scrapyd_deploy_builds_an_egg_that_scrapyd_runs(demo_web, scrapyd_pair, tmp_path):
    """The project deploys with scrapyd-deploy (its setup.py egg, from a copy of the tree),
    and a job scheduled by hand with schedule.json, its registry and sources as spider
    arguments, writes the harvest of those sources to its item feed."""
    server = scrapyd_pair[0]
    copy = tmp_path / "project"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if name.split("/")[0] in ("illhub", "harvesters", "pipeline", "catalog") or name in (
                "pyproject.toml", "setup.py", "scrapy.cfg", "README.md", "data/taxonomy.yaml"):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, copy / name)
    cfg = (copy / "scrapy.cfg").read_text().replace("http://localhost:6800/", server.url + "/")
    (copy / "scrapy.cfg").write_text(cfg.replace("project = illhub", "project = illhub-by-hand"))
    deploy = shutil.which("scrapyd-deploy", path=str(Path(sys.executable).parent))
    if not deploy:
        pytest.skip("scrapyd-deploy is not installed (scrapyd-client, in the [distributed] extra)")
    result = subprocess.run([deploy, "--version", "1"], cwd=copy, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0 and '"status": "ok"' in result.stdout, result.stdout + result.stderr
    api = Scrapyd(server.url)
    assert api.list_spiders("illhub-by-hand") == ["harvest"]
    text = demo_web.read_text(encoding="utf-8")
    wanted = "demo-northwind-blog,demo-lakeside-news"
    job = api.schedule("illhub-by-hand", "harvest", jobid="by-hand",
                       args={"registry": text, "sources": wanted, "delay": "0.02"})
    deadline = time.monotonic() + 90
    while not any(j["id"] == job for j in api.list_jobs("illhub-by-hand")["finished"]):
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.2)
    feed = server.dir / "items" / "illhub-by-hand" / "harvest" / "by-hand.jl"
    with feed.open(encoding="utf-8") as f:
        records = list(read_records(f))
    hello, end = records[0], records[-1]
    assert hello.sources == wanted.split(",") and hello.code == code_digest() and end.reason == "finished"
    batches = [r for r in records if type(r).__name__ == "Batch"]
    # normalized and classified in the job, ready to be written
    assert {b.source_id for b in batches} == set(wanted.split(",")) and sum(len(b.prepared) for b in batches) > 5
    summaries = {r.source_id: r.values for r in records if type(r).__name__ == "SourceSummary"}
    assert all(v["documents"] == 1 and v["errors"] == [] for v in summaries.values())


def test_scrapyd_behind_a_password_and_one_without_item_feeds(demo_web, tmp_path):
    """A Scrapyd with a user name and password (given in its URL, as HTTP basic
    authentication), and one that keeps no item feeds: the second is refused up front, with
    what to change, and the harvest goes to the first."""
    guarded = start_scrapyd(tmp_path / "guarded", config={"username": "illhub", "password": "s3cret"})
    bare = start_scrapyd(tmp_path / "bare", config={"items_dir": ""})
    try:
        wrong = guarded.url.replace("http://", "http://illhub:wrong@")
        right = guarded.url.replace("http://", "http://illhub:s3cret@")
        servers, problems = connect([wrong, bare.url, right])
        assert [s.url for s in servers] == [guarded.url]  # the password is not kept in the URL shown
        assert "HTTP 401" in problems[0] and "set items_dir = items in its scrapyd.conf" in problems[1]
        result = dispatch_harvest(load_registry(demo_web), tmp_path / "g.db", servers, policy=Policy.LOOPBACK,
                                  source_ids=["demo-northwind-blog"], delay=0.02, options=DispatchOptions(poll=0.2))
    finally:
        guarded.stop()
        bare.stop()
    assert [(s.source.id, s.status, s.seen) for s in result.states] == [("demo-northwind-blog", "ok", 6)]


def test_ctrl_c_cancels_the_jobs_and_records_their_sources_interrupted(demo_web, scrapyd_pair, tmp_path):
    """SIGINT to a dispatching harvest (Ctrl-C): its running job is cancelled on the server and
    its sources are recorded interrupted, as a local harvest stopped by Ctrl-C records them."""
    server = scrapyd_pair[0]
    db = tmp_path / "c.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ILLHUB_NETWORK": "loopback"}
    # a slow, polite harvest of one crawled help site: the job is still running when it is stopped
    # (30 s between its pages: under load, 2 s let the job finish before the Ctrl-C reached it)
    proc = subprocess.Popen([sys.executable, "-m", "illhub", "harvest", "--scrapyd", server.url, "--registry",
                             str(demo_web), "--db", str(db), "--source", "demo-lakeside-help", "--delay", "30",
                             "--quiet"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    api = Scrapyd(server.url)
    deadline = time.monotonic() + 60
    running: list[dict] = []
    while not running:
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
        try:
            running = [j for j in api.list_jobs("illhub")["running"] if j["id"].endswith("-1-1")]
        except ScrapydError:  # the dispatcher has not deployed the project yet
            continue
    time.sleep(1.5)  # the job's Scrapy has begun crawling: a graceful stop would wait out a delay
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err  # interrupted is not failed
    # cancelled at once: an INT then a TERM are Scrapy's second Ctrl-C, which does not wait out the 30 s
    # delay of the page it has queued (one cancel alone, a graceful stop, waited it out: over 20 s
    # on a loaded CI machine with a 10 s delay)
    deadline = time.monotonic() + 15
    while running[0]["id"] not in {j["id"] for j in api.list_jobs("illhub")["finished"]}:
        assert time.monotonic() < deadline, "the job was not cancelled"
        time.sleep(0.2)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT source_id, status FROM harvest_runs").fetchall() == [("demo-lakeside-help",
                                                                                        "interrupted")]
