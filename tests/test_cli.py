"""The command line: help, export with filters, and `illhub serve` as a real process."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from click.testing import CliRunner

from illhub.cli import cli
from pipeline.resource import Batch, Resource
from pipeline.store import open_db, store_batch, sync_sources
from tests.conftest import ROOT, run_cli


def test_python_m_illhub_help():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("validate", "harvest", "serve", "export", "demo"):
        assert command in result.stdout
    assert run_cli("--version").stdout.strip().startswith("illhub, version ")
    result = run_cli("harvest", "--help")
    assert result.returncode == 0 and "--source ID" in result.stdout and "--allow-private-network" in result.stdout


def test_usage_error_exits_2():
    result = run_cli("harvest", "--no-such-option")
    assert result.returncode == 2 and "No such option" in result.stderr


@pytest.fixture
def catalog(tmp_path):
    db_path = tmp_path / "catalog.db"
    db = open_db(db_path)
    sync_sources(db, [{"id": "blog", "name": "Blog", "kind": "feed"}, {"id": "tube", "name": "Tube", "kind": "youtube"},
                      {"id": "curated", "name": "Curated", "kind": "manual"}])
    store_batch(db, Batch("blog", [
        Resource(url="https://blog.example.org/rule-of-five", title="The rule of five", content_type="article",
                 published="2026-10-01"),
        Resource(url="https://blog.example.org/=cmd", title="=HYPERLINK(\"http://evil\")", content_type="article",
                 published="2026-10-02"),
    ]), source_topics=["copyright"], now="2026-10-05T00:00:00Z")
    store_batch(db, Batch("tube", [
        Resource(url="https://www.youtube.com/watch?v=abc", title="Lending 101 video", content_type="video",
                 published="2026-11-20"),
    ]), now="2026-11-21T00:00:00Z")
    store_batch(db, Batch("curated", [
        Resource(url="https://blog.example.org/rule-of-five", title="dup", content_type="page"),
        Resource(url="https://docs.example.org/manual", title="Vendor manual", content_type="documentation"),
    ]), now="2026-11-22T00:00:00Z")
    db.close()
    return db_path


def export(catalog, *args: str) -> str:
    result = CliRunner().invoke(cli, ["export", "--db", str(catalog), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def urls(records) -> set[str]:
    return {r["url"] for r in records}


def test_export_formats(catalog):
    rows = list(csv.DictReader(io.StringIO(export(catalog, "--format", "csv"))))
    assert len(rows) == 4 and {"id", "url", "title", "topics", "first_seen"} <= set(rows[0])
    # a formula-looking cell is made inert for spreadsheets
    assert any(r["title"] == "'=HYPERLINK(\"http://evil\")" for r in rows)
    data = json.loads(export(catalog, "--format", "json"))
    assert len(data) == 4 and isinstance(data[0]["topics"], list)
    lines = export(catalog, "--format", "jsonl").splitlines()
    assert len(lines) == 4 and all(json.loads(line)["url"] for line in lines)
    assert [json.loads(line)["url"] for line in lines] == [r["url"] for r in data]  # same order: newest first


def test_export_filters(catalog):
    def j(*args):
        return urls(json.loads(export(catalog, "--format", "json", *args)))

    assert j("--topic", "copyright") == {"https://blog.example.org/rule-of-five", "https://blog.example.org/=cmd"}
    # a resource is found through every source that lists it
    assert j("--source", "curated") == {"https://blog.example.org/rule-of-five", "https://docs.example.org/manual"}
    assert j("--source", "tube", "--source", "curated") == {
        "https://www.youtube.com/watch?v=abc", "https://blog.example.org/rule-of-five", "https://docs.example.org/manual"}
    assert j("--type", "video") == {"https://www.youtube.com/watch?v=abc"}
    assert j("--type", "video", "--type", "documentation") == {"https://www.youtube.com/watch?v=abc",
                                                               "https://docs.example.org/manual"}
    assert j("--since", "2026-11-21") == {"https://www.youtube.com/watch?v=abc", "https://docs.example.org/manual"}
    assert j("--since", "2026-11-21", "--type", "video", "--topic", "copyright") == set()
    # a topic of the taxonomy that no resource has: an empty export; a topic that does not exist
    # is an error naming the valid ones (issue 18: it used to be an empty file too)
    assert json.loads(export(catalog, "--format", "json", "--topic", "careers")) == []
    unknown = run_cli("export", "--db", str(catalog), "--format", "json", "--topic", "nothing-here")
    assert unknown.returncode == 2 and unknown.stdout == "" and "valid: basics, " in unknown.stderr


def test_export_to_a_file_and_errors(catalog, tmp_path):
    out = tmp_path / "out.csv"
    result = run_cli("export", "--db", str(catalog), "--format", "csv", "--out", str(out), "--type", "article")
    assert result.returncode == 0, result.stderr
    assert "wrote 2 resources to" in result.stderr
    assert len(list(csv.DictReader(out.open(encoding="utf-8")))) == 2
    result = run_cli("export", "--db", str(catalog), "--since", "last tuesday-ish")
    assert result.returncode == 2 and "--since 'last tuesday-ish' is not a date; use YYYY-MM-DD" in result.stderr
    result = run_cli("export", "--db", str(tmp_path / "missing.db"))
    assert result.returncode == 2 and "does not exist yet" in result.stderr
    result = run_cli("export", "--db", str(catalog), "--format", "xml")
    assert result.returncode == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 30) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stderr.read().decode(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_serve_runs_datasette_and_stops_with_it(catalog):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "illhub", "serve", "--db", str(catalog), "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        home = wait_for(f"http://127.0.0.1:{port}/", proc).decode()
        assert "illhub" in home
        rows = json.loads(wait_for(f"http://127.0.0.1:{port}/catalog/resources.json?_shape=array", proc))
        assert len(rows) == 4
        health = json.loads(wait_for(f"http://127.0.0.1:{port}/catalog/harvest_health.json?_shape=array", proc))
        assert {r["source_id"] for r in health} == {"blog", "tube", "curated"}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    # stopping illhub stopped Datasette too: nothing listens on the port any more
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_serve_without_a_catalog(tmp_path):
    result = run_cli("serve", "--db", str(tmp_path / "none.db"))
    assert result.returncode == 2 and "does not exist yet: run 'illhub harvest'" in result.stderr


def test_summary_of_a_large_harvest_lists_only_sources_that_need_a_look(capsys):
    from types import SimpleNamespace

    from harvesters.spider import SourceState
    from illhub.console import SUMMARY_OK_ROWS, print_summary

    states = [SourceState(source=SimpleNamespace(id=f"ok-{i:03}"), run_id=i, documents=1, seen=20, new=3)
              for i in range(SUMMARY_OK_ROWS + 5)]
    states.append(SourceState(source=SimpleNamespace(id="broken-feed"), run_id=99, errors=["HTTP 404 from x"]))
    print_summary(SimpleNamespace(run_group="g", states=states, links=[]), "catalog.db")
    text = capsys.readouterr().out
    assert "broken-feed" in text and "HTTP 404" in text
    assert "ok-000" not in text
    assert f"{SUMMARY_OK_ROWS + 5} sources ok (900 items seen, 135 new, 0 updated)" in text
    assert f"1 failed, {SUMMARY_OK_ROWS + 5} ok" in text
    few = states[:3] + states[-1:]
    print_summary(SimpleNamespace(run_group="g", states=few, links=[]), "catalog.db")
    assert "ok-000" in capsys.readouterr().out  # a small harvest still lists every source
