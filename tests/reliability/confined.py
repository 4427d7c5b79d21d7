"""Runs illhub commands against a catalog on a full disk or a read-only file system, made for
the test (``python -m tests.reliability.confined SCENARIO DIR OUT ...``), and writes what each
command did (exit code, stdout, stderr) to ``OUT/report.json``.

Run as a user, a small disk or a read-only mount needs privileges; run inside ``unshare -rm``
(a user and mount namespace: root there, nobody outside) it needs none, and the mounts vanish
with the process. :func:`confined` does that, or tells the test to skip when the kernel does
not allow unprivileged namespaces. Without a namespace the read-only case is made with
``chmod`` instead, which works for any user but root.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def unshare_works() -> bool:
    try:
        r = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def confined(scenario: str, directory: Path, out: Path, *args: str, timeout: float = 300) -> dict:
    """Run a scenario in a user and mount namespace; its report."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = ["unshare", "-rm", sys.executable, "-m", "tests.reliability.confined", scenario, str(directory), str(out),
           *args]
    r = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads((out / "report.json").read_text())


def illhub(*args: str, timeout: float = 180) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ILLHUB_NETWORK": "loopback", "COLUMNS": "250"}
    try:
        r = subprocess.run([sys.executable, "-m", "illhub", *args], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return {"args": list(args), "returncode": None, "stdout": str(e.stdout or ""), "stderr": str(e.stderr or "")}
    return {"args": list(args), "returncode": r.returncode, "stdout": r.stdout, "stderr": r.stderr}


def catalog_state(db: Path) -> dict:
    """Counts, the integrity check and the latest runs, read without writing."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {
            "resources": conn.execute("select count(*) from resources").fetchone()[0],
            "integrity": [r[0] for r in conn.execute("pragma integrity_check")],
            "runs": [list(r) for r in conn.execute(
                "select run_group, source_id, status, error from harvest_runs order by id")],
            "ids": [r[0] for r in conn.execute("select id from resources order by id")],
        }
    finally:
        conn.close()


def fill(directory: Path, leave: int) -> Path:
    """A file taking all the free space of ``directory``'s file system but ``leave`` bytes."""
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    filler = directory / "filler"
    with open(filler, "wb") as fh:
        remaining = max(0, free - leave)
        chunk = b"\0" * (1 << 20)
        while remaining > 0:
            n = fh.write(chunk[: min(len(chunk), remaining)])
            remaining -= n
    return filler


def full_disk(directory: Path, out: Path, first: str, second: str, size: str) -> dict:
    """A catalog on a small disk: a harvest; the disk filled but a little; a larger harvest
    (it runs out of space); space freed; the larger harvest again."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], check=True)
    db = directory / "catalog.db"
    report: dict = {"first": illhub("harvest", "--registry", first, "--db", str(db), "--quiet", "--delay", "0.01")}
    report["after_first"] = catalog_state(db)
    filler = fill(directory, leave=96 * 1024)
    report["full"] = illhub("harvest", "--registry", second, "--db", str(db), "--quiet", "--delay", "0.01")
    report["after_full"] = catalog_state(db)
    filler.unlink()
    report["again"] = illhub("harvest", "--registry", second, "--db", str(db), "--quiet", "--delay", "0.01")
    report["after_again"] = catalog_state(db)
    return report


def read_only(directory: Path, out: Path, registry: str, backup: str, how: str) -> dict:
    """Every command against a catalog this process cannot write (a read-only mount, or
    ``chmod`` for a user who is not root)."""
    db = directory / "catalog.db"
    before = db.read_bytes()
    if how == "mount":
        subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(directory)], check=True)
    else:
        for p in directory.iterdir():
            p.chmod(0o444)
        directory.chmod(0o555)
    dbarg = ["--db", str(db)]
    report = {
        "harvest": illhub("harvest", "--registry", registry, *dbarg, "--quiet"),
        "check-links": illhub("check-links", "--registry", registry, *dbarg, "--quiet", "--older-than", "0"),
        "reprocess": illhub("reprocess", *dbarg),
        "restore": illhub("restore", *dbarg, backup),
        "serve": illhub("serve", *dbarg, "--port", "9"),
        "export": illhub("export", *dbarg, "--format", "jsonl"),
        "doctor": illhub("doctor", *dbarg),
        "backup": illhub("backup", *dbarg, str(out / "backups")),
        "sources": illhub("sources", "--registry", registry, *dbarg, "--json"),
    }
    if how != "mount":
        directory.chmod(0o755)
        for p in directory.iterdir():
            p.chmod(0o644)
    report["unchanged"] = db.read_bytes() == before
    return report


def main() -> None:
    scenario, directory, out, *args = sys.argv[1:]
    directory, out = Path(directory), Path(out)
    report = {"full-disk": full_disk, "read-only": read_only}[scenario](directory, out, *args)
    (out / "report.json").write_text(json.dumps(report), encoding="utf-8")


if __name__ == "__main__":
    main()
