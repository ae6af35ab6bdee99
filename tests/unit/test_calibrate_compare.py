"""benchmarks/calibrate_compare.py on synthetic stored runs: its A/A comparisons find
no change where there is none, its injected slowdowns are found, and a metric that
really differs between runs (a drifting one) shows up as a false alarm: the counts
are the comparisons', not assumed."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "calibrate_compare.py"
_spec = importlib.util.spec_from_file_location("calibrate_compare", SCRIPT)
calibrate_compare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(calibrate_compare)

KEY = {"host_class": "test", "kernel": "6.1", "backend": "kernel", "engine": "netns"}


def stored_runs(rng: random.Random, runs: int = 8, drift: bool = False) -> list[dict]:
    """`runs` runs of 3 repeats: 30 quiet metrics (5% noise) and 2 throughputs; with
    `drift`, one metric's level jumps from run to run (a machine state that differs)."""
    out = []
    for index in range(runs):
        metrics = {f"m{i}.time": {"unit": "s", "values": [rng.gauss(1.0, 0.05) for _ in range(3)], "stalls": []} for i in range(30)}
        for name in ("bulk.throughput", "udp.throughput"):
            metrics[name] = {"unit": "bit/s", "values": [rng.gauss(100e6, 3e6) for _ in range(3)], "stalls": []}
        if drift:
            level = 1.0 if index % 2 else 3.0
            metrics["drift.time"] = {"unit": "s", "values": [rng.gauss(level, 0.01) for _ in range(3)], "stalls": []}
        out.append({"run_id": f"r{index}", "started": f"2026-12-0{index + 1}", "key": KEY, "scenarios": {"case": {"status": {"passed": 3}, "metrics": metrics}}})
    return out


def test_a_quiet_history_gives_no_false_alarms_and_finds_the_slowdowns():
    result = calibrate_compare.calibrate(stored_runs(random.Random(1)), count=30, window=20, families=["bh"])
    assert result["metrics"] == 32 and result["throughput_metrics"] == 2
    assert result["aa"]["history/bh"]["false_alarms"] == 0
    assert result["aa"]["history/bh"]["tested_metrics_median"] == 32
    power = result["power"]["history/bh"]
    # the unit is the run: 7 runs whose values spread ~1.7% (3% a repeat, 3 repeats): 20%
    # is far outside that, 10% only just, against 32 metrics' family
    assert power["-50%"] == 1.0 and power["-20%"] == 1.0 and 0 < power["-10%"] < 1.0
    assert result["power"]["one run/bh"]["-50%"] == 1.0
    # 3 new runs judged together against the 5 others: found as surely; against only 3
    # (4 degrees of freedom, 2 slowed metrics in a family of 32) most of the time
    assert result["new_runs"] == 3
    assert result["power"]["history×3/bh"]["-20%"] == 1.0 and result["power"]["runs 3:3/bh"]["-20%"] >= 0.8


def test_groups_of_runs_raise_false_alarms_by_chance_only():
    """Nothing differs between the stored runs, so a flag is chance: over 3 histories
    of 8 runs, 30 comparisons each (drawn from 56 groups of 3: a group whose runs
    happen to lie high is drawn more than once), at most 5% of comparisons."""
    for mode in ("history×3/bh", "runs 3:3/bh"):
        alarms = sum(
            calibrate_compare.calibrate(stored_runs(random.Random(seed)), count=30, window=20, families=["bh"])["aa"][mode]["false_alarms"]
            for seed in (1, 2, 3)
        )
        assert alarms <= 0.05 * 90, (mode, alarms)


def test_a_drifting_metric_is_counted_as_the_false_alarm_it_is():
    result = calibrate_compare.calibrate(stored_runs(random.Random(2), drift=True), count=30, window=20, families=["bh"])
    aa = result["aa"]["one run/bh"]
    assert aa["false_alarms"] > 0 and set(aa["flagged"]) == {"case :: drift.time"}


def test_the_script_prints_its_table(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps(run) + "\n" for run in stored_runs(random.Random(3), runs=4)))
    done = subprocess.run([sys.executable, str(SCRIPT), str(path), "--trials", "5", "--json", str(tmp_path / "out.json")], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "calibration: 32 metrics (2 throughput) from 4 stored runs" in done.stdout
    assert "history/holm" in done.stdout and "history×3/holm" not in done.stdout and json.loads((tmp_path / "out.json").read_text())["trials"] == 5
