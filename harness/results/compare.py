"""`wgh compare BASE NEW`: scenario by scenario, metric by metric, is NEW worse?

The unit of evidence is one run of a scenario case: each repeat (`--repeat N`)
contributes one observation per metric (its value, or the median of its samples
when it only has samples). The baseline is another run (or several), or a results
history (harness.results.history: every stored run of the same scenario, metric,
kernel, backend, engine and host class). Per metric, a difference is only called a
regression or an improvement when all of these hold:

- the relative change of the medians is at least `threshold` (default 5%) in
  the metric's direction (see harness.results.metrics.direction);
- the absolute change is above the metric's resolution floor (`MIN_ABS`: 5 ms for
  times in s, 0.05 ms for RTTs, 1 point for percentages) — below it a relative
  change of a tiny number is noise of the clock or the scheduler;
- the two sides differ by the t-test of harness.results.stats (on logarithms), with
  its p-value adjusted over every metric of the comparison (`family`: Benjamini–
  Hochberg by default, or Holm) below `alpha` (default 0.01).

3 runs a side are enough (a history gives the test many more on the base side). With
fewer than `min_samples` (default 3) on a side, a metric is "insufficient samples",
whatever the change.

A difference that passes all of these while the machine was overloaded when it was
measured is called *inconclusive (machine overloaded)* instead. Overloaded: the median
CPU stall of a side's observations (recorded with each step by harness.pressure) at or
above the stall threshold (default 0.5) and 0.2 above the other side's, or at or above
0.9 (a step that fills the CPU by itself stalls as much on both sides; at saturation
that cannot be told from a hog beside it): on a shared runner a CPU hog beside the
run stretches handshake times and lowers rates as a real regression would, and the
two cannot be told apart. It is not a regression (exit 0); `--strict-load` (or
WGH_STRICT_LOAD=1) judges it whatever the load.

The false-alarm rate and the power, measured on stored runs of the whole library, are
in docs/regressions.md (benchmarks/calibrate_compare.py).
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from harness.results.load import ResultSet
from harness.results.metrics import Direction, direction, observation
from harness.results.stats import adjust, location_test, run_level, testable

MIN_STORED_RUNS = 3  # a history baseline's least: each run one observation, 2 degrees of freedom against the new run
MIN_ABS = {"s": 0.005, "ms": 0.05, "%": 1.0}  # resolution floors, by unit

REGRESSION, IMPROVEMENT, CHANGED, UNCHANGED, INSUFFICIENT, MISSING, OVERLOADED = (
    "regression",
    "improvement",
    "changed",
    "unchanged",
    "insufficient samples",
    "missing",
    "inconclusive",
)


@dataclass
class Series:
    """Every observation of one metric of one scenario case in one result set."""

    unit: str
    observations: list[float] = field(default_factory=list)
    stalls: list[float] = field(default_factory=list)  # CPU stall share of the steps that recorded them, where known


@dataclass
class Comparison:
    group: str  # matrix combination (kernel/backend), "" for plain runs
    scenario: str
    metric: str
    unit: str
    direction: str
    base: list[float]
    new: list[float]
    base_median: float | None = None
    new_median: float | None = None
    change: float | None = None  # relative change of the medians, (new - base) / |base|
    ci: tuple[float, float] | None = None  # 95% interval of the relative change (of the geometric means, for positive metrics)
    p_value: float | None = None  # the t-test's, two-sided (harness.results.stats)
    p_adjusted: float | None = None  # over the comparison's family of metrics
    base_stall: float | None = None  # median CPU stall share while the observations were taken, where recorded
    new_stall: float | None = None
    verdict: str = UNCHANGED
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ci"] = list(self.ci) if self.ci else None
        return data


@dataclass
class StatusChange:
    group: str
    scenario: str
    base: dict[str, int]
    new: dict[str, int]
    verdict: str


@dataclass
class CompareReport:
    threshold: float
    alpha: float
    min_samples: int
    rows: list[Comparison]
    statuses: list[StatusChange]
    family: str = "bh"
    notes: list[str] = field(default_factory=list)
    units: str = "repeats"  # or "runs": each observation a whole run's value (against a history)

    @property
    def regressions(self) -> list[Comparison | StatusChange]:
        return [r for r in self.rows if r.verdict == REGRESSION] + [s for s in self.statuses if s.verdict == REGRESSION]

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.verdict] = counts.get(row.verdict, 0) + 1
        return {
            "threshold": self.threshold,
            "alpha": self.alpha,
            "family": self.family,
            "units": self.units,
            "min_samples": self.min_samples,
            "counts": counts,
            "regressions": len(self.regressions),
            "metrics": [r.to_json() for r in self.rows],
            "statuses": [asdict(s) for s in self.statuses],
            "notes": self.notes,
        }


# --- judging ------------------------------------------------------------------------


def measure(row: Comparison, *, min_samples: int, units: str = "repeats") -> Comparison:
    """Fill in medians, change, and (with enough runs a side) the test's p-value and
    interval of one metric; its verdict waits for the family's (see decide).
    `units`: what an observation is, a repeat (run against run) or a whole run (against
    a history: each stored run's value against the new run's)."""
    base, new = row.base, row.new
    row.base_median = statistics.median(base) if base else None
    row.new_median = statistics.median(new) if new else None
    if not base or not new:
        row.verdict, row.note = MISSING, "only in " + ("new" if new else "base")
        return row
    difference = row.new_median - row.base_median
    if row.base_median != 0:
        row.change = difference / abs(row.base_median)
    elif difference == 0:
        row.change = 0.0
    if units == "runs" and len(base) < max(min_samples, MIN_STORED_RUNS):
        row.verdict = INSUFFICIENT
        row.note = f"{len(base)} stored run{'s' if len(base) != 1 else ''} of this metric: at least {max(min_samples, MIN_STORED_RUNS)} for a history baseline"
        return row
    if units == "repeats" and (len(base) < min_samples or len(new) < min_samples or not testable(len(base), len(new))):
        row.verdict = INSUFFICIENT
        row.note = f"{len(base)} vs {len(new)} runs: at least {min_samples} a side, use --repeat"
        return row
    test = location_test(base, new)
    row.p_value, row.ci = test.p_value, test.ci
    return row


def decide(
    row: Comparison,
    *,
    threshold: float,
    alpha: float,
    min_abs: dict[str, float],
    stall_threshold: float | None = None,
) -> Comparison:
    """The verdict of a measured metric whose family-adjusted p-value is set.
    `stall_threshold`: a regression or improvement measured with either side's median
    stall at or above it is inconclusive (None: judged whatever the load)."""
    if row.p_adjusted is None:
        return row
    difference = row.new_median - row.base_median
    floor = min_abs.get(row.unit, 0.0)
    if row.change is None:  # a zero baseline: no relative change, judge the absolute one
        big = abs(difference) > floor
    else:
        big = abs(row.change) >= threshold and abs(difference) > floor
    if not big:
        row.verdict = UNCHANGED
        if abs(difference) <= floor and difference:
            row.note = f"below the {floor:g} {row.unit} resolution"
    elif row.p_adjusted >= alpha:
        row.verdict, row.note = UNCHANGED, f"not significant, p={row.p_adjusted:.3g} in the family"
    elif row.direction == Direction.NONE.value:
        row.verdict = CHANGED
    else:
        worse = difference > 0 if row.direction == Direction.LOWER.value else difference < 0
        row.verdict = REGRESSION if worse else IMPROVEMENT
        if stall_threshold is not None and _overloaded(row, stall_threshold):
            row.note = f"machine overloaded: CPU stall {_share(row.base_stall)} base, {_share(row.new_stall)} new; " \
                f"would be {'a regression' if worse else 'an improvement'}: rerun on a quiet machine, or --strict-load"
            row.verdict = OVERLOADED
    return row


def judge_family(
    rows: list[Comparison],
    *,
    threshold: float,
    alpha: float,
    family: str,
    min_samples: int,
    min_abs: dict[str, float],
    stall_threshold: float | None = None,
    units: str = "repeats",
) -> list[Comparison]:
    """Judge every metric of one comparison: each one's test, then the p-values
    adjusted over all the metrics that were tested (`family`, see stats.adjust), so
    that a suite of hundreds of metrics raises no more false alarms than one."""
    for row in rows:
        measure(row, min_samples=min_samples, units=units)
    tested = [row for row in rows if row.p_value is not None]
    for row, adjusted in zip(tested, adjust([row.p_value for row in tested], family)):
        row.p_adjusted = adjusted
        decide(row, threshold=threshold, alpha=alpha, min_abs=min_abs, stall_threshold=stall_threshold)
    return rows


# A step's processes wait for the CPU by themselves when they fill it (a CPU-bound
# iperf3 beside wireguard-go stalls 50-70%, or ~98%, on 2 idle cores): that share is the
# step's own, and it shows on both sides. Load from outside is what one side stalled
# beyond the other. At SATURATED no hog can raise a stall further, so PSI cannot tell
# the two apart there.
SATURATED_STALL = 0.9
STALL_MARGIN = 0.2


def _overloaded(row: Comparison, threshold: float) -> bool:
    """Was either side measured with load from outside? Its stall at or above
    `threshold`, and (where both sides' stalls are known, below saturation) above the
    other side's by STALL_MARGIN: the same step stalling as much on both sides is its
    own demand, not a machine busy with something else."""
    stalls = [stall for stall in (row.base_stall, row.new_stall) if stall is not None]
    if not stalls or max(stalls) < threshold:
        return False
    if len(stalls) < 2 or max(stalls) >= SATURATED_STALL:
        return True
    return abs(row.new_stall - row.base_stall) >= STALL_MARGIN


def _share(stall: float | None) -> str:
    return "unknown" if stall is None else f"{stall:.0%}"


# --- collecting and matching ----------------------------------------------------------


def collect(result_set: ResultSet) -> tuple[dict[tuple[str, str], Series], dict[str, dict[str, int]]]:
    """(scenario key, metric key) → Series over every passed repeat, and each
    scenario's status counts. Measurements of failed or errored runs are left out:
    a broken run's numbers describe the breakage, not the configuration."""
    series: dict[tuple[str, str], Series] = {}
    statuses: dict[str, dict[str, int]] = {}
    for scenario in result_set.data.get("scenarios", []):
        key = scenario.get("key", scenario["id"])
        counts = statuses.setdefault(key, {})
        counts[scenario["status"]] = counts.get(scenario["status"], 0) + 1
        if scenario["status"] != "passed":
            continue
        for step in scenario.get("steps", []):
            for name, measurement in step.get("measurements", {}).items():
                value = observation(measurement)
                if value is None:
                    continue
                metric = measurement.get("key", name)
                entry = series.setdefault((key, metric), Series(measurement["unit"]))
                entry.observations.append(value)
                stall = (step.get("load") or {}).get("cpu_stall")
                if stall is not None:
                    entry.stalls.append(float(stall))
    return series, statuses


def one_case(sets: Iterable[ResultSet], case_id: str, key: str) -> list[ResultSet]:
    """Only the runs of case `case_id` (an id such as 'road-warriors[v1]', or a matrix
    case's own name), keyed `key`: so that two cases, of one run or of two, are compared
    with each other (`wgh compare --cases`). Raises ValueError when none is there."""
    picked = []
    for s in sets:
        scenarios = [dict(sc, key=key) for sc in s.data.get("scenarios", []) if case_id in (sc.get("id"), sc.get("case"))]
        if scenarios:
            picked.append(dataclasses.replace(s, data={**s.data, "scenarios": scenarios}))
    if not picked:
        known = sorted({sc.get("id") for s in sets for sc in s.data.get("scenarios", [])})
        raise ValueError(f"no runs of case {case_id!r} (there: {', '.join(known) or 'none'})")
    return picked


def _by_group(sets: Iterable[ResultSet]) -> dict[str, list[ResultSet]]:
    groups: dict[str, list[ResultSet]] = {}
    for s in sets:
        groups.setdefault(s.label, []).append(s)
    return groups


Side = tuple[dict[tuple[str, str], Series], dict[str, dict[str, int]]]  # collect()'s: series and status counts


def compare(base_sets: list[ResultSet], new_sets: list[ResultSet], **judging: Any) -> CompareReport:
    """Compare two result sets. Matrix summaries are matched combination by
    combination (by kernel spec/backend label); a plain run on one side is compared
    with every combination of the other. `judging`: compare_sides's options."""
    base_groups, new_groups = _by_group(base_sets), _by_group(new_sets)
    if len(base_groups) == 1 and len(new_groups) == 1:
        pairs = [("", base_groups.popitem()[1], new_groups.popitem()[1])]
    elif len(base_groups) == 1:
        only = next(iter(base_groups.values()))
        pairs = [(label, only, sets) for label, sets in new_groups.items()]
    elif len(new_groups) == 1:
        only = next(iter(new_groups.values()))
        pairs = [(label, sets, only) for label, sets in base_groups.items()]
    else:
        labels = list(dict.fromkeys(list(base_groups) + list(new_groups)))
        pairs = [(label, base_groups.get(label, []), new_groups.get(label, [])) for label in labels]
    return compare_sides([(label, merge_sides(base_side), merge_sides(new_side)) for label, base_side, new_side in pairs], **judging)


def per_run_side(result_set: ResultSet) -> Side:
    """One run (a result set) as a side with one observation per metric: the run's
    (stats.run_level of its repeats, with their median stall)."""
    series, statuses = collect(result_set)
    return {
        key: Series(entry.unit, [run_level(entry.observations)], [statistics.median(entry.stalls)] if entry.stalls else [])
        for key, entry in series.items() if entry.observations
    }, statuses


def compare_runs(base_runs: list[ResultSet], new_runs: list[ResultSet], **judging: Any) -> CompareReport:
    """Separate runs against separate runs, each run one observation of each metric:
    the noise between runs (a machine's state, what else ran) is in the test, as
    against a history. `judging`: compare_sides's."""
    sides = [combine_sides(per_run_side(run) for run in runs) for runs in (base_runs, new_runs)]
    return compare_sides([("", sides[0], sides[1])], units="runs", **judging)


def compare_sides(
    pairs: list[tuple[str, Side, Side]],
    *,
    threshold: float = 0.05,
    alpha: float = 0.01,
    family: str = "bh",
    min_samples: int = 3,
    min_abs: dict[str, float] | None = None,
    stall_threshold: float | None = None,
    units: str = "repeats",
) -> CompareReport:
    """Compare (label, base, new) sides, each a Side (runs' or a history's): status
    changes per scenario, and every metric judged in one family (judge_family).
    `units`: "runs" when each observation is a whole run's value (see measure)."""
    floors = dict(MIN_ABS, **(min_abs or {}))
    rows: list[Comparison] = []
    status_rows: list[StatusChange] = []
    for label, (base_series, base_status), (new_series, new_status) in pairs:
        for scenario in dict.fromkeys(list(base_status) + list(new_status)):
            b, n = base_status.get(scenario, {}), new_status.get(scenario, {})
            verdict = UNCHANGED
            if b.get("passed") and n and not n.get("passed") and any(n.get(s) for s in ("failed", "error")):
                verdict = REGRESSION
            elif n.get("passed") and b and not b.get("passed") and any(b.get(s) for s in ("failed", "error")):
                verdict = IMPROVEMENT
            if b != n:
                status_rows.append(StatusChange(label, scenario, b, n, verdict))
        for scenario, metric in dict.fromkeys(list(base_series) + list(new_series)):
            bs, ns = base_series.get((scenario, metric)), new_series.get((scenario, metric))
            unit = (bs or ns).unit
            rows.append(Comparison(
                label, scenario, metric, unit, direction(metric, unit).value,
                bs.observations if bs else [], ns.observations if ns else [],
                base_stall=_median(bs.stalls) if bs else None, new_stall=_median(ns.stalls) if ns else None,
            ))
    judge_family(rows, threshold=threshold, alpha=alpha, family=family, min_samples=min_samples, min_abs=floors, stall_threshold=stall_threshold, units=units)
    return CompareReport(threshold, alpha, min_samples, rows, status_rows, family, units=units)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def merge_sides(sets: list[ResultSet]) -> Side:
    """collect() over several result sets, as one side."""
    return combine_sides(collect(result_set) for result_set in sets)


def combine_sides(sides: Iterable[Side]) -> Side:
    """Several sides as one: every observation and stall of each metric, status counts added."""
    series: dict[tuple[str, str], Series] = {}
    statuses: dict[str, dict[str, int]] = {}
    for part_series, part_statuses in sides:
        for key, entry in part_series.items():
            merged = series.setdefault(key, Series(entry.unit))
            merged.observations.extend(entry.observations)
            merged.stalls.extend(entry.stalls)
        for scenario, counts in part_statuses.items():
            total = statuses.setdefault(scenario, {})
            for status, count in counts.items():
                total[status] = total.get(status, 0) + count
    return series, statuses


# --- output ------------------------------------------------------------------------------

_MARK = {REGRESSION: "REGRESSION", IMPROVEMENT: "improvement", CHANGED: "changed", UNCHANGED: "unchanged", INSUFFICIENT: "insufficient samples", MISSING: "missing", OVERLOADED: "inconclusive"}


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "bit/s":
        return f"{value / 1e6:.2f} Mbit/s"
    return f"{value:.4g} {unit}"


def format_report(report: CompareReport, *, verbose: bool = False) -> str:
    """A table: every metric that changed, or could not be judged; with verbose,
    every metric."""
    header = ["scenario", "metric", "base", "new", "change", "95% CI", "p (family)", "verdict"]
    lines: list[list[str]] = []
    for r in report.rows:
        if not verbose and r.verdict == UNCHANGED and not r.note.startswith("not significant"):
            continue
        scenario = f"{r.group}: {r.scenario}" if r.group else r.scenario
        scenario = scenario if len(scenario) <= 60 else scenario[:59] + "…"
        change = f"{r.change:+.1%}" if r.change is not None else "-"
        ci = f"[{r.ci[0]:+.1%}, {r.ci[1]:+.1%}]" if r.ci else "-"
        p = _p(r.p_adjusted)
        verdict = _MARK[r.verdict] + (f" ({r.note})" if r.note else "")
        lines.append([
            scenario, r.metric,
            f"{_number(r.base_median, r.unit)} ({_count(len(r.base), report.units)})", f"{_number(r.new_median, r.unit)} ({_count(len(r.new), report.units)})",
            change, ci, p, verdict,
        ])
    out = []
    if lines:
        widths = [max(len(row[i]) for row in lines + [header]) for i in range(len(header))]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        out += [fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*row) for row in lines]
    for s in report.statuses:
        scenario = f"{s.group}: {s.scenario}" if s.group else s.scenario
        out.append(f"status {scenario}: base {_counts(s.base)}, new {_counts(s.new)}" + (f"  {_MARK[s.verdict]}" if s.verdict != UNCHANGED else ""))
    counts: dict[str, int] = {}
    for r in report.rows:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    summary = ", ".join(f"{n} {v}" for v, n in counts.items()) or "no metrics in common"
    tested = sum(r.p_value is not None for r in report.rows)
    least = f"at least {max(report.min_samples, MIN_STORED_RUNS)} stored runs, each run's value one observation" if report.units == "runs" else f"at least {report.min_samples} runs a side"
    out.append(
        f"{len(report.rows)} metrics: {summary} (threshold {report.threshold:.0%}; alpha {report.alpha:g} over the {tested} tested, "
        f"{FAMILY_NAMES[report.family]}; {least})"
    )
    out += [f"note: {note}" for note in report.notes]
    return "\n".join(out)


FAMILY_NAMES = {"bh": "Benjamini-Hochberg", "holm": "Holm", "none": "each on its own"}


def _count(n: int, units: str) -> str:
    return f"{n} run{'s' if n != 1 else ''}" if units == "runs" else f"n={n}"


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "absent"
