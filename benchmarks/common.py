"""Shared helpers: figures, running the real CLI as a subprocess, measuring time and memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Figure:
    """One measured figure against the baseline the same benchmark measured."""

    name: str
    value: float
    baseline: float
    unit: str
    ratio: float
    target: str  # e.g. ">= 0.5" or "<= 1.3"
    note: str = ""
    #: A condition the figure rests on that did not hold (e.g. "600 resources changed,
    #: expected none"): the figure fails whatever its ratio.
    broken: str = ""

    @property
    def passed(self) -> bool:
        if self.broken:
            return False
        op, _, num = self.target.partition(" ")
        bound = float(num)
        return self.ratio >= bound if op == ">=" else self.ratio <= bound

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return d


@dataclass
class RunResult:
    seconds: float
    max_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_illhub(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> RunResult:
    """Run ``python -m illhub ARGS`` and measure its wall time and peak RSS (wait4)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "ILLHUB_NETWORK": "loopback", "COLUMNS": "200"}
    full_env.update(env or {})
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "illhub", *args], cwd=ROOT, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    seconds = time.perf_counter() - start
    # ru_maxrss of this child alone is not available after communicate(); RUSAGE_CHILDREN is the
    # max over all waited children, so memory benchmarks run each harvest in a fresh helper.
    import resource

    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return RunResult(seconds, rss_kb / 1024, proc.returncode, stdout, stderr)


def peak_rss_of(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> tuple[float, RunResult]:
    """Peak RSS (MiB) of one ``illhub`` run, measured in a fresh process so it is that run's own."""
    code = (
        "import json,resource,sys;"
        "from benchmarks.common import run_illhub;"
        "r=run_illhub(*sys.argv[1:]);"
        "print(json.dumps({'rss':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024,"
        "'seconds':r.seconds,'rc':r.returncode,'out':r.stdout[-2000:],'err':r.stderr[-2000:]}))"
    )
    full_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    full_env.update(env or {})
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=full_env, capture_output=True,
                         text=True, timeout=timeout)
    import json

    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["rss"], RunResult(data["seconds"], data["rss"], data["rc"], data["out"], data["err"])


def timed(fn, *args, repeat: int = 1, **kwargs) -> float:
    """Best wall time of ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t)
    return best
