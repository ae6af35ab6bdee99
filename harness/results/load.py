"""Read results back: results.json of schema 1 or 2 (1 is upgraded in memory to the
shape of 2), a run's folder, or a `wgh matrix` summary naming several runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.results.metrics import metric_keys

SUPPORTED_SCHEMA_VERSIONS = (1, 2)


class ResultsError(HarnessError, ValueError):
    """A path that is not a results file, folder or matrix summary we can read."""


@dataclass
class ResultSet:
    """One run's results.json; `label` names it within a matrix (kernel/backend),
    empty for a plain run."""

    label: str
    path: Path
    data: dict[str, Any]


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a results document to the current schema (2), in place."""
    version = data.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise ResultsError(f"unsupported results schema_version {version!r} (this harness reads {SUPPORTED_SCHEMA_VERSIONS})")
    if version == 1:
        # 1 had no keys, repeats or artifact pointers; its values are unchanged in 2
        for scenario in data.get("scenarios", []):
            scenario.setdefault("key", scenario["id"])
            scenario.setdefault("repeat", 1)
            scenario.setdefault("repeats", 1)
            scenario.setdefault("run_id", "")
            scenario.setdefault("artifacts", [])
            keys = metric_keys(scenario.get("steps", []))
            for step in scenario.get("steps", []):
                step.setdefault("artifacts", [])
                for name, measurement in step.get("measurements", {}).items():
                    measurement.setdefault("key", keys[(step["index"], name)])
        data["environment"].setdefault("harness_commit", None)
        data["schema_version"] = 2
    return data


def load_results(path: str | Path) -> dict[str, Any]:
    """One results.json (or the folder holding it), upgraded to schema 2."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ResultsError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or "scenarios" not in data:
        raise ResultsError(f"{path}: not a wgharness results file (no 'scenarios')")
    return upgrade(data)


def load_result_sets(path: str | Path) -> list[ResultSet]:
    """A results.json, a run folder, or a matrix summary (`<stamp>-matrix.json`,
    one result set per kernel × backend combination that produced results)."""
    path = Path(path)
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise ResultsError(f"{path}: not JSON: {exc}") from None
        if isinstance(data, dict) and "combinations" in data:
            sets = []
            for combo in data["combinations"]:
                results = Path(combo["results"])
                if not results.is_absolute():
                    results = path.parent / results
                if not results.exists():  # a combination that failed before writing results
                    continue
                label = f"{combo.get('kernel_spec')}/{combo.get('backend')}"
                sets.append(ResultSet(label, results, load_results(results)))
            if not sets:
                raise ResultsError(f"{path}: the matrix summary names no results file that exists")
            return sets
    elif not path.is_dir():
        raise ResultsError(f"{path}: no such file or folder")
    elif not (path / "results.json").exists():
        raise ResultsError(f"{path}: no results.json in this folder (give a run's folder, e.g. results/<run-id>)")
    resolved = path / "results.json" if path.is_dir() else path
    return [ResultSet("", resolved, load_results(resolved))]
