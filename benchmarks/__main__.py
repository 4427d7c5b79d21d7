"""``python -m benchmarks [--quick] [--only NAME ...]``: run the ratio benchmarks and write
benchmarks/results/latest.md and latest.json."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

from benchmarks.common import Figure

BENCHMARKS = ["feed_ingest", "politeness", "memory", "storage", "catalog", "hub", "crawl", "reharvest", "dispatch"]
#: The benchmarks that serve a catalog of ``--rows`` resources.
SIZED = ("catalog", "hub")
RESULTS = Path(__file__).resolve().parent / "results"


def markdown(figures: list[Figure], meta: dict) -> str:
    lines = [
        f"Measured {meta['date']} on {meta['machine']} ({meta['cpus']} cores), Python {meta['python']}"
        + (" — quick sizes" if meta["quick"] else "") + ".",
        "",
        "| benchmark | measured | baseline | ratio | target | ok |",
        "|---|---:|---:|---:|---|---|",
    ]
    for f in figures:
        lines.append(f"| {f.name} | {f.value:.4g} {f.unit} | {f.baseline:.4g} {f.unit} | {f.ratio:.3f} | "
                     f"{f.target} | {'yes' if f.passed else '**no**'} |")
    notes = [f"- {f.name}: {f.note}" + (f" — FAILED: {f.broken}" if f.broken else "") for f in figures
             if f.note or f.broken]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def prepare_environment() -> None:
    """Measure illhub as it runs once installed:

    - its modules compiled to bytecode, as Python leaves them after the first import
      (``__pycache__``) and as ``pip install`` does. Without this, an environment with
      ``PYTHONDONTWRITEBYTECODE`` set (as some CI and sandbox machines have) compiles every
      module from source in every harvest process, about 0.15 s of each;
    - with a parsed-YAML cache of its own (pipeline/yamlcache.py), empty at the start, so a
      run never depends on what the machine's user cache holds: each benchmark's first
      harvest parses its new registry, and a re-harvest finds it parsed, as a nightly run does.
    """
    import atexit
    import compileall
    import os
    import shutil
    import tempfile

    from benchmarks.common import ROOT

    for package in ("illhub", "pipeline", "harvesters", "benchmarks"):
        compileall.compile_dir(str(ROOT / package), quiet=2)
    os.environ["ILLHUB_CACHE_DIR"] = tempfile.mkdtemp(prefix="illhub-bench-cache-")
    atexit.register(shutil.rmtree, os.environ["ILLHUB_CACHE_DIR"], True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--rows", type=int, metavar="N",
                        help="catalog and hub benchmarks only: serve N resources (the manual million-row run: "
                             "--only catalog --rows 1000000); results go to catalog-N.md/json (hub-N, or "
                             "catalog-hub-N for both), not latest")
    args = parser.parse_args(argv)
    prepare_environment()
    figures: list[Figure] = []
    failures: list[str] = []
    for name in args.only or BENCHMARKS:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name}", file=sys.stderr, flush=True)
        t = time.perf_counter()
        try:
            got = module.run(quick=args.quick, rows=args.rows) if args.rows and name in SIZED else module.run(
                quick=args.quick)
        except Exception as e:  # noqa: BLE001 - report and go on with the others
            failures.append(f"{name}: {type(e).__name__}: {e}")
            print(f"   FAILED: {e}", file=sys.stderr)
            continue
        for f in got:
            print(f"   {f.name}: ratio {f.ratio:.3f} (target {f.target}) {'ok' if f.passed else 'MISSED'}",
                  file=sys.stderr)
        print(f"   ({time.perf_counter() - t:.1f}s)", file=sys.stderr)
        figures.extend(got)
    import os

    meta = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "quick": args.quick}
    args.out.mkdir(parents=True, exist_ok=True)
    # Only a full run of every benchmark is "latest" (docs/performance.md shows it): --only and --quick
    # runs are written beside it.
    partial = bool(args.only) and set(args.only) != set(BENCHMARKS)
    sized = [name for name in args.only or BENCHMARKS if name in SIZED]
    stem = (f"{'-'.join(sized)}-{args.rows}" if args.rows else
            "latest" + ("-quick" if args.quick else "") + ("-partial" if partial else ""))
    (args.out / f"{stem}.md").write_text(markdown(figures, meta))
    (args.out / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "figures": [f.to_dict() for f in figures], "errors": failures}, indent=2))
    print(markdown(figures, meta))
    for f in failures:
        print(f"error: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
