"""pytest-benchmark's storage as a results history: every saved file
(`--benchmark-autosave`, `--benchmark-save`; `.benchmarks/<machine>/NNNN_*.json`) is
one run, in the shape of a history line (harness.results.history), so that `wgh
compare --history .benchmarks NEW...` and `wgh history show .benchmarks` read it.

The entries harness.results.bench feeds carry what a history needs in `extra_info`:
`history_key` (host class, kernel, backend, engine of the run), the scenario, and
each repeat's values (timings in `values`; every other measurement in the
`scenario_steps` entry's `measurements`). Entries of plain benchmark tests, and
scenario entries saved before `history_key` was recorded, are not runs of a history
and are left out. A storage holds only passed repeats: a case's status counts are
its repeats, passed; no CPU stalls are stored, so the overload guard judges the new
side's alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.results.load import ResultsError

STEPS = "scenario_steps"  # the wall time of a case's steps: not a metric of a history


def runs_in(directory: Path) -> list[dict[str, Any]]:
    """The runs of every saved file beneath `directory` (one per file and environment)."""
    runs = []
    for path in sorted(directory.rglob("*.json")):
        runs += runs_of_file(path)
    return runs


def runs_of_file(path: Path) -> list[dict[str, Any]]:
    """One saved pytest-benchmark file as history runs: [] if it is not one, or holds
    no wgharness entry with a history key."""
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError:
        return []  # not JSON: not a saved run
    if not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list):
        return []
    by_key: dict[str, dict[str, Any]] = {}
    for entry in document["benchmarks"]:
        extra = entry.get("extra_info") or {}
        if not extra.get("wgharness") or not isinstance(extra.get("history_key"), dict):
            continue
        key = json.dumps(extra["history_key"], sort_keys=True)
        run = by_key.setdefault(key, {
            "run_id": f"{path.parent.name}/{path.stem}",
            "started": document.get("datetime"),
            "harness_commit": (document.get("commit_info") or {}).get("id"),
            "key": extra["history_key"],
            "scenarios": {},
        })
        scenario = run["scenarios"].setdefault(extra["scenario"], {"status": {"passed": int(extra.get("repeats") or 0)}, "metrics": {}})
        metrics = scenario["metrics"]
        if extra.get("metric") == STEPS:
            for name, measured in (extra.get("measurements") or {}).items():
                if measured.get("values"):
                    metrics[name] = {"unit": measured["unit"], "values": list(measured["values"]), "stalls": []}
        else:
            values = extra.get("values") or (entry.get("stats") or {}).get("data")
            if values:
                metrics[extra["metric"]] = {"unit": extra.get("unit", "s"), "values": list(values), "stalls": []}
    return list(by_key.values())
