#!/usr/bin/env python3
"""The scenario library one case at a time against `wgh run -j`, side by side in one run.

Each round runs `wgh run --no-results --json` over the same files serially (-j 1) and
with each -j value asked for (default 2, 4, 8 and auto), each going first in turn so
that machine noise hits all alike; it prints the wall times' medians, their ratios to
serial and whether the verdicts (status, step outcomes, diagnosed cause codes) matched
the first run's. Exit 1 if verdicts differ or a run gives no results; the ratios are
measured, not gated.

Two more ways to run the same cases can join the comparison (verdicts only: their
wall times are printed but mean something else):
  --shards N   `wgh run --shard I/N` for I = 1..N one after the other, verdicts merged
               (the time shown is the longest shard's: N machines would take that);
  --xdist      `pytest -n auto` over the files, verdicts read from its results.json.

    sudo .venv/bin/python benchmarks/bench_parallel.py [--jobs 2,4,8,auto] [--repeat 1] [--backend wireguard-go] [--shards 2] [--xdist] [FILES...]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.results.verdicts import verdicts

REPO = Path(__file__).resolve().parent.parent
WGH = Path(sys.executable).parent / "wgh"
def run(files: list[str], jobs: str, backend: str, extra: tuple[str, ...] = ()) -> tuple[float, dict]:
    started = time.monotonic()
    done = subprocess.run(
        [str(WGH), "run", "--no-results", "--json", "--backend", backend, "-j", jobs, *extra, *files],
        capture_output=True, text=True, cwd=REPO,
    )
    seconds = time.monotonic() - started
    try:
        document = json.loads(done.stdout)
    except ValueError:
        sys.exit(f"-j {jobs} {' '.join(extra)}: no results (exit {done.returncode}): {done.stderr[-2000:]}")
    workers = re.search(r"-j auto → (\d+) workers", done.stderr)
    return seconds, {"verdicts": verdicts(document, with_skips=False), "workers": workers.group(1) if workers else jobs}


def run_shards(files: list[str], count: int, backend: str) -> tuple[float, dict]:
    """Every shard in turn, serially inside each; the longest shard's time, all verdicts."""
    longest, merged = 0.0, {}
    for index in range(1, count + 1):
        seconds, outcome = run(files, "1", backend, ("--shard", f"{index}/{count}"))
        longest = max(longest, seconds)
        overlap = set(merged) & set(outcome["verdicts"])
        if overlap:
            sys.exit(f"shards overlap: {sorted(overlap)}")
        merged.update(outcome["verdicts"])
    return longest, {"verdicts": merged, "workers": f"{count} shards"}


def run_xdist(files: list[str], backend: str) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory(prefix="wgh-bench-") as results:
        started = time.monotonic()
        done = subprocess.run(
            [str(WGH.parent / "pytest"), "-q", "-p", "no:cacheprovider", "-n", "auto", "--wg-backend", backend,
             "--results-dir", results, *files],
            capture_output=True, text=True, cwd=REPO,
        )
        seconds = time.monotonic() - started
        found = sorted(Path(results).glob("*/results.json"))
        if len(found) != 1:
            sys.exit(f"pytest -n auto: {len(found)} results.json (exit {done.returncode}): {done.stdout[-2000:]}")
        document = json.loads(found[0].read_text())
    return seconds, {"verdicts": verdicts(document, with_skips=False), "workers": "n auto"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", default=["scenarios/"])
    parser.add_argument("--jobs", default="2,4,8,auto", help="comma-separated -j values to compare with -j 1")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--backend", default="wireguard-go")
    parser.add_argument("--shards", type=int, default=0, help="also run the files as N shards, verdicts merged")
    parser.add_argument("--xdist", action="store_true", help="also run them with pytest -n auto")
    args = parser.parse_args()
    variants = ["1", *[j.strip() for j in args.jobs.split(",") if j.strip() and j.strip() != "1"]]
    if args.shards > 1:
        variants.append(f"shards{args.shards}")
    if args.xdist:
        variants.append("xdist")
    times: dict[str, list[float]] = {jobs: [] for jobs in variants}
    workers: dict[str, str] = {}
    reference: dict | None = None
    differ: dict[str, set[str]] = {jobs: set() for jobs in variants}
    for round_ in range(args.repeat):
        shift = round_ % len(variants)  # each variant goes first in turn: noise hits all alike
        for jobs in variants[shift:] + variants[:shift]:
            if jobs.startswith("shards"):
                seconds, outcome = run_shards(args.files, args.shards, args.backend)
            elif jobs == "xdist":
                seconds, outcome = run_xdist(args.files, args.backend)
            else:
                seconds, outcome = run(args.files, jobs, args.backend)
            times[jobs].append(seconds)
            workers[jobs] = outcome["workers"]
            if reference is None:
                reference = outcome["verdicts"]
            else:
                differ[jobs] |= {k for k in set(reference) | set(outcome["verdicts"]) if reference.get(k) != outcome["verdicts"].get(k)}
            print(f"round {round_ + 1}: {jobs:>8} {seconds:7.1f} s", flush=True)
    serial = statistics.median(times["1"])
    print(f"{len(reference or {})} cases ran (skips left out), {args.repeat} round(s), backend {args.backend}")
    print(f"{'-j':>8} {'workers':>8} {'median s':>9} {'ratio':>6}  verdicts")
    for jobs in variants:
        median = statistics.median(times[jobs])
        verdict = "identical" if not differ[jobs] else "DIFFER: " + ", ".join(sorted(differ[jobs]))
        print(f"{jobs:>8} {workers[jobs]:>8} {median:9.1f} {median / serial:6.2f}  {verdict}")
    return 1 if any(differ.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
