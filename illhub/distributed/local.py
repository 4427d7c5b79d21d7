"""Scrapyd on this machine, as a child process: for the tests, the dispatch benchmark and for
trying ``illhub harvest --scrapyd`` out before setting up other machines.

    with LocalScrapyd(tmp_path / "scrapyd-1") as server:
        ... server.url ...          # http://127.0.0.1:PORT, a free port
        server.kill()               # gone at once, with its running jobs (SIGKILL to its process group)

Each instance has its own folder (``scrapyd.conf``, eggs, logs, item feeds, its temporary
files) and answers ``daemonstatus.json`` before :meth:`LocalScrapyd.start` returns.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def config_text(port: int, directory: Path, options: dict[str, object]) -> str:
    """``scrapyd.conf``: loopback, a port, the instance's own folders, then ``options``."""
    values: dict[str, object] = {
        "bind_address": "127.0.0.1", "http_port": port, "eggs_dir": directory / "eggs", "logs_dir": directory / "logs",
        "items_dir": directory / "items", "dbs_dir": directory / "dbs", "finished_to_keep": 100, **options,
    }
    return "[scrapyd]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())


class ScrapydUnavailable(RuntimeError):
    """Scrapyd is not installed or did not start (the reason says which)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalScrapyd:
    def __init__(self, directory: str | Path, *, env: dict[str, str] | None = None, poll_interval: float = 0.2,
                 max_proc: int = 4, jobs_to_keep: int = 5, config: dict[str, str] | None = None):
        """``config``: more ``[scrapyd]`` options (``username``, ``password``, ``items_dir = ``…)."""
        self.dir = Path(directory).resolve()
        self.env = env or {}
        self.options = {"poll_interval": poll_interval, "max_proc": max_proc, "jobs_to_keep": jobs_to_keep,
                        **(config or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> LocalScrapyd:
        if importlib.util.find_spec("scrapyd") is None:
            raise ScrapydUnavailable("Scrapyd is not installed (pip install -e '.[distributed]')")
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        problem = ""
        for _ in range(3):  # a free port can be taken by someone else before Scrapyd binds it
            self.port = free_port()
            (self.dir / "scrapyd.conf").write_text(config_text(self.port, self.dir, self.options))
            env = {**os.environ, "TMPDIR": str(self.dir / "tmp"), **self.env}
            log = (self.dir / "scrapyd.log").open("ab")
            self.process = subprocess.Popen([sys.executable, "-m", "scrapyd", "--pidfile", ""], cwd=self.dir,
                                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            problem = self._wait_ready(timeout)
            if not problem:
                return self
        raise ScrapydUnavailable(problem)

    def _wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.dir / "scrapyd.log").read_text(errors="replace").strip().splitlines()[-3:]
                return f"Scrapyd exited with code {self.process.returncode}: {' | '.join(tail)}"
            try:
                with urllib.request.urlopen(f"{self.url}/daemonstatus.json", timeout=2) as r:
                    if json.loads(r.read()).get("status") == "ok":
                        return ""
            except urllib.error.HTTPError as e:
                if e.code == 401:  # answering, and asking for the user name and password it was given
                    return ""
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.1)
        self.kill()
        return f"Scrapyd did not answer within {timeout:g} s (log: {self.dir / 'scrapyd.log'})"

    def _killpg(self, sig: int) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, sig)  # Scrapyd and the jobs it started
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self) -> None:
        """Gone at once, with its jobs: SIGKILL to Scrapyd's process group."""
        self._killpg(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM (Scrapyd stops its jobs and exits), then SIGKILL to whatever is left after 10 s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._killpg(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._killpg(signal.SIGKILL)
        self.process.wait(10)

    def __enter__(self) -> LocalScrapyd:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
