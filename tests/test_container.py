"""The container image: the Dockerfile's instructions checked (it builds from files that exist,
runs as a user, keeps the catalog on a volume), its entry point run here as it runs in the
container (schedule + serve + a daily backup, stopped by SIGTERM), and, where a container
engine answers, the image built and smoke-tested."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.server import RSS, StubServer, rss

DOCKERFILE = ROOT / "Dockerfile"
INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
                "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    out, pending = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        out.append((word, rest.strip()))
    assert not pending, "a continuation line at the end of the Dockerfile"
    return out


def test_dockerfile_instructions():
    steps = instructions()
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.1")
    unknown = [w for w, _ in steps if w not in INSTRUCTIONS]
    assert not unknown, unknown
    for word, args in steps:
        if word == "COPY":
            *sources, _dest = args.split()
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: not in the checkout"
    by = {}
    for word, args in steps:
        by.setdefault(word, []).append(args)
    assert by["VOLUME"] == ['["/data"]'] and by["EXPOSE"] == ["8001"]
    assert by["USER"] == ["illhub"]  # not root
    env = " ".join(by["ENV"])
    assert "ILLHUB_DB=/data/illhub.db" in env and "ILLHUB_CACHE_DIR=/data/cache" in env
    [entry] = by["ENTRYPOINT"]
    argv = json.loads(entry)  # exec form: the script is PID 1 and gets docker stop's SIGTERM
    script = ROOT / argv[0].removeprefix("/app/")
    assert script.exists() and os.access(script, os.X_OK)
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    # everything the package needs at run time is copied (pyproject's packages, the config, the vocabulary)
    copied = {args.split()[0].rstrip("/") for word, args in steps if word == "COPY"}
    assert {"illhub", "harvesters", "pipeline", "catalog", "datasette_config", "data/taxonomy.yaml"} <= copied


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def test_entry_point_harvests_serves_and_stops_on_sigterm(tmp_path):
    """deploy/container.sh as the container runs it, with this checkout's illhub on PATH."""
    port = free_port()
    with StubServer() as srv:
        srv.add("/robots.txt", "User-agent: *\n", "text/plain")
        srv.add("/news.rss", rss([("a", "Rule of five", "Mon, 02 Nov 2026 10:00:00 GMT")]), RSS)
        registry = tmp_path / "registry.yaml"
        registry.write_text(f"sources:\n  - id: news\n    name: News\n    kind: feed\n    url: {srv.base}/news.rss\n",
                            encoding="utf-8")
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               "PYTHONPATH": str(ROOT), "ILLHUB_NETWORK": "loopback", "ILLHUB_DB": str(tmp_path / "data/illhub.db"),
               "ILLHUB_CACHE_DIR": str(tmp_path / "data/cache"), "ILLHUB_REGISTRY": str(registry),
               "ILLHUB_PORT": str(port), "ILLHUB_BACKUP_EVERY": "3"}
        (tmp_path / "data").mkdir()
        proc = subprocess.Popen([str(ROOT / "deploy/container.sh")], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            html = wait_for(f"http://127.0.0.1:{port}/", 90, proc)
            assert "1 resources from 1 sources." in " ".join(html.split())  # the harvested feed
            assert 'role="status">Updated ' in html  # the public profile's status line
            assert srv.count("/news.rss") == 1
            deadline = time.monotonic() + 30
            while not list((tmp_path / "data/backups").glob("*.db")) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert list((tmp_path / "data/backups").glob("*.db")), "no daily backup was made"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                out, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    assert proc.returncode == 0, err
    assert "illhub container: stopping" in err
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)


def engine() -> str | None:
    """A container engine that answers (docker or podman), else None."""
    for name in ("docker", "podman"):
        exe = shutil.which(name)
        if exe and subprocess.run([exe, "info"], capture_output=True, timeout=30).returncode == 0:
            return exe
    return None


@pytest.mark.slow
def test_image_builds_and_serves():
    exe = engine()
    if exe is None:
        pytest.skip("no container engine answers here (docker/podman info fails): the Dockerfile was checked "
                    "by its instructions and its entry point run directly instead")
    tag = f"illhub-test-{uuid.uuid4().hex[:8]}"
    build = subprocess.run([exe, "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stderr[-3000:]
    try:
        run = subprocess.run([exe, "run", "--rm", tag, "illhub", "validate"], capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0 and "sources OK" in run.stdout, run.stderr
        # The image as deployed: schedule + serve; the bundled registry (offline, every source fails
        # with its reason, and the catalog is served all the same), stopped by docker stop.
        port = free_port()
        started = subprocess.run([exe, "run", "-d", "--name", tag, "-p", f"127.0.0.1:{port}:8001", tag],
                                 capture_output=True, text=True, timeout=300)
        assert started.returncode == 0, started.stderr
        deadline = time.monotonic() + 600
        html = None
        while html is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    html = r.read().decode()
            except OSError:
                time.sleep(2)
        assert html is not None and 'role="status"' in html
        status = subprocess.run([exe, "exec", tag, "illhub", "status"], capture_output=True, text=True, timeout=120)
        assert "last harvest: finished" in status.stdout, status.stdout + status.stderr
        stop = subprocess.run([exe, "stop", "-t", "90", tag], capture_output=True, text=True, timeout=300)
        assert stop.returncode == 0
        code = subprocess.run([exe, "inspect", "-f", "{{.State.ExitCode}}", tag], capture_output=True, text=True)
        assert code.stdout.strip() == "0", code.stdout
    finally:
        subprocess.run([exe, "rm", "-f", tag], capture_output=True, timeout=300)
        subprocess.run([exe, "rmi", "-f", tag], capture_output=True, timeout=300)
