"""How harvest failures are described and recorded: one clear line per failing source, the
others harvested anyway, exit code 1. No DNS query is ever made: host names are refused
before lookup (loopback-only mode) or answered from Scrapy's DNS cache."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from scrapy import Request
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import ConnectionRefusedError, DNSLookupError, TimeoutError
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseNeverReceived

from harvesters.failures import describe_failure
from harvesters.middlewares import GuardRefused, RobotsDeferred, RobotsForbidden
from harvesters.spider import SourceState
from tests.conftest import ROOT, run_cli


def failure_for(exc: BaseException, url: str = "https://feeds.example.org/ill.rss") -> Failure:
    f = Failure(exc)
    f.request = Request(url)
    return f


def test_robots_txt_of_a_host_that_does_not_resolve_fails_the_source():
    """Offline, robots.txt cannot be fetched because the name does not resolve: that is a
    failure of the source (exit 1), not 'try later'; a refused connection stays deferred."""
    dns = RobotsDeferred("robots.txt at https://feeds.example.org/robots.txt unreachable (DNS lookup failed)",
                         cause=DNSLookupError("no results for hostname lookup: feeds.example.org."))
    reason, _, deferred = describe_failure(failure_for(dns))
    assert reason == ("DNS lookup failed for feeds.example.org: the host name does not resolve "
                      "(offline, or a typo?)") and deferred is False
    refused = RobotsDeferred("robots.txt unreachable (connection refused)", cause=ConnectionRefusedError())
    assert describe_failure(failure_for(refused))[2] is True


def test_dns_failure_is_one_clear_line():
    reason, status, deferred = describe_failure(failure_for(DNSLookupError("no results for hostname lookup")))
    assert reason == ("DNS lookup failed for feeds.example.org: the host name does not resolve "
                      "(offline, or a typo?)")
    assert status is None and deferred is False and "\n" not in reason


@pytest.mark.parametrize("status,hint", [(404, "not found: check the URL"), (410, "gone"), (403, "forbidden"),
                                         (429, "rate-limited"), (500, None)])
def test_http_errors(status, hint):
    url = "https://feeds.example.org/ill.rss"
    response = Response(url, status=status, request=Request(url))
    reason, got, deferred = describe_failure(failure_for(HttpError(response, "Ignoring non-200 response")))
    assert reason.startswith(f"HTTP {status} from {url}") and got == status and not deferred
    if hint:
        assert hint in reason


def test_other_failures():
    url = "https://feeds.example.org/ill.rss"
    assert describe_failure(failure_for(TimeoutError()), timeout=20)[0] == (
        f"timed out fetching {url}: no complete response within the 20 s limit")
    assert describe_failure(failure_for(ConnectionRefusedError()))[0] == f"connection refused by {url}"
    assert describe_failure(failure_for(ResponseNeverReceived([])))[0] == (
        f"connection broke while reading {url} (ResponseNeverReceived)")
    reason, _, deferred = describe_failure(failure_for(RobotsDeferred("robots.txt answered HTTP 503; host deferred")))
    assert deferred and "503" in reason
    assert describe_failure(failure_for(RobotsForbidden(f"robots.txt disallows {url}")))[0] == (
        f"robots.txt disallows {url}")
    assert describe_failure(failure_for(GuardRefused("network guard: 10.0.0.1 is a private-network address")))[0] \
        == "network guard: 10.0.0.1 is a private-network address"
    size = Exception(f"Received 9999999 bytes which is larger than download max size (5242880) in request <GET {url}>.")
    assert describe_failure(failure_for(size))[0] == f"response from {url} is larger than the size cap; not harvested"


def test_source_status():
    s = SourceState(source=None, run_id=1)
    assert s.status == "failed"  # nothing fetched at all
    s.documents = 1
    assert s.status == "ok"
    s.warnings.append("malformed feed")
    assert s.status == "warning"
    d = SourceState(source=None, run_id=2, deferred="robots.txt answered 503")
    assert d.status == "deferred"


def test_real_registry_offline_fails_source_by_source(tmp_path):
    """`make run` on a machine without internet: every network source fails with a one-line
    reason, the curated sources are stored, the exit code is 1 and nothing crashes.
    (Loopback-only mode refuses the real hosts before any DNS query.)"""
    db = tmp_path / "illhub.db"
    result = run_cli("harvest", "--db", str(db), "--delay", "0.01", "--quiet", cwd=ROOT)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "CRITICAL" not in result.stderr
    conn = sqlite3.connect(db)
    runs = {r[0]: (r[1], r[2]) for r in conn.execute("select source_id, status, error from harvest_runs")}
    from illhub.registry import load_registry

    registry = load_registry(ROOT / "registry.yaml")
    assert set(runs) == {s.id for s in registry.enabled()}
    for source in registry.enabled():
        status, error = runs[source.id]
        if source.uses_network:
            assert status == "failed", (source.id, status)
            assert error.startswith("network guard: ") and "is not a loopback host" in error and "\n" not in error
            assert source.id in result.stdout
        else:
            assert status == "ok" and error is None
    assert conn.execute("select count(*) from resources").fetchone()[0] > 0


REBIND = textwrap.dedent("""
    import ipaddress, socket, sys
    def numeric_only(real):
        def lookup(host, *args, **kwargs):
            ipaddress.ip_address(host)  # a host name raises: no DNS query may be made
            return real(host, *args, **kwargs)
        return lookup
    socket.getaddrinfo = numeric_only(socket.getaddrinfo)
    socket.gethostbyname = numeric_only(socket.gethostbyname)
    from scrapy.resolver import dnscache
    from harvesters.guard import Policy
    from illhub.demo import DemoServer
    from illhub.harvest import run_harvest
    from illhub.registry import parse_registry
    with DemoServer() as server:
        port = server.base.rsplit(":", 1)[1]
        # the name "resolves" (from the cache) to loopback, as a DNS-rebinding host would
        dnscache["feeds.rebind.test"] = "127.0.0.1"
        registry = parse_registry({"sources": [
            {"id": "rebind", "name": "Rebinding", "kind": "feed",
             "url": f"http://feeds.rebind.test:{port}/feeds/northwind-ill-blog.rss"},
            {"id": "curated", "name": "Curated", "kind": "manual",
             "entries": [{"url": "https://example.org/a", "title": "A"}]},
        ]}, "test")
        result = run_harvest(registry, sys.argv[1], policy=Policy.PUBLIC, delay=0.01)
        for s in result.states:
            print(s.source.id, s.status, "|".join(s.errors), sep="\\t")
        print("hits", len(server.hits()))
""")


def test_name_resolving_to_loopback_is_refused_with_the_guard_reason(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ILLHUB_NETWORK", None)
    proc = subprocess.run([sys.executable, "-c", REBIND, str(tmp_path / "x.db")], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split("\t", 1) for line in proc.stdout.splitlines() if "\t" in line)
    assert lines["rebind"] == ("failed\tnetwork guard: feeds.rebind.test resolves to 127.0.0.1 is a loopback "
                               "address (use --allow-private-network to harvest hosts on your own network)")
    assert lines["curated"].startswith("ok")
    assert "hits 0" in proc.stdout  # nothing reached the server, not even robots.txt
    assert "CRITICAL" not in proc.stderr and "Traceback" not in proc.stderr


SIZE_CAP = textwrap.dedent("""
    import sys
    from harvesters.guard import Policy
    from illhub.demo import DemoServer
    from illhub.harvest import run_harvest
    from illhub.registry import parse_registry
    with DemoServer() as server:
        registry = parse_registry({"sources": [
            {"id": "big", "name": "Big", "kind": "feed", "url": server.base + "/feeds/northwind-ill-blog.rss"},
        ]}, "test")
        result = run_harvest(registry, sys.argv[1], policy=Policy.LOOPBACK, delay=0.01,
                             settings={"DOWNLOAD_MAXSIZE": 1000, "DOWNLOAD_WARNSIZE": 0})
        [s] = result.states
        print(s.status, "|".join(s.errors), sep="\\t")
""")


def test_size_cap(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SIZE_CAP, str(tmp_path / "x.db")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    status, error = proc.stdout.strip().splitlines()[-1].split("\t")
    assert status == "failed"
    assert error.startswith("response from http://127.0.0.1:") and "larger than the size cap" in error


OFFLINE = textwrap.dedent("""
    import ipaddress, socket, sys
    def numeric_only(real):
        def lookup(host, *args, **kwargs):
            ipaddress.ip_address(host)  # a host name raises: no DNS query may be made
            return real(host, *args, **kwargs)
        return lookup
    socket.getaddrinfo = numeric_only(socket.getaddrinfo)
    socket.gethostbyname = numeric_only(socket.gethostbyname)
    from twisted.internet import defer
    from twisted.internet.error import DNSLookupError
    from harvesters import resolver
    def offline(self, name, timeout=()):  # what a machine without a network answers
        return defer.fail(DNSLookupError(f"address {name!r} not found: [Errno -3] Temporary failure in name resolution"))
    resolver.GuardedResolver.getHostByName = offline
    from illhub.cli import main
    sys.argv = ["illhub", "harvest", "--db", sys.argv[1], "--delay", "0.01", "--quiet"]
    main()
""")


def test_real_registry_without_a_network_fails_source_by_source(tmp_path):
    """`make run` offline with the default (public) policy: every network source fails with
    'DNS lookup failed for HOST', the curated ones are stored, exit code 1, a quiet stderr.
    Every lookup is answered 'not found' in the process: no DNS query is made."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250"}
    env.pop("ILLHUB_NETWORK", None)
    db = tmp_path / "illhub.db"
    proc = subprocess.run([sys.executable, "-c", OFFLINE, str(db)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip() == "", proc.stderr  # no tracebacks, no per-request Scrapy log lines
    from illhub.registry import load_registry

    registry = load_registry(ROOT / "registry.yaml")
    conn = sqlite3.connect(db)
    runs = {r[0]: (r[1], r[2]) for r in conn.execute("select source_id, status, error from harvest_runs")}
    for source in registry.enabled():
        status, error = runs[source.id]
        if source.uses_network:
            assert status == "failed", (source.id, status, error)
            assert error.startswith("DNS lookup failed for ") and error.endswith("(offline, or a typo?)"), error
        else:
            assert status == "ok", (source.id, error)
    assert "failed" in proc.stdout and "DNS lookup failed for" in proc.stdout


def test_a_crawl_that_cannot_start_says_so_and_exits_1(tmp_path):
    """A broken setting (here a middleware that does not exist) stops the crawl before any
    request: every source is 'interrupted', the harvest says why in one line and exits 1."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    reg = tmp_path / "registry.yaml"
    reg.write_text("sources:\n  - id: one\n    name: One\n    kind: feed\n    url: http://127.0.0.1:9/feed\n")
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from illhub.harvest import run_harvest\n"
        "from illhub.registry import load_registry\n"
        "from harvesters.guard import Policy\n"
        "if __name__ == '__main__':\n"
        "    r = run_harvest(load_registry(sys.argv[1]), Path(sys.argv[2]), policy=Policy.LOOPBACK,\n"
        "                    settings={'DOWNLOADER_MIDDLEWARES': {'no_such_module.Middleware': 10}})\n"
        "    print([s.status for s in r.states], r.exit_code)\n"
        "    print(r.error)\n"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(script), str(reg), str(tmp_path / "c.db")], capture_output=True,
                         text=True, timeout=120, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "['interrupted'] 1", out.stderr[-2000:]
    assert lines[1].startswith("the crawl could not run: ModuleNotFoundError") and "no_such_module" in lines[1]
