"""The report's tables as plain data (rows of strings), shared by HTML and Markdown."""

from __future__ import annotations

from dataclasses import dataclass

from harness.kernels.names import release_key
from harness.report.inputs import Metric, RunInput

# The measurements worth a place in the summary cell, by their kind (the key without
# its `record` prefix), in the order they are shown. The full list is in the
# measurements table.
KEY_LEAVES = ("time_to_handshake", "throughput", "recovery", "time", "outage", "rtt_p50", "rtt_avg", "loss", "jitter")
MAX_KEY_METRICS = 6

OUTCOME_WORDS = {
    "passed": "passed", "failed": "FAILED", "inconclusive": "inconclusive (machine overloaded)", "error": "ERROR",
    "skipped": "skipped", "absent": "not run",
}


def format_value(value: float | None, unit: str) -> str:
    """A number with its unit, scaled for reading: 18388805 bit/s → '18.4 Mbit/s',
    0.0124 s → '12.4 ms'."""
    if value is None:
        return "-"
    if unit == "bit/s":
        for scale, name in ((1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {name}"
        return f"{value:.3g} bit/s"
    if unit == "s" and 0 < abs(value) < 1:
        return f"{value * 1000:.3g} ms"
    if unit == "%":
        return f"{value:.1f} %"
    if unit in ("", None):
        return f"{value:g}"
    if float(value).is_integer():
        return f"{int(value)} {unit}"
    return f"{value:.3g} {unit}"


def metric_label(metric: Metric) -> str:
    if metric.key == "time_to_handshake":
        return metric.name.replace("time_to_handshake", "handshake")
    return metric.name


def format_metric(metric: Metric) -> str:
    text = format_value(metric.value, metric.unit)
    if metric.repeats > 1:
        text += f" (median of {metric.repeats} runs)"
    return text


def key_metrics(metrics: list[Metric]) -> list[Metric]:
    ranked = [m for m in metrics if m.leaf in KEY_LEAVES and not (m.leaf == "time" and m.step_kind != "wait_until")]
    ranked.sort(key=lambda m: (KEY_LEAVES.index(m.leaf), m.step_index))
    return ranked[:MAX_KEY_METRICS]


@dataclass
class SummaryRow:
    scenario: str  # the case id, e.g. nat-keepalive[persistent_keepalive=1]
    name: str
    case: str
    cells: list[tuple[str, list[tuple[str, str]], str]]  # per input: (status, [("handshake", "12.4 ms"), …], error)


def scenario_ids(runs: list[RunInput]) -> list[str]:
    """Every case id of every input, in order of first appearance."""
    seen: dict[str, None] = {}
    for run in runs:
        for scenario in run.scenarios:
            seen.setdefault(scenario.id, None)
    return list(seen)


def summary_rows(runs: list[RunInput]) -> list[SummaryRow]:
    rows = []
    for sid in scenario_ids(runs):
        cells, name, case = [], sid, ""
        for run in runs:
            record = next((s for s in run.scenarios if s.id == sid), None)
            if record is None:
                cells.append(("absent", [], ""))
                continue
            name, case = record.name, record.case or ""
            shown = [(metric_label(m), format_metric(m)) for m in key_metrics(record.metrics)]
            error = (record.error or "").splitlines()[0][:200] if record.error else ""
            if not error and record.status in ("failed", "inconclusive"):
                failed = [s for s in record.steps if s.get("outcome") not in ("pass", "expected-fail")]
                error = "; ".join(f"step {int(s.get('index', 0)) + 1} {s.get('kind')}: {_outcome_with_load(s)}" for s in failed)[:200]
            cells.append((record.status, shown, error))
        rows.append(SummaryRow(sid, name, case, cells))
    return rows


def _outcome_with_load(step: dict) -> str:
    """A step's outcome, with the CPU stall it was measured under when it was inconclusive."""
    load = step.get("load") or {}
    if step.get("outcome") == "inconclusive" and load.get("cpu_stall") is not None:
        return f"inconclusive (CPU stalled {load['cpu_stall']:.0%} of {load.get('window_s', 0):.1f}s)"
    return str(step.get("outcome"))


def measurement_rows(runs: list[RunInput]) -> list[tuple[str, str, list[str]]]:
    """(case id, measurement key, value per input) for every measurement anywhere."""
    keys: dict[tuple[str, str], None] = {}
    for sid in scenario_ids(runs):
        for run in runs:
            for scenario in run.scenarios:
                if scenario.id == sid:
                    for metric in scenario.metrics:
                        keys.setdefault((sid, metric.name), None)
    rows = []
    for sid, key in keys:
        values = []
        for run in runs:
            record = next((s for s in run.scenarios if s.id == sid), None)
            metric = record.metric(key) if record else None
            values.append(format_metric(metric) if metric else "-")
        rows.append((sid, key, values))
    return rows


ENVIRONMENT_KEYS = (
    ("kernel_release", "kernel"),
    ("backend", "backend used"),
    ("wireguard_go_version", "wireguard-go"),
    ("wireguard_tools_version", "wireguard-tools"),
    ("harness_version", "harness"),
    ("cpu", "CPU"),
    ("cpus", "CPUs"),
    ("python", "Python"),
    ("kernel_wireguard", "kernel WireGuard available"),
    ("netem", "netem available"),
)


def environment_rows(runs: list[RunInput]) -> list[tuple[str, list[str]]]:
    """One row per environment property, one column per input. Properties the format
    gains later show up at the end without changes here."""

    def shown(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, dict) and set(value) == {"index", "count"}:  # a shard: 2/3
            return f"{value['index']}/{value['count']}"
        return str(value)

    rows = []
    for key, title in ENVIRONMENT_KEYS:
        if key == "backend":
            rows.append((title, [run.backend for run in runs]))
        else:
            rows.append((title, [shown(run.environment.get(key)) for run in runs]))
    known = {k for k, _ in ENVIRONMENT_KEYS}
    extra: dict[str, None] = {}
    for run in runs:
        for key, value in run.environment.items():
            if key not in known and (not isinstance(value, (dict, list)) or key == "shard"):
                extra.setdefault(key, None)
    rows += [(key.replace("_", " "), [shown(run.environment.get(key)) for run in runs]) for key in extra]
    rows.append(("run id", [run.run_id for run in runs]))
    rows.append(("started", [shown(run.started) for run in runs]))
    rows.append(("wall time", [format_value(run.wall_seconds, "s") for run in runs]))
    rows.append(("outcomes", [", ".join(f"{n} {s}" for s, n in run.summary.items()) or "-" for run in runs]))
    rows.append(("results file", [str(run.path) for run in runs]))
    return rows


# --- trends across kernels ---------------------------------------------------------------

# what is compared across inputs (side by side, and across kernels)
BAR_LEAVES = ("throughput", "recovery", "time", "time_to_handshake", "rtt_p50", "rtt_avg", "outage", "jitter")


def comparable(metric: Metric) -> bool:
    """A measurement worth comparing across inputs: one of BAR_LEAVES (a `time` only
    where it is how long a wait_until waited)."""
    return metric.leaf in BAR_LEAVES and not (metric.leaf == "time" and metric.step_kind != "wait_until")


def trend_metrics(runs: list[RunInput]) -> tuple[list[str], dict[tuple[str, str], dict[str, dict[str, Metric]]]]:
    """The kernels (oldest first) and, per (case, measurement), each backend's metric
    per kernel: only measurements at least two kernels have."""
    kernels = sorted({run.kernel_release for run in runs}, key=release_key)
    found: dict[tuple[str, str], dict[str, dict[str, Metric]]] = {}
    for run in runs:
        for scenario in run.scenarios:
            if scenario.status not in ("passed", "failed"):
                continue
            for metric in scenario.metrics:
                if metric.value is not None and comparable(metric):
                    found.setdefault((scenario.id, metric.name), {}).setdefault(run.backend, {})[run.kernel_release] = metric
    shared = {key: series for key, series in found.items() if len({k for by_kernel in series.values() for k in by_kernel}) >= 2}
    return kernels, shared


def kernel_trend_rows(runs: list[RunInput]) -> tuple[list[str], list[tuple[str, str, str, list[float | None], Metric]]]:
    """The trend as a table: (case, measurement, backend, value per kernel, a sample
    metric for its unit), for the Markdown summary."""
    kernels, shared = trend_metrics(runs)
    rows = []
    for (sid, name), series in sorted(shared.items()):
        for backend, by_kernel in sorted(series.items()):
            sample = next(iter(by_kernel.values()))
            rows.append((sid, name, backend, [by_kernel[k].value if k in by_kernel else None for k in kernels], sample))
    return kernels, rows
