"""A results history: runs kept over time, keyed by scenario, metric, kernel, backend,
engine and host class, so that a few new runs are judged against many stored ones
(`wgh history add`, `wgh compare --history`).

A history is a directory with one JSON Lines file per environment (host class,
kernel release, backend, engine); each line is one run: per scenario its status
counts and per metric its observations (one per repeat) and CPU stalls. Lines are
only ever appended, a run once (by run id), so a history can be kept in a CI cache
or artifact, or in git. The host class is what makes two machines' numbers
comparable: `$WGH_HOST_CLASS` when the run was taken (e.g. the CI runner's label),
else the machine's architecture, CPU count and model.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from harness.results import benchstore
from harness.results.compare import CompareReport, Series, Side, collect, combine_sides, compare_sides, per_run_side
from harness.results.load import ResultSet, ResultsError
from harness.results.stats import run_level

DEFAULT_WINDOW = 20  # runs: the newest of an environment's history form the baseline


def host_class_of(environment: dict[str, Any]) -> str:
    """The host class a run's environment recorded, or one derived from its machine."""
    named = environment.get("host_class")
    if named:
        return str(named)
    return f"{environment.get('machine') or '?'}, {environment.get('cpus') or '?'} CPUs, {environment.get('cpu') or '?'}"


@dataclass(frozen=True, order=True)
class HistoryKey:
    """What must match for runs to be one history."""

    host_class: str
    kernel: str
    backend: str
    engine: str

    @property
    def filename(self) -> str:
        parts = (self.host_class, self.kernel, self.backend, self.engine)
        return "__".join(re.sub(r"[^A-Za-z0-9.+-]+", "-", part).strip("-") or "-" for part in parts) + ".jsonl"

    def describe(self) -> str:
        return f"host class {self.host_class}, kernel {self.kernel}, backend {self.backend}, engine {self.engine}"

    def to_json(self) -> dict[str, str]:
        return {"host_class": self.host_class, "kernel": self.kernel, "backend": self.backend, "engine": self.engine}


def _backend(environment: dict[str, Any]) -> str:
    backend = environment.get("backend_requested") or "?"
    if backend == "auto":
        backend = str(environment.get("backend_auto_resolves_to") or "auto")
    command = environment.get("userspace_command")
    return f"{backend} ({command})" if command else backend


def _by_engine(result_set: ResultSet) -> dict[str, ResultSet]:
    """A run's scenarios split by the engine they ran on (one history each)."""
    by_engine: dict[str, list[dict[str, Any]]] = {}
    for scenario in result_set.data.get("scenarios", []):
        by_engine.setdefault(scenario.get("engine") or "netns", []).append(scenario)
    return {engine: ResultSet(result_set.label, result_set.path, {**result_set.data, "scenarios": scenarios}) for engine, scenarios in by_engine.items()}


def key_of(environment: dict[str, Any], engine: str, host_class: str | None = None) -> HistoryKey:
    """The history a run's scenarios on `engine` belong to, from its environment."""
    return HistoryKey(host_class or host_class_of(environment), str(environment.get("kernel_release") or "?"), _backend(environment), engine)


def _key(result_set: ResultSet, engine: str, host_class: str | None) -> HistoryKey:
    return key_of(result_set.data.get("environment") or {}, engine, host_class)


def _run_id(result_set: ResultSet) -> str:
    return str(result_set.data.get("run_id") or result_set.path)


def records(result_set: ResultSet, host_class: str | None = None) -> list[tuple[HistoryKey, dict[str, Any]]]:
    """A run as history lines: one per engine its scenarios ran on. `host_class`
    overrides the recorded one."""
    lines = []
    for engine, part in _by_engine(result_set).items():
        key = _key(result_set, engine, host_class)
        series, statuses = collect(part)
        by_scenario: dict[str, dict[str, Any]] = {name: {"status": counts, "metrics": {}} for name, counts in statuses.items()}
        for (scenario, metric), entry in series.items():
            by_scenario[scenario]["metrics"][metric] = {
                # 6 significant digits: more than any measurement here resolves, and a line of
                # the whole library stays small
                "unit": entry.unit, "values": [float(f"{v:.6g}") for v in entry.observations], "stalls": [round(v, 3) for v in entry.stalls],
            }
        lines.append((key, {
            "run_id": _run_id(result_set),
            "started": result_set.data.get("started"),
            "harness_commit": (result_set.data.get("environment") or {}).get("harness_commit"),
            "key": key.to_json(),
            "scenarios": by_scenario,
        }))
    return lines


def read_runs(path: Path) -> list[dict[str, Any]]:
    runs = []
    try:
        text = path.read_text()
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            run = json.loads(line)
        except ValueError as exc:
            raise ResultsError(f"{path}:{number}: not a history line: {exc}") from None
        if not isinstance(run, dict) or "scenarios" not in run or "key" not in run:
            raise ResultsError(f"{path}:{number}: not a history line (no 'key' or 'scenarios')")
        runs.append(run)
    return runs


def add(directory: Path, result_sets: Iterable[ResultSet], host_class: str | None = None) -> list[tuple[HistoryKey, str, bool]]:
    """Append each run to its environment's history: (key, run id, added) per line,
    added False where that run is already there."""
    if directory.is_dir() and not any(directory.glob("*.jsonl")) and benchstore.runs_in(directory):
        raise ResultsError(f"{directory}: a pytest-benchmark storage, which gains runs by pytest --benchmark-autosave: add these to a history folder of their own")
    directory.mkdir(parents=True, exist_ok=True)
    done = []
    for result_set in result_sets:
        for key, record in records(result_set, host_class):
            path = directory / key.filename
            known = {run["run_id"] for run in read_runs(path)} if path.exists() else set()
            fresh = record["run_id"] not in known
            if fresh:
                with path.open("a") as out:
                    out.write(json.dumps(record, sort_keys=True) + "\n")
            done.append((key, record["run_id"], fresh))
    return done


def _stored(directory: Path) -> dict[HistoryKey, list[dict[str, Any]]]:
    """Every stored run by environment: a history's JSON Lines files, or else, in a
    pytest-benchmark storage, the runs its saved files hold (harness.results.benchstore)."""
    found: dict[HistoryKey, list[dict[str, Any]]] = {}
    files = sorted(directory.glob("*.jsonl"))
    runs = [run for path in files for run in read_runs(path)] if files else benchstore.runs_in(directory)
    for run in runs:
        found.setdefault(HistoryKey(**run["key"]), []).append(run)
    return found


def _oldest_first(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(runs, key=lambda run: str(run.get("started") or ""))


def runs_of(directory: Path, key: HistoryKey) -> list[dict[str, Any]]:
    """Every stored run of one environment, oldest first."""
    return _oldest_first(_stored(directory).get(key, []))


def baseline(directory: Path, key: HistoryKey, *, window: int = DEFAULT_WINDOW, leave_out: Iterable[str] = ()) -> tuple[Side, int]:
    """The newest `window` runs of an environment as one side, and how many runs
    that is; the runs named in `leave_out` (those being judged) are not part of it."""
    return _baseline_of(runs_of(directory, key), window, leave_out)


def _baseline_of(runs: list[dict[str, Any]], window: int, leave_out: Iterable[str]) -> tuple[Side, int]:
    skip = set(leave_out)
    newest = [run for run in runs if run["run_id"] not in skip][-window:] if window > 0 else []
    return side_of(newest, per_run=True), len(newest)


def side_of(runs: Iterable[dict[str, Any]], *, per_run: bool = False) -> Side:
    """Stored runs (history lines) as one side of a comparison: every observation, or
    with `per_run` one per run (stats.run_level of its repeats; its median stall)."""
    series: dict[tuple[str, str], Series] = {}
    statuses: dict[str, dict[str, int]] = {}
    for run in runs:
        for scenario, entry in run["scenarios"].items():
            counts = statuses.setdefault(scenario, {})
            for status, count in entry.get("status", {}).items():
                counts[status] = counts.get(status, 0) + count
            for metric, measured in entry.get("metrics", {}).items():
                merged = series.setdefault((scenario, metric), Series(measured["unit"]))
                if per_run and measured["values"]:
                    merged.observations.append(run_level(measured["values"]))
                    merged.stalls.extend([statistics.median(measured["stalls"])] if measured.get("stalls") else [])
                else:
                    merged.observations.extend(measured["values"])
                    merged.stalls.extend(measured.get("stalls", []))
    return series, statuses


def keys(directory: Path) -> list[tuple[HistoryKey, int]]:
    """Each environment a history holds, with its number of runs."""
    return sorted((key, len(runs)) for key, runs in _stored(directory).items())


def compare_with_history(
    directory: Path, new_sets: list[ResultSet], *, window: int = DEFAULT_WINDOW, host_class: str | None = None, **judging: Any,
) -> CompareReport:
    """Judge new runs against the history of their own environments (one per engine
    they ran on; several environments are labelled with theirs). An environment the
    history does not hold is noted, not judged. `judging`: compare_sides's."""
    if not directory.is_dir():
        raise ResultsError(f"{directory}: no such history folder (wgh history add {directory} RESULTS... starts one)")
    leave_out = {_run_id(s) for s in new_sets}
    new_parts: dict[HistoryKey, list[ResultSet]] = {}
    for result_set in new_sets:
        for engine, part in _by_engine(result_set).items():
            new_parts.setdefault(_key(result_set, engine, host_class), []).append(part)
    stored = _stored(directory)  # read once: a pytest-benchmark storage is every file beneath it
    pairs, notes = [], []
    for key, parts in sorted(new_parts.items()):
        side, runs = _baseline_of(_oldest_first(stored.get(key, [])), window, leave_out)
        if not runs:
            held = "; ".join(f"{k.describe()} ({len(r)} runs)" for k, r in sorted(stored.items())) or "none"
            notes.append(f"{directory} holds no runs of {key.describe()}: its metrics are not judged (the history holds: {held})")
            continue
        notes.append(f"baseline: the newest {runs} run{'s' if runs != 1 else ''} of {key.describe()} in {directory}")
        # the unit is the run: each stored run's value of a metric against the new run's,
        # so the noise between runs (a machine's state, what else ran) is part of the test
        new_side = combine_sides(per_run_side(part) for part in parts)
        pairs.append((key.describe() if len(new_parts) > 1 else "", side, new_side))
    report = compare_sides(pairs, units="runs", **judging)
    report.notes = notes
    return report
