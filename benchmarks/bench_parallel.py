#!/usr/bin/env python3
"""The scenario library one case at a time against `wgh run -j`, side by side in one run.

Each round runs `wgh run --no-results --json` over the same files serially (-j 1) and
with each -j value asked for (default 2, 4, 8 and auto), each going first in turn so
that machine noise hits all alike; it prints the wall times' medians, their ratios to
serial and whether the verdicts (status, step outcomes, diagnosed cause codes) matched
the first run's. Exit 1 if verdicts differ or a run gives no results; the ratios are
measured, not gated.

    sudo .venv/bin/python benchmarks/bench_parallel.py [--jobs 2,4,8,auto] [--repeat 1] [--backend wireguard-go] [FILES...]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WGH = Path(sys.executable).parent / "wgh"
CAUSE = re.compile(r"\[([a-z0-9]+(?:-[a-z0-9]+)+)\]")


def run(files: list[str], jobs: str, backend: str) -> tuple[float, dict]:
    started = time.monotonic()
    done = subprocess.run(
        [str(WGH), "run", "--no-results", "--json", "--backend", backend, "-j", jobs, *files],
        capture_output=True, text=True, cwd=REPO,
    )
    seconds = time.monotonic() - started
    try:
        document = json.loads(done.stdout)
    except ValueError:
        sys.exit(f"-j {jobs}: no results (exit {done.returncode}): {done.stderr[-2000:]}")
    verdicts = {
        s["id"]: (s["status"], tuple((st["outcome"], tuple(CAUSE.findall(st["message"]))) for st in s["steps"]))
        for s in document["scenarios"]
    }
    workers = re.search(r"-j auto → (\d+) workers", done.stderr)
    return seconds, {"verdicts": verdicts, "workers": workers.group(1) if workers else jobs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", default=["scenarios/"])
    parser.add_argument("--jobs", default="2,4,8,auto", help="comma-separated -j values to compare with -j 1")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--backend", default="wireguard-go")
    args = parser.parse_args()
    variants = ["1", *[j.strip() for j in args.jobs.split(",") if j.strip() and j.strip() != "1"]]
    times: dict[str, list[float]] = {jobs: [] for jobs in variants}
    workers: dict[str, str] = {}
    reference: dict | None = None
    differ: dict[str, set[str]] = {jobs: set() for jobs in variants}
    for round_ in range(args.repeat):
        shift = round_ % len(variants)  # each variant goes first in turn: noise hits all alike
        for jobs in variants[shift:] + variants[:shift]:
            seconds, outcome = run(args.files, jobs, args.backend)
            times[jobs].append(seconds)
            workers[jobs] = outcome["workers"]
            if reference is None:
                reference = outcome["verdicts"]
            else:
                differ[jobs] |= {k for k in set(reference) | set(outcome["verdicts"]) if reference.get(k) != outcome["verdicts"].get(k)}
            print(f"round {round_ + 1}: -j {jobs:5} {seconds:7.1f} s", flush=True)
    serial = statistics.median(times["1"])
    print(f"{len(reference or {})} cases, {args.repeat} round(s), backend {args.backend}")
    print(f"{'-j':>6} {'workers':>7} {'median s':>9} {'ratio':>6}  verdicts")
    for jobs in variants:
        median = statistics.median(times[jobs])
        verdict = "identical" if not differ[jobs] else "DIFFER: " + ", ".join(sorted(differ[jobs]))
        print(f"{jobs:>6} {workers[jobs]:>7} {median:9.1f} {median / serial:6.2f}  {verdict}")
    return 1 if any(differ.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
