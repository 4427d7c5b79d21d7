"""Running the hub unattended: `illhub status` and the front page's status line after a real
harvest with a failing source, and the systemd units of deploy/ as `illhub install-systemd`
writes them (checked by systemd-analyze where it is installed, and by their keys everywhere)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

import pytest

from illhub.deploy import DEPLOY_DIR
from tests.conftest import ROOT, run_cli
from tests.harvesting import harvest_sites
from tests.server import RSS, StubServer, rss
from tests.test_catalog_web import Client


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A catalog after one night: one feed harvested, one answering 404."""
    tmp = tmp_path_factory.mktemp("night")
    with StubServer() as srv:
        srv.add("/robots.txt", "User-agent: *\n", "text/plain")
        srv.add("/news.rss", rss([("a", "Rule of five", "Mon, 02 Nov 2026 10:00:00 GMT")]), RSS)
        registry = (f"sources:\n  - id: good-news\n    name: Good news\n    kind: feed\n    url: {srv.base}/news.rss\n"
                    f"  - id: moved-feed\n    name: Moved feed\n    kind: feed\n    url: {srv.base}/moved.rss\n")
        web = harvest_sites(tmp, {"srv": srv}, registry)
    assert web["result"].returncode == 1, web["result"].stdout  # one source failed
    return web


def status(web, *extra):
    return run_cli("status", "--db", str(web["db"]), "--registry", str(web["registry"]), *extra)


def test_status_after_a_night_with_a_failing_source(night):
    result = status(night)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("last harvest: finished ") and "(just now)" in lines[1]
    assert lines[1].endswith("1 of 2 sources failing, 0 need attention")
    assert lines[2] == "failing sources (1):"
    assert lines[3].startswith("  moved-feed: HTTP 404 from ") and "(1 failed run(s) in a row, never succeeded)" in lines[3]
    assert any(x.startswith("next scheduled run: ") and "nightly: 2 source(s)" in x for x in lines)
    data = __import__("json").loads(status(night, "--json").stdout)
    assert data["last_harvest"]["failing"] == 1 and data["failing"][0]["source_id"] == "moved-feed"


def test_status_names_stale_catalogs_and_sources_needing_attention(night, tmp_path):
    db = tmp_path / "old.db"
    shutil.copy(night["db"], db)
    conn = sqlite3.connect(db)
    conn.execute("update harvest_runs set finished_at = '2026-01-01T07:00:00Z', started_at = '2026-01-01T07:00:00Z'")
    conn.execute("update source_state set needs_attention = 1, consecutive_failures = 3 where source_id = 'moved-feed'")
    conn.commit()
    conn.close()
    result = run_cli("status", "--db", str(db), "--registry", str(night["registry"]))
    assert result.returncode == 1
    assert "STALE: no harvest for over a day and a half" in result.stdout
    assert "needing attention (1), 3 or more failures in a row: fix or disable their registry entry: moved-feed" \
        in result.stdout
    assert "days ago" in result.stdout


def test_status_without_a_catalog(tmp_path):
    result = run_cli("status", "--db", str(tmp_path / "none.db"))
    assert result.returncode == 2 and "does not exist yet: run 'illhub harvest' first" in result.stderr


def test_front_page_shows_the_last_harvest(night):
    local = Client(night["db"])
    try:
        html = local.get("/").text
    finally:
        local.close()
    line = html.split('class="hub-status hub-status-alarm" role="status">')[1].split("</p>")[0]
    text = " ".join(line.split())
    assert text.startswith("Last harvest finished ") and "(just now)" in text
    assert "<strong>1 of 2 sources failed</strong>" in text
    assert 'href="/catalog/harvest_health">Harvest health</a>' in text
    public = Client(night["db"], public=True)
    try:
        html = public.get("/").text
    finally:
        public.close()
    line = " ".join(html.split('role="status">')[1].split("</p>")[0].split())
    assert line.startswith("Updated ") and "1 of 2 sources could not be read last time" in line
    assert "harvest_health" not in line and 'href="/catalog/harvest_summary">Harvest health</a>' in line


# -- the systemd units ------------------------------------------------------------------------

def units(path) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections, each a list of (key, value) (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, (path, raw)
        current.append((key, value))
    return sections


def value(sections, section, key) -> list[str]:
    return [v for k, v in sections[section] if k == key]


def test_shipped_units_say_what_the_docs_say():
    harvest = units(DEPLOY_DIR / "illhub-harvest.service")
    timer = units(DEPLOY_DIR / "illhub-harvest.timer")
    serve = units(DEPLOY_DIR / "illhub-serve.service")
    assert value(harvest, "Service", "Type") == ["oneshot"]
    assert value(harvest, "Service", "ExecStart") == ["/srv/illhub/.venv/bin/illhub harvest --quiet --lock-wait 3600"]
    assert value(harvest, "Service", "SuccessExitStatus") == ["1"]
    assert value(harvest, "Service", "ExecStartPost") == ["/srv/illhub/.venv/bin/illhub backup",
                                                          "-/srv/illhub/.venv/bin/illhub status"]
    assert value(harvest, "Service", "TimeoutStartSec") == ["3h"]
    assert "Install" not in harvest  # started by the timer only
    assert value(timer, "Timer", "OnCalendar") == ["*-*-* 07:00:00 UTC"]  # the registry's "nightly"
    assert value(timer, "Timer", "Persistent") == ["true"]
    assert value(timer, "Timer", "Unit") == ["illhub-harvest.service"]
    assert value(timer, "Install", "WantedBy") == ["timers.target"]
    assert value(serve, "Service", "ExecStart") == [
        "/srv/illhub/.venv/bin/illhub serve --public --host 127.0.0.1 --port 8001"]
    assert value(serve, "Install", "WantedBy") == ["multi-user.target"]
    from illhub.scheduler import cron_for

    assert cron_for("nightly") == "0 7 * * *"


@pytest.mark.parametrize("mode", ["--user", "--system"])
def test_install_systemd_writes_units_for_this_checkout(tmp_path, mode):
    dest = tmp_path / "units"
    result = run_cli("install-systemd", mode, "--dest", str(dest), "--user-name", "illhub") if mode == "--system" \
        else run_cli("install-systemd", mode, "--dest", str(dest))
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in dest.iterdir())
    assert names == ["illhub-harvest.service", "illhub-harvest.timer", "illhub-serve.service"]
    assert "ran:" not in result.stdout  # --dest runs no systemctl
    harvest = units(dest / "illhub-harvest.service")
    [start] = value(harvest, "Service", "ExecStart")
    exe = start.split()[0]
    assert (ROOT / "deploy").resolve() == DEPLOY_DIR and value(harvest, "Service", "WorkingDirectory") == [str(ROOT)]
    assert subprocess.run([exe, "--version"], capture_output=True, text=True).returncode == 0
    serve = units(dest / "illhub-serve.service")
    if mode == "--system":
        assert value(harvest, "Service", "User") == ["illhub"] and value(serve, "Install", "WantedBy") == ["multi-user.target"]
        assert "journalctl -u illhub-harvest" in result.stdout
    else:
        assert value(harvest, "Service", "User") == [] and value(serve, "Install", "WantedBy") == ["default.target"]
        assert "After" not in dict(harvest["Unit"])
        assert "journalctl --user -u illhub-harvest" in result.stdout and "loginctl enable-linger" in result.stdout
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here: the units were checked by their keys only")
    verify = subprocess.run([analyze, "verify", *map(str, sorted(dest.iterdir()))], capture_output=True, text=True)
    problems = [x for x in verify.stderr.splitlines() if "illhub" in x or "Unknown" in x]
    assert verify.returncode == 0 and not problems, verify.stderr
    calendar = subprocess.run([analyze, "calendar", "*-*-* 07:00:00 UTC"], capture_output=True, text=True)
    assert calendar.returncode == 0 and "Next elapse" in calendar.stdout


def test_install_systemd_refuses_a_directory_without_registry(tmp_path):
    result = run_cli("install-systemd", "--dest", str(tmp_path / "u"), "--dir", str(tmp_path))
    assert result.returncode == 1
    assert "has no registry.yaml: run this in your checkout of illhub (or pass --dir)" in result.stderr
    assert not (tmp_path / "u").exists()
