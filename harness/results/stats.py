"""The statistics behind `wgh compare` (pure): a location test that is sound with 3
runs a side, and the family-wise control over the metrics of one comparison.

Why a t-test on logarithms, not a rank test: a rank test can only be as sure as the
number of orderings allows (3 runs against 3: p ≥ 0.1; 3 against 15: p ≥ 0.0025),
and one comparison judges hundreds of metrics, whose family-wise control needs
p-values far smaller than that. Rates and durations are positive and their noise is
multiplicative (a run 10% slower, not 10 ms slower), so their logarithms are close
to normal and the pooled two-sample t-test on them is exact for any sample sizes.
Its p-value shrinks with the effect measured in the metric's own noise, which a
history of many runs estimates well: 3 new runs against 15 stored are judged
against the spread of all 18. Metrics that can be 0 (loss, retransmits) are tested
on their own scale. docs/regressions.md has the calibration: the false-alarm rate and
the power, measured on stored runs of the scenario library.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

from scipy import special, stats as scipy_stats

FAMILY_METHODS = ("bh", "holm", "none")


@dataclass(frozen=True)
class LocationTest:
    """Two samples' difference in location: a two-sided p-value, and the 95% interval
    of the relative change (new against base; of the geometric means on a log scale,
    of the means on a linear one)."""

    p_value: float
    ci: tuple[float, float] | None
    scale: str  # "log" or "linear"


def testable(n_base: int, n_new: int) -> bool:
    """Enough values for location_test: 2 a side, or 1 against 3 (2 degrees of freedom)."""
    return n_base >= 1 and n_new >= 1 and n_base + n_new >= 4


def location_test(base: Sequence[float], new: Sequence[float]) -> LocationTest:
    """The pooled two-sample t-test, on the logarithms when every value is positive,
    else on the values. A side may be a single value when the other has 3 or more:
    then it is the prediction test of that value against the other side's spread (one
    new run's mean against stored runs' means). Two sides that never vary are either
    equal (p 1) or certainly apart (p 0)."""
    if not testable(len(base), len(new)):
        raise ValueError("a t-test needs at least 2 values a side, or 1 against 3")
    scale = "log" if min(base) > 0 and min(new) > 0 else "linear"
    a = [math.log(v) for v in base] if scale == "log" else list(base)
    b = [math.log(v) for v in new] if scale == "log" else list(new)
    difference = statistics.fmean(b) - statistics.fmean(a)
    df = len(a) + len(b) - 2
    pooled = (sum((x - statistics.fmean(a)) ** 2 for x in a) + sum((x - statistics.fmean(b)) ** 2 for x in b)) / df
    se = math.sqrt(pooled * (1 / len(a) + 1 / len(b)))
    if se == 0:
        return LocationTest(1.0 if difference == 0 else 0.0, _relative(difference, difference, a, scale), scale)
    t = difference / se
    # scipy.special's Student t functions: the same as scipy.stats.t, without its
    # per-call overhead (a comparison makes hundreds of these, the calibration millions)
    p = float(2 * special.stdtr(df, -abs(t)))
    margin = float(special.stdtrit(df, 0.975)) * se
    return LocationTest(p, _relative(difference - margin, difference + margin, a, scale), scale)


def _relative(low: float, high: float, base: list[float], scale: str) -> tuple[float, float] | None:
    """An interval of differences as relative changes of the base."""
    if scale == "log":
        return math.expm1(low), math.expm1(high)
    centre = statistics.fmean(base)
    if centre == 0:
        return None
    return low / abs(centre), high / abs(centre)


def adjust(p_values: Sequence[float], method: str) -> list[float]:
    """p-values adjusted for the family they were tested in, in their order; a metric
    is significant at level `alpha` when its adjusted p-value is below it.

    - "bh": Benjamini–Hochberg. Of the metrics it flags, at most a fraction alpha are
      false on average; when nothing changed at all (two runs of one configuration)
      that is the chance of any false flag in the comparison. Holds for independent
      metrics and for positively dependent ones (the RTT min/avg/max of one ping).
    - "holm": Holm's step-down. The chance of any false flag is at most alpha, whatever
      the dependence and whatever else changed; less power when many metrics move.
    - "none": each metric on its own (alpha per metric: a suite of hundreds of metrics
      then raises false alarms in most comparisons).
    """
    if method not in FAMILY_METHODS:
        raise ValueError(f"unknown family method {method!r} (one of {', '.join(FAMILY_METHODS)})")
    if method == "none" or not p_values:
        return list(p_values)
    if method == "bh":
        return [float(p) for p in scipy_stats.false_discovery_control(list(p_values), method="bh")]
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def run_level(values: Sequence[float]) -> float:
    """One run's value of a metric from its repeats: their geometric mean when all are
    positive (the mean of the logarithms the test works on), else their mean."""
    if min(values) > 0:
        return math.exp(statistics.fmean(math.log(v) for v in values))
    return statistics.fmean(values)
