#!/usr/bin/env python3
"""What the heartbeat (harness.pressure.Heartbeat: a thread in every harness process
that wakes every 10 ms to notice when the process was not run) costs, side by side:

- idle: the CPU time of a process that only sleeps, with and without a heartbeat,
  over the same wall time (the heartbeat's own cost, per second and as a share of
  one core);
- busy: the wall time of a fixed pure-Python workload with and without a heartbeat
  (the GIL hand-offs its wake-ups cause), alternated, medians and their ratio.

Each measurement runs in a fresh interpreter, so nothing but the heartbeat differs.

    .venv/bin/python benchmarks/bench_heartbeat.py [--seconds 5] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
from harness.pressure import HEARTBEAT
mode, with_heartbeat, amount = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3])
if with_heartbeat:
    HEARTBEAT.ensure_running()
    time.sleep(0.05)  # its thread is running before the measurement starts
before = resource.getrusage(resource.RUSAGE_SELF)
started = time.perf_counter()
if mode == "idle":
    time.sleep(amount)
else:
    total = 0
    for i in range(int(amount)):
        total += i * i % 7
elapsed = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(json.dumps({"wall": elapsed, "cpu": cpu, "lag_us": HEARTBEAT.lag_us}))
"""


def measure(mode: str, heartbeat: bool, amount: float) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, "1" if heartbeat else "0", str(amount)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="idle measurement length")
    parser.add_argument("--loops", type=int, default=20_000_000, help="busy workload size (iterations)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    idle: dict[bool, list[float]] = {False: [], True: []}
    busy: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeat):
        for heartbeat in (False, True):  # alternated: drift on a shared machine hits both
            idle[heartbeat].append(measure("idle", heartbeat, args.seconds)["cpu"] / args.seconds)
            busy[heartbeat].append(measure("busy", heartbeat, args.loops)["wall"])

    idle_without, idle_with = statistics.median(idle[False]), statistics.median(idle[True])
    cost = idle_with - idle_without
    print(f"idle, CPU seconds per second: without {idle_without * 1000:.2f} ms/s, with {idle_with * 1000:.2f} ms/s "
          f"-> the heartbeat costs {cost * 1000:.2f} ms of CPU per second ({cost:.2%} of one core)")
    busy_without, busy_with = statistics.median(busy[False]), statistics.median(busy[True])
    print(f"busy, {args.loops:,} loop iterations: without {busy_without:.3f} s, with {busy_with:.3f} s "
          f"-> ratio {busy_with / busy_without:.3f} (median of {args.repeat}, alternated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
