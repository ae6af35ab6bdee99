"""`wgh compare BASE NEW`: scenario by scenario, metric by metric, is NEW worse?

The unit of evidence is one run of a scenario case: each repeat (`--repeat N`)
contributes one observation per metric (its value, or the median of its samples
when it only has samples). Per metric the two sides' medians are compared, and a
difference is only called a regression or an improvement when all of these hold:

- the relative change of the medians is at least `threshold` (default 5%) in
  the metric's direction (see harness.results.metrics.direction);
- the absolute change is above the metric's resolution floor (`MIN_ABS`: 5 ms for
  times in s, 0.05 ms for RTTs, 1 point for percentages) — below it a relative
  change of a tiny number is noise of the clock or the scheduler;
- the 95% bootstrap confidence interval of the relative change of the medians
  excludes zero, and
- a two-sided Mann–Whitney U test gives p < alpha (default 0.01).

A difference that passes all of these while the machine was overloaded when it was
measured (the median CPU stall of either side's observations, recorded with each step
by harness.pressure, at or above the stall threshold, default 0.5) is called
*inconclusive (machine overloaded)* instead: on a shared runner a CPU hog beside the
run stretches handshake times and lowers rates as a real regression would, and the
two cannot be told apart. It is not a regression (exit 0); `--strict-load` (or
WGH_STRICT_LOAD=1) judges it whatever the load.

With fewer than `min_samples` (default 3) observations on a side, or so few that
the rank test could not reach p < alpha even with the two sides completely apart
(its smallest p is 2 / C(n1 + n2, n1): 0.1 for 3 against 3, 0.029 for 4 against
4, 0.008 for 5 against 5), the verdict is "insufficient samples", whatever the
change: use `--repeat 5` or more for a gate. Per metric, two runs of the same
configuration are then flagged in about 1% of comparisons (alpha 0.01, and the
effect must also pass the threshold), and a 20% change with 5% noise is caught
about 9 times in 10 (tests/unit/test_results_compare.py).
"""

from __future__ import annotations

import dataclasses

import math
import random
import statistics
import zlib
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any, Iterable

from harness.results.load import ResultSet
from harness.results.metrics import Direction, direction, observation

MIN_ABS = {"s": 0.005, "ms": 0.05, "%": 1.0}  # resolution floors, by unit
BOOTSTRAP_RESAMPLES = 2000

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
    ci: tuple[float, float] | None = None  # 95% bootstrap interval of `change`
    p_value: float | None = None  # Mann–Whitney U, two-sided
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
            "min_samples": self.min_samples,
            "counts": counts,
            "regressions": len(self.regressions),
            "metrics": [r.to_json() for r in self.rows],
            "statuses": [asdict(s) for s in self.statuses],
        }


# --- statistics ---------------------------------------------------------------------


def mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of the Mann–Whitney U test: exact for small samples (by
    enumerating every split of the pooled mid-ranks, so ties are handled exactly),
    else the normal approximation with tie and continuity corrections."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = sorted((v, side) for side, values in ((0, a), (1, b)) for v in values)
    ranks: list[float] = [0.0] * len(pooled)
    tie_sizes = []
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        tie_sizes.append(j - i + 1)
        i = j + 1
    mean = n1 * n2 / 2
    offset = n1 * (n1 + 1) / 2
    u = sum(r for r, (_, side) in zip(ranks, pooled) if side == 0) - offset
    observed = abs(u - mean) - 1e-9
    if math.comb(n1 + n2, n1) <= 200_000:
        total = extreme = 0
        for chosen in combinations(ranks, n1):
            total += 1
            extreme += abs(sum(chosen) - offset - mean) >= observed
        return min(1.0, extreme / total)
    n = n1 + n2
    tie_term = sum(t**3 - t for t in tie_sizes) / (n * (n - 1))
    variance = n1 * n2 / 12 * ((n + 1) - tie_term)
    if variance <= 0:
        return 1.0
    z = (abs(u - mean) - 0.5) / math.sqrt(variance)
    return min(1.0, 2 * (1 - statistics.NormalDist().cdf(max(z, 0.0))))


def bootstrap_change_ci(base: list[float], new: list[float], seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float] | None:
    """95% percentile-bootstrap interval of (median(new) - median(base)) / |median(base)|."""
    rng = random.Random(seed)
    changes = []
    for _ in range(resamples):
        mb = statistics.median(rng.choices(base, k=len(base)))
        mn = statistics.median(rng.choices(new, k=len(new)))
        if mb == 0:
            continue
        changes.append((mn - mb) / abs(mb))
    if len(changes) < resamples // 2:
        return None
    changes.sort()
    return changes[int(0.025 * (len(changes) - 1))], changes[int(math.ceil(0.975 * (len(changes) - 1)))]


def judge(
    row: Comparison,
    *,
    threshold: float,
    alpha: float,
    min_samples: int,
    min_abs: dict[str, float],
    stall_threshold: float | None = None,
) -> Comparison:
    """Fill in medians, change, interval, p-value and the verdict of one metric.
    `stall_threshold`: a regression or improvement measured with either side's median
    stall at or above it is inconclusive (None: judged whatever the load)."""
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
    if len(base) < min_samples or len(new) < min_samples or 2 / math.comb(len(base) + len(new), len(base)) >= alpha:
        row.verdict = INSUFFICIENT
        row.note = f"{len(base)} vs {len(new)} runs: too few for p<{alpha:g}, use --repeat"
        return row
    seed = zlib.crc32(f"{row.group}|{row.scenario}|{row.metric}".encode())
    row.ci = bootstrap_change_ci(base, new, seed)
    row.p_value = mann_whitney_p(base, new)
    floor = min_abs.get(row.unit, 0.0)
    if row.change is None:  # a zero baseline: no relative change, judge the absolute one
        big = abs(difference) > floor
    else:
        big = abs(row.change) >= threshold and abs(difference) > floor
    excludes_zero = row.ci is not None and (row.ci[0] > 0 or row.ci[1] < 0)
    if row.change is None:
        excludes_zero = min(new) > max(base) or max(new) < min(base)
    significant = excludes_zero and row.p_value < alpha
    if not big:
        row.verdict = UNCHANGED
        if abs(difference) <= floor and difference:
            row.note = f"below the {floor:g} {row.unit} resolution"
    elif not significant:
        row.verdict, row.note = UNCHANGED, f"not significant, p={row.p_value:.3f}"
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


def _overloaded(row: Comparison, threshold: float) -> bool:
    return any(stall is not None and stall >= threshold for stall in (row.base_stall, row.new_stall))


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


def compare(
    base_sets: list[ResultSet],
    new_sets: list[ResultSet],
    *,
    threshold: float = 0.05,
    alpha: float = 0.01,
    min_samples: int = 3,
    min_abs: dict[str, float] | None = None,
    stall_threshold: float | None = None,
) -> CompareReport:
    """Compare two result sets. Matrix summaries are matched combination by
    combination (by kernel spec/backend label); a plain run on one side is compared
    with every combination of the other. `stall_threshold`: see judge."""
    floors = dict(MIN_ABS, **(min_abs or {}))
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
    rows: list[Comparison] = []
    status_rows: list[StatusChange] = []
    for label, base_side, new_side in pairs:
        base_series, base_status = _merge(base_side)
        new_series, new_status = _merge(new_side)
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
            row = Comparison(
                label, scenario, metric, unit, direction(metric, unit).value,
                bs.observations if bs else [], ns.observations if ns else [],
                base_stall=_median(bs.stalls) if bs else None, new_stall=_median(ns.stalls) if ns else None,
            )
            rows.append(judge(row, threshold=threshold, alpha=alpha, min_samples=min_samples, min_abs=floors, stall_threshold=stall_threshold))
    return CompareReport(threshold, alpha, min_samples, rows, status_rows)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _merge(sets: list[ResultSet]) -> tuple[dict[tuple[str, str], Series], dict[str, dict[str, int]]]:
    series: dict[tuple[str, str], Series] = {}
    statuses: dict[str, dict[str, int]] = {}
    for result_set in sets:
        s, st = collect(result_set)
        for key, entry in s.items():
            merged_series = series.setdefault(key, Series(entry.unit))
            merged_series.observations.extend(entry.observations)
            merged_series.stalls.extend(entry.stalls)
        for scenario, counts in st.items():
            merged = statuses.setdefault(scenario, {})
            for status, count in counts.items():
                merged[status] = merged.get(status, 0) + count
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
    header = ["scenario", "metric", "base", "new", "change", "95% CI", "p", "verdict"]
    lines: list[list[str]] = []
    for r in report.rows:
        if not verbose and r.verdict == UNCHANGED and not r.note.startswith("not significant"):
            continue
        scenario = f"{r.group}: {r.scenario}" if r.group else r.scenario
        scenario = scenario if len(scenario) <= 60 else scenario[:59] + "…"
        change = f"{r.change:+.1%}" if r.change is not None else "-"
        ci = f"[{r.ci[0]:+.1%}, {r.ci[1]:+.1%}]" if r.ci else "-"
        p = f"{r.p_value:.3f}" if r.p_value is not None else "-"
        verdict = _MARK[r.verdict] + (f" ({r.note})" if r.note else "")
        lines.append([
            scenario, r.metric,
            f"{_number(r.base_median, r.unit)} (n={len(r.base)})", f"{_number(r.new_median, r.unit)} (n={len(r.new)})",
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
    out.append(f"{len(report.rows)} metrics: {summary} (threshold {report.threshold:.0%}, alpha {report.alpha:g}, at least {report.min_samples} runs a side)")
    return "\n".join(out)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "absent"
