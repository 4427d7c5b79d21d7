"""Shared fixtures. Every test is offline: only loopback connections are allowed, in this
process (socket.connect is guarded) and in harvest subprocesses (ILLHUB_NETWORK=loopback
makes the harvester's own network guard refuse every other address)."""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ["ILLHUB_NETWORK"] = "loopback"
os.environ.pop("ILLHUB_ALLOW_PRIVATE_NETWORK", None)
os.environ.pop("ILLHUB_DB", None)
# Parsed YAML is cached between runs (pipeline/yamlcache.py): never in the home directory of
# whoever runs the tests; subprocesses inherit this.
os.environ["ILLHUB_CACHE_DIR"] = tempfile.mkdtemp(prefix="illhub-test-cache-")
atexit.register(shutil.rmtree, os.environ["ILLHUB_CACHE_DIR"], True)

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check(sock: socket.socket, address: object) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0] if isinstance(address, tuple) else address
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(str(host).split("%")[0]).is_loopback:
            return
    except ValueError:
        pass
    raise ConnectionRefusedError(f"tests may only connect to loopback, not {host!r}")


def _guarded_connect(self, address):
    _check(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _check(self, address)
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m illhub ARGS`` as a subprocess, as a user would."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "ILLHUB_NETWORK": "loopback", "COLUMNS": "200"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "illhub", *args], cwd=cwd or ROOT, env=full_env, capture_output=True,
        text=True, timeout=timeout,
    )


@pytest.fixture
def server():
    """A loopback stub server (tests/server.py) whose robots.txt allows everything; each test
    adds its own paths. A test module may define its own ``server`` instead."""
    from tests.server import StubServer

    s = StubServer()
    s.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    with s:
        yield s


@pytest.fixture
def demo_server():
    from illhub.demo import DemoServer

    with DemoServer() as server:
        yield server


@pytest.fixture
def demo_registry_file(demo_server, tmp_path):
    """The demo registry pointed at a running demo server, written to a file."""
    from illhub.demo import DEMO_REGISTRY

    path = tmp_path / "registry.yaml"
    path.write_text(DEMO_REGISTRY.read_text(encoding="utf-8").replace("{base}", demo_server.base), encoding="utf-8")
    return path


def problems_for(*sources: dict, **top) -> list[str]:
    """Every problem the registry finds in these sources (it must find some)."""
    from illhub.registry import RegistryError, parse_registry

    with pytest.raises(RegistryError) as info:
        parse_registry({"sources": list(sources), **top}, "reg.yaml")
    return info.value.problems


def one_problem(source: dict) -> str:
    problems = problems_for(source)
    assert len(problems) == 1, problems
    return problems[0]
