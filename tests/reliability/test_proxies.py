"""Proxies and the network guard (issue 21, item 2), in real harvests.

A proxy resolves host names itself, where the guard cannot see the address: so a harvest
never uses the proxy variables of its environment (``http_proxy`` …), only a proxy named
with ``--proxy`` (or ``ILLHUB_PROXY``), and checks that proxy like any host. Two loopback
servers play the site and the proxy (a forward proxy is asked ``GET http://site/path``; the
test server routes on the path and records the Host header, so it answers as a proxy would).
The unit cases (a proxy named by a host name, a site that does not resolve here) are in
tests/test_guard.py; the case that would need a private address opens no socket.
"""

from __future__ import annotations

import os
import socket

import pytest

from tests.reliability.helpers import feed_source, harvest, items_for, rss, runs, snapshot, write_registry
from tests.server import StubServer, ok

PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


@pytest.fixture(scope="module")
def site():
    with StubServer("127.0.0.61") as s:
        yield s


@pytest.fixture(scope="module")
def proxy():
    with StubServer("127.0.0.62") as s:
        yield s


def serve_both(site, proxy):
    site.clear()
    proxy.clear()
    site.route("/feed.xml", ok(rss(items_for("direct", 2, base="http://127.0.0.61:9/"))))
    proxy.route("/feed.xml", ok(rss(items_for("proxied", 3, base="http://127.0.0.62:9/"))))


def test_proxy_variables_of_the_environment_are_never_used(site, proxy, tmp_path):
    serve_both(site, proxy)
    registry = write_registry(tmp_path / "registry.yaml", [feed_source("direct", site.url("/feed.xml"))])
    db = tmp_path / "catalog.db"
    env = {name: proxy.base for name in PROXY_VARIABLES} | {"no_proxy": None, "NO_PROXY": None}
    result = harvest(registry, db, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert proxy.hits() == []  # Scrapy alone would have sent both requests there
    assert sorted(site.paths()) == ["/feed.xml", "/robots.txt"]
    assert {url for _, url, *_ in snapshot(db)} == {f"http://127.0.0.61:9/direct/post-{i}" for i in range(2)}


def test_a_named_proxy_is_used_for_every_request(site, proxy, tmp_path):
    serve_both(site, proxy)
    registry = write_registry(tmp_path / "registry.yaml", [feed_source("direct", site.url("/feed.xml"))])
    db = tmp_path / "catalog.db"
    result = harvest(registry, db, "--proxy", proxy.base, env={name: None for name in PROXY_VARIABLES})
    assert result.returncode == 0, result.stdout + result.stderr
    assert site.hits() == []
    assert sorted(h.path for h in proxy.hits()) == ["/feed.xml", "/robots.txt"]
    assert {h.host for h in proxy.hits()} == {"127.0.0.61"}  # asked for the site, through the proxy
    assert {url for _, url, *_ in snapshot(db)} == {f"http://127.0.0.62:9/proxied/post-{i}" for i in range(3)}


def test_a_proxy_on_a_private_address_is_refused_under_the_public_policy(tmp_path):
    """Refused before anything is sent or resolved: neither the proxy nor the site's name is
    looked up, and the message names the proxy (not a 'DNS lookup failed' for it)."""
    registry = write_registry(tmp_path / "registry.yaml",
                              [feed_source("site", "https://ill.example.org/feed.xml")])
    db = tmp_path / "catalog.db"
    result = harvest(registry, db, "--proxy", "http://10.1.2.3:3128", env={"ILLHUB_NETWORK": None})
    assert result.returncode == 1
    error = runs(db)["site"]["error"]
    assert error.startswith("network guard: proxy 10.1.2.3 is a private-network address "
                            "(use --allow-private-network"), error
    assert "DNS" not in error


@pytest.mark.parametrize("value,why", [
    ("10.1.2.3:3128", "is not a proxy URL"), ("ftp://10.1.2.3:21", "is not a proxy URL"),
    ("http://10.1.2.3", "names no port"), ("http://10.1.2.3:3128/path", "has no path or query"),
    ("http://10.1.2.3:99999", "is not a proxy URL"),
])
def test_a_bad_proxy_url_is_a_usage_error(tmp_path, value, why):
    registry = write_registry(tmp_path / "registry.yaml", [feed_source("site", "https://ill.example.org/feed.xml")])
    result = harvest(registry, tmp_path / "catalog.db", "--proxy", value)
    assert result.returncode == 2 and why in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "catalog.db").exists()


def test_schedule_passes_the_proxy_on_through_the_environment(tmp_path, monkeypatch):
    """Each harvest and link check of ``illhub schedule`` gets the proxy through ILLHUB_PROXY,
    never on its command line (which the scheduler logs, and anyone on the machine can read)."""
    from click.testing import CliRunner

    import illhub.scheduler
    from illhub.cli import cli

    seen = {}

    class Recording(illhub.scheduler.HarvestScheduler):
        def start(self) -> None:  # record what a due harvest would run, instead of running
            seen["command"] = self.runner.command(["ill-news"])
            seen["env"] = dict(os.environ) if self.runner.env is None else self.runner.env

    monkeypatch.setattr(illhub.scheduler, "HarvestScheduler", Recording)
    monkeypatch.setenv("ILLHUB_PROXY", "")  # restored after the test: the command sets it
    monkeypatch.delenv("ILLHUB_PROXY")
    registry = write_registry(tmp_path / "registry.yaml", [feed_source("ill-news", "http://127.0.0.1:9/feed.xml")])
    proxy = "http://illhub:s3cret@127.0.0.1:3128"
    result = CliRunner().invoke(cli, ["schedule", "--registry", str(registry), "--db", str(tmp_path / "c.db"),
                                      "--proxy", proxy])
    assert result.exit_code == 0, result.output
    assert seen["env"]["ILLHUB_PROXY"] == proxy
    assert not any("s3cret" in arg or "--proxy" in arg for arg in seen["command"])


def test_a_proxy_that_is_down_fails_every_source_and_says_so(site, tmp_path):
    """Not 'robots.txt unreachable … deferred' for every host, exit 0: the proxy is named."""
    with socket.socket() as s:
        s.bind(("127.0.0.63", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    serve_both(site, site)
    registry = write_registry(tmp_path / "registry.yaml", [feed_source("direct", site.url("/feed.xml"))])
    db = tmp_path / "catalog.db"
    result = harvest(registry, db, "--proxy", f"http://illhub:s3cret@127.0.0.63:{port}")
    assert result.returncode == 1, result.stdout + result.stderr
    run = runs(db)["direct"]
    assert run["status"] == "failed"
    assert run["error"] == f"connection refused by the proxy 127.0.0.63:{port}: is it running? (check --proxy or ILLHUB_PROXY)"
    assert "s3cret" not in result.stdout + result.stderr
    assert site.hits() == []
