"""The README's newcomer path, followed literally in a fresh copy of the checkout: every
command of its ```sh blocks, typed into one shell in order (install, activate, validate,
harvest, status, serve, add-source on a loopback blog, harvest it, install the nightly units,
export), then the nightly units' own commands run as systemd would run them.

What cannot run here is replaced, and only that (see :data:`REPLACED`): the blog's address
by a loopback blog; `illhub serve` gets a free port and is stopped once its front page
answers; `illhub install-systemd` writes into a directory instead of this machine's systemd,
whose commands (systemctl, journalctl, loginctl) are skipped. `make install` runs for real
with pip offline: the new `.venv` sees this environment's packages through a `.pth` file.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.server import RSS, StubServer

README = ROOT / "README.md"
BLOG_URL = "https://blog.example.org/"
SKIPPED = ("systemctl ", "journalctl ", "loginctl ", "sudo ")
REPLACED = {BLOG_URL: "the loopback blog", "illhub serve": "a free port, stopped once it answers",
            "illhub install-systemd": "--dest units (not this machine's systemd)"}

BLOG_FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
  <title>Example Consortium ILL blog</title>
  <link>{base}/</link>
  <description>Interlibrary loan news from the Example consortium</description>
  <item><title>Copyright and the rule of five, explained</title><link>{base}/posts/rule-of-five</link>
    <description>How the CONTU guidelines' rule of five limits copies of recent articles.</description>
    <pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate></item>
  <item><title>Lending to libraries abroad</title><link>{base}/posts/lending-abroad</link>
    <description>International lending: shipping, customs and IFLA vouchers.</description>
    <pubDate>Tue, 03 Nov 2026 10:00:00 GMT</pubDate></item>
</channel></rss>"""
BLOG_PAGE = """<!doctype html><html lang="en"><head><title>Example Consortium ILL blog</title>
<link rel="alternate" type="application/rss+xml" title="ILL blog" href="/feed/"></head>
<body><h1>Example Consortium ILL blog</h1><p>Interlibrary loan news.</p></body></html>"""


def sh_blocks(text: str) -> list[str]:
    """The command lines of the README's ```sh blocks, in order."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        lines += [x.strip() for x in block.splitlines() if x.strip() and not x.strip().startswith("#")]
    return lines


def copy_checkout(dest: Path) -> None:
    """What a fresh clone holds (the tracked files, as they are in this working tree)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                            text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: cannot tell which files a fresh clone holds")
    for name in listed.stdout.splitlines():
        src = ROOT / name
        if src.is_file() and not name.endswith((".db", ".db-wal", ".db-shm")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def offline_venv(checkout: Path) -> None:
    """A .venv for `make install` to fill without the network: no pip of its own (this
    environment's, with its packages, through a .pth file)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(checkout / ".venv")], check=True)
    paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    new_site = subprocess.run([str(checkout / ".venv/bin/python"), "-c",
                               "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    Path(new_site, "zz_illhub_test_packages.pth").write_text("\n".join(paths) + "\n", encoding="utf-8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script_for(lines: list[str], blog: str, port: int) -> str:
    """The README's lines as one bash script, each followed by a marker with its exit code."""
    out = ["cd \"$CHECKOUT\"", "command -v illhub >/dev/null && echo '@@ illhub on PATH before activation'"]
    wait_page = (f"python -c \"import time, urllib.request as u\nfor _ in range(240):\n try:\n"
                 f"  open('front.html', 'wb').write(u.urlopen('http://127.0.0.1:{port}/', timeout=5).read()); break\n"
                 f" except OSError: time.sleep(0.5)\"")
    for i, line in enumerate(lines):
        cmd = line.replace(BLOG_URL, blog)
        if cmd.startswith(SKIPPED):
            out.append(f"echo '@@rc 0 {i} skipped'")
            continue
        if cmd.startswith("illhub serve"):
            cmd = f"{cmd} --port {port} > serve.log 2>&1 & serve_pid=$!; {wait_page}; kill $serve_pid; wait $serve_pid; test -s front.html"
        elif cmd.startswith("illhub install-systemd"):
            cmd = f"{cmd} --dest units"
        out.append(f"{cmd}\necho \"@@rc $? {i}\"")
    return "\n".join(out) + "\n"


@pytest.mark.slow
def test_readme_quick_path_in_a_fresh_copy(tmp_path):
    lines = sh_blocks(README.read_text(encoding="utf-8"))
    # The path the README promises, in this order.
    wanted = ["make install", ". .venv/bin/activate", "illhub validate", "illhub harvest", "illhub status",
              "illhub serve", "illhub add-source", "illhub harvest --source", "illhub install-systemd", "illhub export"]
    positions = [next(i for i, x in enumerate(lines) if x.startswith(w)) for w in wanted]
    assert positions == sorted(positions), lines
    checkout = tmp_path / "illhub"
    copy_checkout(checkout)
    offline_venv(checkout)
    port = free_port()
    with StubServer() as srv:
        srv.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
        srv.add("/", BLOG_PAGE)
        srv.add("/feed/", BLOG_FEED, RSS)
        # the harvest of the whole registry: only the manual (curated) sources store anything offline
        path = [p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "illhub").exists()]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ILLHUB_", "VIRTUAL_ENV", "PYTHON"))}
        env.update({"PATH": os.pathsep.join(path), "HOME": str(tmp_path / "home"), "CHECKOUT": str(checkout),
                    "ILLHUB_NETWORK": "loopback", "ILLHUB_CACHE_DIR": str(tmp_path / "cache"),
                    "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "COLUMNS": "200"})
        script = script_for(lines, srv.base + "/", port)
        done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=900)
    output = done.stdout + done.stderr
    assert "@@ illhub on PATH before activation" not in output
    codes = {int(m.group(2)): int(m.group(1)) for m in re.finditer(r"^@@rc (\d+) (\d+)", done.stdout, flags=re.M)}
    assert sorted(codes) == list(range(len(lines))), output[-5000:]
    for i, line in enumerate(lines):
        # Offline, the whole registry's harvest has failing sources (exit 1), and so does the status after it.
        allowed = (0, 1) if line in ("illhub harvest", "illhub status") else (0,)
        assert codes[i] in allowed, (line, codes[i], output[-5000:])
    # what each step left behind
    assert (checkout / ".venv/bin/illhub").exists()
    front = (checkout / "front.html").read_text(encoding="utf-8")
    status_line = " ".join(front.split('role="status">')[1].split("</p>")[0].split())
    # offline, the registry's network sources failed: the front page says so, with the way to the reasons
    assert status_line.startswith("Last harvest finished ") and "sources failed</strong>" in status_line, status_line
    assert "harvest_health" in status_line
    entry = (checkout / "registry.yaml").read_text(encoding="utf-8").split("- id: example-blog\n")[1]
    assert f"url: {srv.base}/feed/" in entry and "\n    # topics: [" in entry
    rows = list(csv.DictReader((checkout / "copyright.csv").open(encoding="utf-8")))
    assert any(r["title"] == "Copyright and the rule of five, explained" and r["source_id"] == "example-blog"
               for r in rows), rows
    units = sorted(p.name for p in (checkout / "units").iterdir())
    assert units == ["illhub-harvest.service", "illhub-harvest.timer", "illhub-serve.service"]
    run_nightly_unit(checkout, env)


def run_nightly_unit(checkout: Path, env: dict[str, str]) -> None:
    """The installed harvest unit's commands, run as systemd runs them (in its working
    directory, the commands as written, exit 1 counted a success), checked by
    systemd-analyze where it is installed."""
    unit = (checkout / "units/illhub-harvest.service").read_text(encoding="utf-8")
    keys = [line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#")]
    workdir = next(v for k, v in keys if k == "WorkingDirectory")
    assert Path(workdir) == checkout.resolve()
    success = {0} | {int(x) for k, v in keys if k == "SuccessExitStatus" for x in v.split()}
    for key, value in keys:
        if key not in ("ExecStart", "ExecStartPost"):
            continue
        ignore = value.startswith("-")
        argv = shlex.split(value.lstrip("-"))
        assert Path(argv[0]).is_relative_to(checkout.resolve()), argv  # this checkout's illhub
        done = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
        assert ignore or done.returncode in success, (value, done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert list((checkout / "data/backups").glob("*.db")), "the nightly unit made no backup"
    analyze = shutil.which("systemd-analyze")
    if analyze:
        verify = subprocess.run([analyze, "verify", *map(str, sorted((checkout / "units").iterdir()))],
                                capture_output=True, text=True)
        assert verify.returncode == 0 and "illhub" not in verify.stderr, verify.stderr
