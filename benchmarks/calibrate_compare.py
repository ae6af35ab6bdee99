#!/usr/bin/env python3
"""Calibrate `wgh compare`: its false-alarm rate and its power, on stored runs.

From a results history of the scenario library (one environment; every run with the
same --repeat, e.g. 3), it draws comparisons the way a user makes them, judged with
the full family of the library's metrics:

- A/A, nothing changed: one stored run against the others as `wgh compare
  --history` takes them (each run's value of a metric one observation: the newest
  --window of the rest), and against one other run (its 3 repeats against the
  other's). A comparison with any
  metric flagged (regression, improvement, changed) is a false alarm.
- And 3 stored runs (--new-runs) judged together against the others, as `wgh compare
  --history DIR NEW1 NEW2 NEW3` takes them ("history×3"), and against 3 others, as
  `wgh compare --base R1 R2 R3 --new R4 R5 R6` takes them ("runs 3:3").
- Power: the same, with the new run's throughput slowed by 10, 20 and 50% (every
  rate multiplied by 0.9, 0.8, 0.5); the share of (comparison, throughput metric)
  pairs flagged as a regression (metrics whose baseline is 0, an expected failure's
  rate, cannot be slowed and are left out).

The stored runs are drawn at random (seeded); each trial leaves its new run out of its
baseline, and a run's repeats stay together (they shared a machine state, as a
user's three new runs do). No timing here: the figures are rates, and they go in
docs/regressions.md.

    .venv/bin/python benchmarks/calibrate_compare.py [HISTORY.jsonl | HISTORY_DIR] [--trials 100]
        [--window 20] [--families bh holm] [--json OUT]

Default input: benchmarks/data/library-history.jsonl, the library run 10 times with
--repeat 3 on this project's CI machine (2 cores, shared; wireguard-go; how it was
made: benchmarks/data/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from pathlib import Path
from typing import Any

from harness.results.compare import CHANGED, IMPROVEMENT, REGRESSION, Series, Side, combine_sides, compare_sides
from harness.results.history import read_runs, side_of
from harness.results.metrics import Direction, direction

DEFAULT_INPUT = Path(__file__).resolve().parent / "data" / "library-history.jsonl"
SLOWDOWNS = (0.10, 0.20, 0.50)
STEADY = 0.05  # a throughput whose stored observations spread less than this (log sd) is steady
FLAGS = {REGRESSION, IMPROVEMENT, CHANGED}


def load_runs(path: Path) -> list[dict[str, Any]]:
    """Stored runs of one environment: a history file, or a history folder holding one."""
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if len(files) != 1:
        raise SystemExit(f"{path}: give one environment's history file ({len(files)} found)")
    runs = read_runs(files[0])
    environments = {json.dumps(run["key"], sort_keys=True) for run in runs}
    if len(environments) != 1:
        raise SystemExit(f"{files[0]}: runs of {len(environments)} environments")
    return sorted(runs, key=lambda run: str(run.get("started") or ""))


def throughput_metrics(side: Side) -> set[tuple[str, str]]:
    series, _ = side
    return {key for key, entry in series.items() if entry.unit == "bit/s" and direction(key[1], entry.unit) is Direction.HIGHER}


def noise(runs: list[dict[str, Any]], metrics: set[tuple[str, str]]) -> dict[tuple[str, str], float]:
    """Each metric's spread over every stored observation: the standard deviation of
    its logarithm (about its coefficient of variation)."""
    series, _ = side_of(runs)
    spread = {}
    for key in metrics:
        values = [v for v in series[key].observations if v > 0]
        spread[key] = statistics.stdev(math.log(v) for v in values) if len(values) > 2 else 0.0
    return spread


def slowed(side: Side, metrics: set[tuple[str, str]], slowdown: float) -> Side:
    series, statuses = side
    changed = {
        key: Series(entry.unit, [v * (1 - slowdown) for v in entry.observations], entry.stalls) if key in metrics else entry
        for key, entry in series.items()
    }
    return changed, statuses


def judge(base: Side, new: Side, family: str, units: str, stall_threshold: float | None) -> list:
    return compare_sides([("", base, new)], family=family, stall_threshold=stall_threshold, units=units).rows


def trials(runs: list[dict[str, Any]], count: int, window: int, new_runs: int, rng: random.Random) -> list[dict[str, Any]]:
    """Per trial: the new run, its history (the others), one other run; and a group of
    `new_runs` new runs (the first of them the single new run) with their history."""
    drawn = []
    for _ in range(count):
        group = rng.sample(runs, min(new_runs, len(runs) - 3))  # 3 stored runs at least
        others = [run for run in runs if run is not group[0]]
        rest = [run for run in runs if all(run is not new for new in group)]
        drawn.append({
            "new": [group[0]], "history": rng.sample(others, min(window, len(others))), "other": rng.choice(others),
            "group": group, "group_history": rng.sample(rest, min(window, len(rest))),
            "group_against": rng.sample(rest, min(len(group), len(rest))),
        })
    return drawn


def calibrate(
    runs: list[dict[str, Any]], *, count: int, window: int, families: list[str], seed: int = 1, stall_threshold: float | None = 0.5,
    new_runs: int = 3,
) -> dict[str, Any]:
    """`stall_threshold`: as wgh compare's (0.5 by default; None judges every change
    whatever the load). `new_runs`: the runs judged together in the "history×N" mode."""
    rng = random.Random(seed)
    drawn = trials(runs, count, window, new_runs, rng)
    group_size = len(drawn[0]["group"])
    sides = {id(run): side_of([run]) for run in runs}
    run_sides = {id(run): side_of([run], per_run=True) for run in runs}  # as wgh compare --history takes a run
    all_metrics = set().union(*(side[0].keys() for side in sides.values()))
    rates = set().union(*(throughput_metrics(side) for side in sides.values()))
    spread = noise(runs, rates)
    steady = {key for key, sd in spread.items() if sd < STEADY}
    out: dict[str, Any] = {
        "runs": len(runs), "metrics": len(all_metrics), "throughput_metrics": len(rates), "trials": count, "window": window,
        "environment": runs[0]["key"], "aa": {}, "power": {}, "power_steady": {}, "power_noisy": {},
        "throughput_noise": {f"{s} :: {m}": round(sd, 4) for (s, m), sd in sorted(spread.items())},
        "steady_below": STEADY, "stall_threshold": stall_threshold, "new_runs": group_size, "run_ids": [run["run_id"] for run in runs],
    }
    modes = ["history", f"history×{group_size}", f"runs {group_size}:{group_size}", "one run"] if group_size > 1 else ["history", "one run"]
    for family in families:
        for mode in modes:
            false_alarms, flagged_metrics, tested, inconclusive = 0, {}, [], 0
            power = {kind: {s: [0, 0] for s in SLOWDOWNS} for kind in ("all", "steady", "noisy")}
            units = "repeats" if mode == "one run" else "runs"
            for trial in drawn:
                if mode == "one run":
                    base, new_side = sides[id(trial["other"])], sides[id(trial["new"][0])]
                else:
                    history, new = {
                        "history": (trial["history"], trial["new"]), "runs": (trial["group_against"], trial["group"]),
                    }.get(mode.split()[0], (trial["group_history"], trial["group"]))
                    base, new_side = side_of(history, per_run=True), combine_sides(run_sides[id(run)] for run in new)
                rows = judge(base, new_side, family, units, stall_threshold)
                tested.append(sum(r.p_value is not None for r in rows))
                flags = [r for r in rows if r.verdict in FLAGS]
                false_alarms += bool(flags)
                inconclusive += any(r.verdict == "inconclusive" for r in rows)
                for r in flags:
                    flagged_metrics[f"{r.scenario} :: {r.metric}"] = flagged_metrics.get(f"{r.scenario} :: {r.metric}", 0) + 1
                for slowdown in SLOWDOWNS:
                    for r in judge(base, slowed(new_side, rates, slowdown), family, units, stall_threshold):
                        # a rate of 0 (an expected failure's: nothing gets through) cannot be slowed
                        if (r.scenario, r.metric) in rates and r.p_value is not None and r.base_median:
                            kind = "steady" if (r.scenario, r.metric) in steady else "noisy"
                            for tally in (power["all"][slowdown], power[kind][slowdown]):
                                tally[1] += 1
                                tally[0] += r.verdict == REGRESSION
            label = f"{mode}/{family}"
            out["aa"][label] = {
                "comparisons": count, "false_alarms": false_alarms, "rate": false_alarms / count, "with_inconclusive": inconclusive,
                "tested_metrics_median": sorted(tested)[len(tested) // 2], "flagged": flagged_metrics,
            }
            for kind, name in (("all", "power"), ("steady", "power_steady"), ("noisy", "power_noisy")):
                out[name][label] = {f"-{int(s * 100)}%": (hit / total if total else None) for s, (hit, total) in power[kind].items()}
    return out


def format_table(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = [
        f"calibration: {result['metrics']} metrics ({result['throughput_metrics']} throughput) from {result['runs']} stored runs "
        f"(host class {env['host_class']}, kernel {env['kernel']}, backend {env['backend']}, engine {env['engine']})",
        f"{result['trials']} comparisons per row; history: the new run against up to {result['window']} other runs; "
        + (f"history×{result['new_runs']}: {result['new_runs']} new runs against the others; runs {result['new_runs']}:{result['new_runs']}: "
           f"{result['new_runs']} runs against {result['new_runs']} others (wgh compare --base R... --new R...); " if result["new_runs"] > 1 else "")
        + "one run: against one other run; "
        f"{'every change judged whatever the load' if result['stall_threshold'] is None else 'a change measured with a CPU stall of ' + format(result['stall_threshold'], '.0%') + ' or more is inconclusive, not an alarm'}",
        "",
        f"{'baseline/family':<16} {'tested':>6} {'A/A false alarms':>17} {'rate':>6} {'inconcl.':>8}   " + "  ".join(f"power {k:>4}" for k in ("-10%", "-20%", "-50%")),
    ]
    for label, aa in result["aa"].items():
        power = result["power"][label]
        lines.append(
            f"{label:<16} {aa['tested_metrics_median']:>6} {aa['false_alarms']:>17} {aa['rate']:>6.1%} {aa['with_inconclusive']:>8}   "
            + "  ".join(f"{'-' if power[k] is None else format(power[k], '.1%'):>10}" for k in ("-10%", "-20%", "-50%"))
        )
    steady = sum(sd < result["steady_below"] for sd in result["throughput_noise"].values())
    lines += ["", f"power by throughput kind: steady ({steady} metrics, run-to-run spread < {result['steady_below']:.0%}: rate limits) "
              f"and noisy ({len(result['throughput_noise']) - steady}: CPU-bound, unlimited)"]
    for label in result["aa"]:
        lines.append(f"{label:<16} steady " + "  ".join(_share(result["power_steady"][label][k]) for k in ("-10%", "-20%", "-50%"))
                     + "   noisy " + "  ".join(_share(result["power_noisy"][label][k]) for k in ("-10%", "-20%", "-50%")))
    for label, aa in result["aa"].items():
        for metric, times in sorted(aa["flagged"].items(), key=lambda item: -item[1])[:5]:
            lines.append(f"  {label}: falsely flagged {times}x: {metric}")
    return "\n".join(lines)


def _share(value: float | None) -> str:
    return f"{'-' if value is None else format(value, '.1%'):>6}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("history", nargs="?", type=Path, default=DEFAULT_INPUT, help="a history file (or folder) of one environment")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--window", type=int, default=20, help="runs in a history baseline (as wgh compare --window)")
    parser.add_argument("--new-runs", type=int, default=3, help="runs judged together in the history×N mode (default 3)")
    parser.add_argument("--families", nargs="+", default=["bh", "holm"], choices=("bh", "holm", "none"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--leave-out", nargs="+", default=[], metavar="RUN_ID", help="stored runs not to use (e.g. one taken beside other work)")
    parser.add_argument("--stall-threshold", type=float, default=0.5, help="as $WGH_STALL_THRESHOLD: a change measured stalled is inconclusive, not an alarm")
    parser.add_argument("--strict-load", action="store_true", help="judge every change whatever the load (no inconclusive)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    runs = [run for run in load_runs(args.history) if run["run_id"] not in set(args.leave_out)]
    if len(runs) < 3:
        raise SystemExit(f"{args.history}: {len(runs)} runs; calibrating needs at least 3")
    result = calibrate(
        runs, count=args.trials, window=args.window, families=args.families, seed=args.seed,
        stall_threshold=None if args.strict_load else args.stall_threshold, new_runs=args.new_runs,
    )
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
