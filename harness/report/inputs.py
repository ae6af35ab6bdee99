"""Reading results for reports: the one place that knows the results.json layout.

Inputs are results directories, results.json files, `wgh matrix` summaries (which
expand to their combinations), or folders of runs (the shards of a run: merged into one). Everything downstream (tables, plots, Markdown) works
on the flat records built here, so a change of the results format is adapted here
only. Unknown keys are ignored; a measurement may carry `samples` (raw values, e.g.
every RTT of a probe stream, or one value per repeat) next to its `value`, or be a
bare number.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.results.load import ResultsError, load_result_sets


class ReportInputError(HarnessError):
    """An input that is not a results file, directory or matrix summary."""


@dataclass
class Metric:
    """One measurement of one step of one scenario case in one input."""

    key: str  # as the step recorded it, e.g. "tunnel.throughput" or "time_to_handshake"
    value: float | None  # the recorded value; with repeats, the median of theirs
    unit: str
    samples: list[float] = field(default_factory=list)  # raw samples (RTTs, per-second rates), all repeats
    step_index: int = 0
    step_kind: str = ""
    name: str = ""  # unique within its scenario: the key, or "step<N>.<key>" where steps repeat a key
    repeat_values: list[float] = field(default_factory=list)  # one value per repeat

    def __post_init__(self) -> None:
        self.name = self.name or self.key
        if not self.repeat_values and self.value is not None:
            self.repeat_values = [self.value]

    @property
    def leaf(self) -> str:
        """The measurement's kind without its `record` prefix: "throughput", "rtt", …"""
        return self.key.rsplit(".", 1)[-1]

    @property
    def repeats(self) -> int:
        return len(self.repeat_values)


@dataclass
class ScenarioRecord:
    id: str
    name: str
    case: str | None
    matrix: dict[str, Any]
    status: str
    error: str | None
    backends: dict[str, str]
    steps: list[dict[str, Any]]
    metrics: list[Metric]

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)


@dataclass
class RunInput:
    """One results.json: one kernel × backend × configuration."""

    path: Path
    run_id: str
    environment: dict[str, Any]
    scenarios: list[ScenarioRecord]
    summary: dict[str, int]
    started: str | None = None
    wall_seconds: float | None = None
    schema_version: int | None = None
    matrix_summary: Path | None = None  # the `wgh matrix` file that listed it
    label: str = ""  # unique among the inputs of one report; set by load_inputs
    notes: list[str] = field(default_factory=list)  # from reading it, e.g. a shard missing from a merged folder

    @property
    def kernel_release(self) -> str:
        return str(self.environment.get("kernel_release") or "unknown kernel")

    @property
    def backend(self) -> str:
        """The backend the scenarios actually used: what the nodes report, else what
        was requested (with `auto` resolved)."""
        used = {b for s in self.scenarios for b in s.backends.values()}
        if len(used) == 1:
            return used.pop()
        if len(used) > 1:
            return "mixed"
        requested = self.environment.get("backend_requested")
        if requested and requested != "auto":
            return str(requested)
        return str(self.environment.get("backend_auto_resolves_to") or requested or "unknown backend")

    @property
    def group(self) -> str:
        """What side-by-side comparisons group by: kernel release × backend."""
        return f"{self.kernel_release} / {self.backend}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _metric(key: str, raw: Any, step: dict[str, Any]) -> Metric | None:
    index, kind = int(step.get("index", 0) or 0), str(step.get("kind", ""))
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return Metric(key, float(raw), "", [], index, kind)
    if not isinstance(raw, dict):
        return None
    samples = [float(v) for v in raw.get("samples") or [] if _number(v) is not None]
    value = _number(raw.get("value"))
    if value is None and samples:
        value = statistics.median(samples)  # e.g. RTT streams record only their samples
    if value is None:
        return None
    # schema 2 names each measurement with a key unique within its scenario
    name = str(raw.get("key") or "")
    return Metric(key, value, str(raw.get("unit") or ""), samples, index, kind, name)


def _scenario(data: dict[str, Any]) -> ScenarioRecord:
    metrics: list[Metric] = []
    steps = [s for s in data.get("steps") or [] if isinstance(s, dict)]
    for step in steps:
        for key, raw in (step.get("measurements") or {}).items():
            metric = _metric(str(key), raw, step)
            if metric is not None:
                metrics.append(metric)
    repeated = {m.name for m in metrics if sum(1 for o in metrics if o.name == m.name) > 1}
    for metric in metrics:  # schema 1: e.g. three unprefixed pings each record `rtt_avg`
        if metric.name in repeated:
            metric.name = f"step{metric.step_index + 1}.{metric.key}"
    return ScenarioRecord(
        id=str(data.get("key") or data.get("id") or data.get("name") or "?"),
        name=str(data.get("name") or data.get("id") or "?"),
        case=data.get("case"),
        matrix=dict(data.get("matrix") or {}),
        status=str(data.get("status") or "unknown"),
        error=data.get("error"),
        backends=dict(data.get("backends") or {}),
        steps=steps,
        metrics=metrics,
    )


def _merge_repeats(records: list[ScenarioRecord]) -> list[ScenarioRecord]:
    """Repeated runs of one case (`wgh run --repeat N`: the same key several times in
    one file) become one record: each metric's value is the median of the repeats',
    `repeat_values` keeps them all and `samples` every raw sample. The outcome shown
    is the worst one."""
    by_id: dict[str, list[ScenarioRecord]] = {}
    for record in records:
        by_id.setdefault(record.id, []).append(record)
    merged = []
    rank = {"error": 0, "failed": 1, "inconclusive": 2, "unknown": 3, "skipped": 4, "passed": 5}
    for same in by_id.values():
        if len(same) == 1:
            merged.append(same[0])
            continue
        first = same[0]
        combined: dict[str, Metric] = {}
        for record in same:
            for metric in record.metrics:
                into = combined.get(metric.name)
                if into is None:
                    combined[metric.name] = Metric(
                        metric.key, metric.value, metric.unit, list(metric.samples), metric.step_index, metric.step_kind, metric.name
                    )
                else:
                    into.samples += metric.samples
                    into.repeat_values += metric.repeat_values
        for metric in combined.values():
            metric.value = statistics.median(metric.repeat_values)
        worst = min(same, key=lambda r: rank.get(r.status, 2))
        merged.append(
            ScenarioRecord(first.id, first.name, first.case, first.matrix, worst.status, worst.error, first.backends, first.steps, list(combined.values()))
        )
    return merged


def _run_input(path: Path, data: dict[str, Any], matrix_summary: Path | None, notes: list[str] | None = None) -> RunInput:
    scenarios = _merge_repeats([_scenario(s) for s in data.get("scenarios") or [] if isinstance(s, dict)])
    summary = data.get("summary") if isinstance(data.get("summary"), dict) else {}
    return RunInput(
        path=path,
        run_id=str(data.get("run_id") or path.parent.name),
        environment=dict(data.get("environment") or {}),
        scenarios=scenarios,
        summary={str(k): int(v) for k, v in summary.items() if isinstance(v, int)},
        started=data.get("started"),
        wall_seconds=_number(data.get("wall_seconds")),
        schema_version=data.get("schema_version"),
        matrix_summary=matrix_summary,
        notes=list(notes or []),
    )


def _expand(path: Path) -> list[RunInput]:
    """A results.json, a run folder, a matrix summary (one input per combination
    that wrote results) or a folder of runs (one merged input: the shards of a run),
    read and upgraded by harness.results.load."""
    try:
        sets = load_result_sets(path)
    except ResultsError as exc:
        raise ReportInputError(str(exc)) from None
    summary = path if path.is_file() and len(sets) and sets[0].label else None
    return [_run_input(s.path, s.data, summary, s.notes) for s in sets]


def load_inputs(paths: list[Path | str]) -> list[RunInput]:
    """Load every input (matrix summaries expand) and give each a unique label: its
    kernel release and backend, plus the run id where two inputs share those."""
    runs = [run for p in paths for run in _expand(Path(p))]
    if not runs:
        raise ReportInputError("no inputs")
    groups: dict[str, int] = {}
    for run in runs:
        groups[run.group] = groups.get(run.group, 0) + 1
    for run in runs:
        run.label = run.group if groups[run.group] == 1 else f"{run.group} ({run.run_id})"
    return runs
