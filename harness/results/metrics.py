"""Metric identity and meaning: the stable key that matches a measurement across
repeats and runs, which direction is better, and which metrics are timings.

A metric is identified by `<scenario key> :: <metric key>`. The scenario key is the
case id (`nat-keepalive[persistent_keepalive=1]`). The metric key is the
measurement's name (`time_to_handshake`, `tunnel_v4.rtt_avg`, with the step's
`record:` prefix) when no other step of the scenario records the same name, and
`step<N>.<name>` (N counting from 1) when several do — e.g. the four unnamed pings
of `nat` record `step2.loss`, `step3.loss`, … Give steps a `record:` name to keep
keys stable when steps are inserted.
"""

from __future__ import annotations

from collections import Counter
from enum import Enum
from typing import Any, Iterable


class Direction(str, Enum):
    HIGHER = "higher"  # more is better: throughput
    LOWER = "lower"  # less is better: times, RTT, loss, jitter, retransmits
    NONE = "none"  # neither: counts and sizes describing behaviour (keepalive interval, packets)


def metric_keys(steps: Iterable[dict[str, Any]]) -> dict[tuple[int, str], str]:
    """(step index, measurement name) → metric key, for one scenario's steps (JSON)."""
    steps = list(steps)
    seen = Counter(name for step in steps for name in step.get("measurements", {}))
    keys: dict[tuple[int, str], str] = {}
    for step in steps:
        for name in step.get("measurements", {}):
            keys[(step["index"], name)] = name if seen[name] == 1 else f"step{step['index'] + 1}.{name}"
    return keys


# the last part of a metric's name (after the record prefix) → direction
_LOWER_NAMES = ("loss", "jitter", "retransmits", "outage", "recovery", "time", "time_to_handshake")
_NO_DIRECTION_NAMES = ("sent", "keepalive_interval", "largest_frame", "initiation", "response", "cookie_reply", "transport", "keepalive")


def direction(name: str, unit: str) -> Direction:
    """Which way is better, from the measurement's name and unit:

    - unit `bit/s` (or a name ending in `throughput`), an iperf3 `ratio`: higher is better;
    - names ending in loss, jitter, retransmits, outage, recovery, time,
      time_to_handshake, or starting with rtt (rtt, rtt_avg, rtt_p50, …): lower;
    - probe and packet counts, frame sizes, the keepalive interval: no direction
      (a change is reported, never judged);
    - otherwise unit `s` or `ms` (a duration): lower; anything else: no direction.
    """
    last = name.rsplit(".", 1)[-1]
    if unit == "bit/s" or last == "throughput" or (last == "ratio" and unit == "ratio"):  # ratio: of a baseline throughput
        return Direction.HIGHER
    if last in _NO_DIRECTION_NAMES:
        return Direction.NONE
    if last in _LOWER_NAMES or last.startswith("rtt"):
        return Direction.LOWER
    if unit in ("s", "ms"):
        return Direction.LOWER
    return Direction.NONE


def is_timing(name: str, unit: str) -> bool:
    """A duration the run waited for (handshake, recovery, outage, wait_until, a
    transfer): these go into pytest-benchmark's timing tables. RTTs are
    per-packet latencies (ms) and stay in extra_info, as do intervals that describe
    behaviour rather than speed."""
    return unit == "s" and direction(name, unit) is Direction.LOWER


def observation(measurement: dict[str, Any]) -> float | None:
    """One number for one run of a measurement: its value, or the median of its
    samples where only samples were recorded (a probe stream's RTTs)."""
    value = measurement.get("value")
    if value is not None:
        return float(value)
    samples = measurement.get("samples") or []
    if not samples:
        return None
    ordered = sorted(samples)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
