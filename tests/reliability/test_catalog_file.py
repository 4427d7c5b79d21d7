"""An unlucky catalog file: a full disk, a read-only file system, a file that is not a
database, a truncated one, one with bit rot. Each gives one line that names the file and
what to do (free space; ``serve --immutable``; ``illhub doctor`` and restore), an exit code
of its own, runs closed as failed, and nothing already stored lost.

Issue 21, item 11: a full disk ended in a traceback and 26 per-batch tracebacks, with runs
left ``running``; the other cases gave tracebacks in every command, and a bit-rotted copy
harvested with exit code 0, then ``export`` crashed.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from types import SimpleNamespace

import pytest

from pipeline.dberrors import EXIT_CATALOG
from tests.conftest import run_cli
from tests.reliability.confined import confined, unshare_works
from tests.reliability.helpers import feed_source, harvest, items_for, rss, write_registry
from tests.server import StubServer, ok

LONG = " ".join(["Interlibrary loan borrowing and lending workflow notes."] * 10)


def one_line(result, *starts: str) -> str:
    """The command's stderr is one line (no traceback), starting with one of ``starts``."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(starts), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """Feeds on loopback: three small ones, and ten large ones with long descriptions."""
    tmp = tmp_path_factory.mktemp("catalog-file")
    with StubServer("127.0.0.87") as server:
        small, large = [], []
        for i in range(3):
            server.route(f"/small{i}", ok(rss(items_for(f"small{i}", 20, base="http://127.0.0.1:9/"))))
            small.append(feed_source(f"small{i}", server.url(f"/small{i}")))
        for i in range(10):
            items = [{**item, "description": f"{item['description']} {LONG}"}
                     for item in items_for(f"large{i}", 200, base="http://127.0.0.1:9/")]
            server.route(f"/large{i}", ok(rss(items)))
            large.append(feed_source(f"large{i}", server.url(f"/large{i}"), max_items=200))
        yield (write_registry(tmp / "small.yaml", small), write_registry(tmp / "large.yaml", small + large), tmp)


@pytest.fixture(scope="module")
def healthy(web):
    """A harvested catalog and a backup of it."""
    small, _large, tmp = web
    db = tmp / "healthy" / "catalog.db"
    assert harvest(small, db).returncode == 0
    r = run_cli("backup", "--db", str(db))
    assert r.returncode == 0, r.stderr
    return db


def copy_catalog(healthy, tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "catalog.db"
    conn = sqlite3.connect(healthy)
    conn.execute("pragma wal_checkpoint(truncate)")
    conn.close()
    shutil.copyfile(healthy, db)
    shutil.copytree(healthy.parent / "backups", tmp_path / "backups")
    return db


needs_namespaces = pytest.mark.skipif(not unshare_works(), reason="unprivileged user namespaces are not allowed "
                                      "here: a small disk cannot be mounted without privileges")


@needs_namespaces
def test_a_full_disk_is_one_line_runs_closed_and_nothing_lost(web, tmp_path):
    small, large, _tmp = web
    report = confined("full-disk", tmp_path / "disk", tmp_path / "out", str(small), str(large), "24m")
    assert report["first"]["returncode"] == 0, report["first"]
    before = report["after_first"]
    full = report["full"]
    assert full["returncode"] == EXIT_CATALOG, full
    line = one_line(SimpleNamespace(**full), "error: ")
    assert "the disk is full" in line and "Free space" in line and "catalog.db" in line
    after = report["after_full"]
    assert after["integrity"] == ["ok"]
    assert set(before["ids"]) <= set(after["ids"])  # nothing already stored was lost
    second_group = after["runs"][-1][0]
    statuses = {sid: status for group, sid, status, _error in after["runs"] if group == second_group}
    assert "running" not in statuses.values(), statuses
    assert "failed" in statuses.values(), statuses
    assert all(error and "disk is full" in error for group, _sid, status, error in after["runs"]
               if group == second_group and status == "failed")
    # space freed: the same harvest stores everything
    again = report["again"]
    assert again["returncode"] == 0, again
    assert report["after_again"]["resources"] == 3 * 20 + 10 * 200
    assert report["after_again"]["integrity"] == ["ok"]


def test_a_read_only_catalog_is_one_line_per_command(web, healthy, tmp_path):
    small, _large, _tmp = web
    db = copy_catalog(healthy, tmp_path / "ro")
    backup = sorted((tmp_path / "ro" / "backups").iterdir())[-1]
    args = (str(small), str(backup))
    if os.geteuid() != 0:
        from tests.reliability.confined import read_only

        report = read_only(db.parent, tmp_path / "out", *args, "chmod")
    elif unshare_works():
        report = confined("read-only", db.parent, tmp_path / "out", *args, "mount")
    else:
        pytest.skip("as root, a read-only catalog needs a read-only mount, and namespaces are not allowed here")
    for command in ("harvest", "check-links", "reprocess", "restore", "serve"):
        r = SimpleNamespace(**report[command])
        assert r.returncode == EXIT_CATALOG, (command, r.stdout, r.stderr)
        line = one_line(r, "error: ")
        assert f"{db} cannot be written" in line and "illhub serve --immutable" in line, line
    # the commands that only read still work
    export = report["export"]
    assert export["returncode"] == 0, export
    assert len(export["stdout"].splitlines()) == 60
    assert report["doctor"]["returncode"] == 0 and "cannot be written" in report["doctor"]["stdout"]
    assert report["backup"]["returncode"] == 0, report["backup"]
    assert report["sources"]["returncode"] == 0, report["sources"]
    assert report["unchanged"]


def test_not_a_database(healthy, web, tmp_path):
    small, _large, _tmp = web
    db = copy_catalog(healthy, tmp_path)
    db.write_bytes(os.urandom(db.stat().st_size))
    before = db.read_bytes()
    for args in (["harvest", "--registry", str(small), "--quiet"], ["reprocess"], ["export"], ["serve", "--port", "9"],
                 ["check-links", "--registry", str(small), "--quiet"], ["sources", "--registry", str(small)]):
        r = run_cli(*args, "--db", str(db), timeout=60)
        assert r.returncode == EXIT_CATALOG, (args, r.stdout, r.stderr)
        line = one_line(r, "error: ")
        assert f"{db} is not an SQLite database" in line and "illhub doctor" in line
    r = run_cli("backup", "--db", str(db))
    assert r.returncode == EXIT_CATALOG and "not an SQLite database" in one_line(r, "error: ")
    assert db.read_bytes() == before  # no command wrote to it
    assert len(list((tmp_path / "backups").glob("catalog-*.db"))) == 1  # the good backup is still there
    r = run_cli("doctor", "--db", str(db))
    assert r.returncode == 1
    assert "not an SQLite database" in r.stdout
    assert r.stdout.strip().splitlines()[-1].startswith(f"{db} is damaged: restore the latest backup with "
                                                        "'illhub restore ")


def test_a_truncated_catalog(healthy, web, tmp_path):
    small, _large, _tmp = web
    db = copy_catalog(healthy, tmp_path)
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])
    for args in (["harvest", "--registry", str(small), "--quiet"], ["export"], ["reprocess"]):
        r = run_cli(*args, "--db", str(db), timeout=60)
        assert r.returncode == EXIT_CATALOG, (args, r.stdout, r.stderr)
        assert f"{db} is damaged" in one_line(r, "error: ")
    r = run_cli("doctor", "--db", str(db))
    assert r.returncode == 1 and "malformed" in r.stdout
    backup = sorted((tmp_path / "backups").glob("catalog-*.db"))[-1]
    assert f"'illhub restore {backup} --db {db}'" in r.stdout


def test_bit_rot_is_found_by_doctor_and_backup_and_is_one_line_in_export(healthy, tmp_path):
    db = copy_catalog(healthy, tmp_path)
    title = sqlite3.connect(db).execute("select title from resources order by id limit 1").fetchone()[0].encode()
    data = bytearray(db.read_bytes())
    at = data.find(title)
    assert at > 0
    data[at + 1] = 0xFF  # one byte of one title: the pages stay sound
    db.write_bytes(bytes(data))
    assert sqlite3.connect(db).execute("pragma integrity_check").fetchall() == [("ok",)]
    r = run_cli("export", "--db", str(db))
    assert r.returncode == EXIT_CATALOG
    assert "is not valid UTF-8" in one_line(r, "error: ")
    r = run_cli("doctor", "--db", str(db))
    assert r.returncode == 1
    assert "1 stored text value(s) are not valid UTF-8 (bit rot), for example resources.title of rowid" in r.stdout
    good = sorted((tmp_path / "backups").glob("catalog-*Z.db"))
    r = run_cli("backup", "--db", str(db))
    assert r.returncode == EXIT_CATALOG and "is damaged, so its copy is not a backup" in one_line(r, "error: ")
    assert sorted((tmp_path / "backups").glob("catalog-*Z.db")) == good  # the good backups stay
    assert len(list((tmp_path / "backups").glob("catalog-*.damaged.db"))) == 1  # the failed copy, kept aside
