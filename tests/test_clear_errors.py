"""Clear errors for a volunteer: a busy port before anything says "serving", an export filter
that names nothing (exit 2 with the valid names, no empty file), and --quiet output free of
Python warnings and Scrapy's log lines."""

from __future__ import annotations

import socket

from pipeline.resource import Batch, Resource
from pipeline.store import open_db, store_batch, sync_sources
from tests.conftest import run_cli


def small_catalog(path, urls: list[str]) -> None:
    db = open_db(path)
    sync_sources(db, [{"id": "curated", "name": "Curated", "kind": "manual"}])
    store_batch(db, Batch("curated", [Resource(url=u, title=f"Link {i}", topics=["copyright"])
                                      for i, u in enumerate(urls)]), now="2026-11-01T08:00:00Z")
    db.close()


def test_busy_port_is_reported_before_serving(tmp_path):
    db = tmp_path / "c.db"
    small_catalog(db, ["https://example.org/a"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--db", str(db), "--port", str(port), timeout=60)
    assert result.returncode == 1
    assert "serving" not in result.stdout
    assert result.stderr.strip() == (f"error: port {port} on 127.0.0.1 is already in use (another 'illhub serve' "
                                      f"or 'make demo', or another program): stop it, or choose another port with "
                                      f"--port {port + 1}")


def test_export_of_unknown_names_exits_2_with_the_valid_ones(tmp_path):
    db = tmp_path / "c.db"
    small_catalog(db, ["https://example.org/a"])
    out = tmp_path / "out.csv"
    result = run_cli("export", "--db", str(db), "--topic", "copyrite", "--type", "videos", "--system", "ilisaid",
                     "--out", str(out))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: --topic 'copyrite' is not known; did you mean 'copyright'? valid: basics, ")
    assert lines[1].startswith("error: --system 'ilisaid' is not known; did you mean 'illiad'? valid: illiad, ")
    assert lines[2] == ("error: --type 'videos' is not known; did you mean 'video'? valid: article, document, "
                        "documentation, event, page, video")
    assert not out.exists()
    good = run_cli("export", "--db", str(db), "--topic", "copyright", "--type", "page", "--out", str(out))
    assert good.returncode == 0 and "wrote 1 resources" in good.stderr
    assert run_cli("export", "--db", str(db), "--system", "alma", "--format", "jsonl").stdout == ""


def test_quiet_link_check_prints_no_warnings_or_scrapy_lines(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: every request is refused and retried
        s.bind(("127.0.0.1", 0))
        refused = s.getsockname()[1]
    db = tmp_path / "c.db"
    small_catalog(db, [f"http://127.0.0.1:{refused}/gone-{i}" for i in range(3)])
    result = run_cli("check-links", "--db", str(db), "--older-than", "0", "--delay", "0.01", "--timeout", "0.5",
                     "--retries", "1", "--backoff", "0.05", "--quiet", "--allow-private-network", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    assert "Warning" not in result.stdout and "[scrapy" not in result.stdout


def test_quiet_schedule_logs_no_info_warnings_or_scrapy_lines(tmp_path):
    """`illhub schedule --quiet` catching up a harvest (one source refused) and a link check
    (links refused, retried and given up): only the harvest's summary, no log lines."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT
    from tests.server import RSS, StubServer, rss

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        refused = s.getsockname()[1]
    db = tmp_path / "c.db"
    small_catalog(db, [f"http://127.0.0.1:{refused}/gone"])
    with StubServer() as srv:
        srv.add("/robots.txt", "User-agent: *\n", "text/plain")
        srv.add("/news.rss", rss([("a", "Rule of five", "Mon, 02 Nov 2026 10:00:00 GMT")]), RSS)
        registry = tmp_path / "registry.yaml"
        registry.write_text(f"sources:\n  - id: news\n    name: News\n    kind: feed\n    url: {srv.base}/news.rss\n"
                            f"  - id: gone\n    name: Gone\n    kind: feed\n    url: http://127.0.0.1:{refused}/feed\n",
                            encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ILLHUB_NETWORK": "loopback", "COLUMNS": "200"}
        proc = subprocess.Popen([sys.executable, "-m", "illhub", "schedule", "--quiet", "--registry", str(registry),
                                 "--db", str(db), "--delay", "0.01"], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 90
            done = False
            while not done and time.monotonic() < deadline:
                time.sleep(1)
                conn = __import__("sqlite3").connect(db)
                try:
                    runs = conn.execute("select count(*) from harvest_runs where finished_at is not null").fetchone()[0]
                    checks = conn.execute("select count(*) from link_check_runs where finished_at is not null").fetchone()[0]
                finally:
                    conn.close()
                done = runs >= 2 and checks >= 1
            assert done, "the scheduler did not catch up the harvest and the link check"
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
    assert " INFO " not in err and "Warning" not in err and "[scrapy" not in err and "Gave up" not in err, err
    assert "news" in out and "gone" in out  # the harvest's own summary
