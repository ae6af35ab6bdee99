"""Read results back: results.json of schema 1 or 2 (1 is upgraded in memory to the
shape of 2), a run's folder, a `wgh matrix` summary naming several runs, or a folder
of runs (e.g. the shards of one run, downloaded from CI), read as one merged run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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
    notes: list[str] = field(default_factory=list)  # worth telling the user (e.g. a shard missing from a merge)


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


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ResultsError(f"{path}: not JSON: {exc}") from None


def load_results(path: str | Path) -> dict[str, Any]:
    """One results.json (or the folder holding it), upgraded to schema 2."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    data = _read_json(path)
    if not isinstance(data, dict) or "scenarios" not in data:
        raise ResultsError(f"{path}: not a wgharness results file (no 'scenarios')")
    return upgrade(data)


def _matrix_summary(path: Path) -> dict[str, Any] | None:
    """The summary if `path` is a `wgh matrix` summary (a JSON file with `combinations`)."""
    data = _read_json(path)
    return data if isinstance(data, dict) and "combinations" in data else None


def _combinations(path: Path, summary: dict[str, Any]) -> list[tuple[str, Path]]:
    """(kernel spec/backend, results.json) of each combination that wrote results."""
    found = []
    for combo in summary["combinations"]:
        results = Path(combo["results"])
        if not results.is_absolute():
            results = path.parent / results
        elif not results.exists() and (path.parent / results.parent.name / results.name).exists():
            results = path.parent / results.parent.name / results.name  # written elsewhere, moved with its runs
        if results.exists():  # not: a combination that failed before writing results
            found.append((f"{combo.get('kernel_spec')}/{combo.get('backend')}", results))
    if not found:
        raise ResultsError(f"{path}: the matrix summary names no results file that exists")
    return found


def results_files(path: str | Path) -> list[Path]:
    """Every results.json a path names: the file itself, a run folder's, each
    combination's of a matrix summary, or every one beneath a folder of runs (sorted)."""
    path = Path(path)
    if path.is_file():
        summary = _matrix_summary(path)
        return [results for _, results in _combinations(path, summary)] if summary is not None else [path]
    if not path.is_dir():
        raise ResultsError(f"{path}: no such file or folder")
    if (path / "results.json").exists():
        return [path / "results.json"]
    runs = sorted(path.rglob("results.json"))
    if not runs:
        raise ResultsError(f"{path}: no results.json in this folder or beneath it (give a run's folder, e.g. results/<run-id>)")
    return runs


def newest_results(directory: str | Path) -> Path | None:
    """The results.json of the run written last in a results folder (`<dir>/<run-id>/`), if any."""
    try:
        runs = [p for p in Path(directory).glob("*/results.json") if p.is_file()]
        return max(runs, key=lambda p: (p.stat().st_mtime, str(p))) if runs else None
    except OSError:
        return None


def identity(environment: dict[str, Any]) -> str:
    """What runs merged into one set must share: kernel release and backend."""
    backend = environment.get("backend_requested") or "?"
    if backend == "auto":
        backend = f"auto → {environment.get('backend_auto_resolves_to')}"
    command = environment.get("userspace_command")
    return f"kernel {environment.get('kernel_release')}, backend {backend}" + (f" ({command})" if command else "")


def merge_runs(path: Path, documents: list[tuple[Path, dict[str, Any]]]) -> ResultSet:
    """Several runs of one environment (the shards of a run) as one result set, named
    after their folder: every scenario entry of each, the environment of the first
    (with `merged_from` telling how many runs and which shards), the earliest start and
    the longest wall time (shards run side by side). Raises ResultsError when the runs
    differ in kernel release or backend: those are separate inputs, not one run."""
    identities: dict[str, list[Path]] = {}
    for file, document in documents:
        identities.setdefault(identity(document.get("environment") or {}), []).append(file)
    if len(identities) > 1:
        kinds = "; ".join(f"{kind}: {', '.join(str(f if f.is_dir() else f.parent) for f in files)}" for kind, files in identities.items())
        raise ResultsError(f"{path}: its runs were taken in different environments ({kinds}); give each environment's runs as its own input")
    environment = {k: v for k, v in (documents[0][1].get("environment") or {}).items() if k != "shard"}
    shards = [d.get("environment", {}).get("shard") for _, d in documents]
    described, notes = f"{len(documents)} runs", []
    if any(shards):
        counts = {s["count"] for s in shards if s}
        seen = sorted((s["index"], s["count"]) for s in shards if s)
        described += ": shards " + ", ".join(f"{i}/{n}" for i, n in seen)
        if len(counts) == 1:
            count = counts.pop()
            missing = [f"{i}/{count}" for i in range(1, count + 1) if (i, count) not in seen]
            twice = sorted({f"{i}/{n}" for i, n in seen if seen.count((i, n)) > 1})
            if missing:
                notes.append(f"{path}: shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing: their scenarios are absent")
            if twice:
                notes.append(f"{path}: shard{'s' if len(twice) > 1 else ''} {', '.join(twice)} more than once: their runs count as repeats")
        else:
            notes.append(f"{path}: shards of different counts ({', '.join(map(str, sorted(counts)))}) merged")
        if not all(shards):
            notes.append(f"{path}: sharded and unsharded runs merged")
    environment["merged_from"] = described
    scenarios = [entry for _, document in documents for entry in document.get("scenarios") or []]
    summary: dict[str, int] = {}
    for entry in scenarios:
        summary[entry["status"]] = summary.get(entry["status"], 0) + 1
    started = [d["started"] for _, d in documents if d.get("started")]
    walls = [d["wall_seconds"] for _, d in documents if isinstance(d.get("wall_seconds"), (int, float))]
    merged = {
        "schema_version": SUPPORTED_SCHEMA_VERSIONS[-1],
        "run_id": path.name,
        "started": min(started) if started else None,
        "wall_seconds": max(walls) if walls else None,
        "summary": summary,
        "environment": environment,
        "scenarios": scenarios,
    }
    return ResultSet("", path, merged, notes)


def load_result_sets(path: str | Path) -> list[ResultSet]:
    """A results.json, a run folder, a matrix summary (`<stamp>-matrix.json`, one
    result set per kernel × backend combination that produced results), or a folder
    of runs: one result set merging every results.json beneath it (`merge_runs`), or
    the only one; one per environment (labelled with it) where their kernels or
    backends differ."""
    path = Path(path)
    if path.is_file():
        summary = _matrix_summary(path)
        if summary is not None:
            return [ResultSet(label, results, load_results(results)) for label, results in _combinations(path, summary)]
        return [ResultSet("", path, load_results(path))]
    files = results_files(path)
    if len(files) == 1:
        return [ResultSet("", files[0], load_results(files[0]))]
    documents = [(file, load_results(file)) for file in files]
    by_environment: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    for file, document in documents:
        by_environment.setdefault(identity(document.get("environment") or {}), []).append((file, document))
    if len(by_environment) == 1:
        return [merge_runs(path, documents)]
    # runs of several environments (e.g. a CI shard's runs on the runner and, for the
    # netem cases, in a VM): one result set each, named by its environment, so that
    # reports show them side by side and comparisons pair them
    note = f"{path}: runs of {len(by_environment)} environments, each its own input ({'; '.join(by_environment)})"
    sets = []
    for environment, runs in by_environment.items():
        one = merge_runs(path, runs) if len(runs) > 1 else ResultSet("", runs[0][0], runs[0][1])
        sets.append(ResultSet(environment, one.path, one.data, [note, *one.notes]))
    return sets
