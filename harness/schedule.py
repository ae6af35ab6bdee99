"""Spreading scenario cases over machines (`wgh run --shard I/N`, pytest `--wg-shard I/N`).

Every machine of a CI matrix loads the same cases and computes the same partition, so
that each case runs on exactly one machine; the partition is balanced by how long each
case takes:

- its recorded wall time (build + steps + teardown), the median over the entries of
  the results files given (`recorded_durations`, the one function here that reads
  files), else
- a static estimate from the scenario (`static_estimate`): `CASE_SECONDS`, plus
  `NODE_SECONDS` per node and `STEP_SECONDS` per step, plus what certainly takes time:
  every `sleep` and every iperf3 test's `seconds`. Deadlines (`within`, `timeout`)
  are left out: a passing check ends long before them.

The cases are dealt longest first (ties by id, then file) to the least loaded shard
(ties to the lowest-numbered one): greedy longest-processing-time scheduling. It is
deterministic for the same cases and durations whatever their input order, and no
shard's load exceeds another's by more than the longest case. Every machine must be
given the same durations (the same files, or none), or the shards will not fit together.
"""

from __future__ import annotations

import heapq
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, TypeVar

from harness.errors import HarnessError
from harness.scenario.steps.registry import step_args, step_kind

CASE_SECONDS = 1.0  # building and tearing down a small network, with a wireguard-go margin
NODE_SECONDS = 0.2  # a namespace, its links, addresses and WireGuard interface
STEP_SECONDS = 0.5  # a check that passes at once (a handshake, three pings)

Case = TypeVar("Case")  # a ScenarioCase, or anything with `id` (and `spec` for static estimates)


class ShardError(HarnessError, ValueError):
    """A shard given as anything but I/N with 1 ≤ I ≤ N."""


@dataclass(frozen=True)
class Shard:
    """Shard `index` (from 1) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def to_json(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}


_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str, option: str = "--shard") -> Shard:
    """`2/3` → Shard(2, 3); anything else is a ShardError naming `option` and the rule."""
    match = _SHARD.fullmatch(text)
    if match is None:
        raise ShardError(f"{option} {text!r}: expected I/N, two whole numbers with 1 ≤ I ≤ N (e.g. {option} 2/3: the second of three shards)")
    index, count = int(match[1]), int(match[2])
    if count < 1:
        raise ShardError(f"{option} {text}: N, the number of shards, must be at least 1")
    if not 1 <= index <= count:
        raise ShardError(f"{option} {text}: I must be between 1 and {count} (shards are numbered from 1)")
    return Shard(index, count)


# --- durations ---------------------------------------------------------------------------


def _seconds(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def durations_of(documents: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Case id (a scenario entry's `key`) → the median of its entries' wall times
    (build + steps + teardown) over the results documents given. Skipped entries do
    not count: they took no time that says anything about the case."""
    times: dict[str, list[float]] = {}
    for document in documents:
        for entry in document.get("scenarios") or []:
            if not isinstance(entry, dict) or entry.get("status") == "skipped":
                continue
            key = entry.get("key") or entry.get("id")
            timing = entry.get("timing") or {}
            parts = [_seconds(timing.get(part)) for part in ("build", "steps", "teardown")]
            if not key or any(p is None for p in parts):
                continue
            times.setdefault(str(key), []).append(sum(parts))  # type: ignore[arg-type]
    return {key: statistics.median(values) for key, values in times.items()}


def recorded_durations(paths: Iterable[str | Path]) -> dict[str, float]:
    """`durations_of` every results.json the paths name: results files, run folders,
    folders of runs (e.g. downloaded CI artifacts) and `wgh matrix` summaries. Raises
    harness.results.load.ResultsError for a path that holds no results."""
    from harness.results.load import load_results, results_files

    return durations_of(load_results(file) for path in paths for file in results_files(path))


# --- estimates and the partition -----------------------------------------------------------


def static_estimate(case: Any) -> float:
    """Seconds a case takes by its scenario alone (see the module's docstring)."""
    spec = case.spec
    seconds = CASE_SECONDS + NODE_SECONDS * len(spec.nodes) + STEP_SECONDS * len(spec.steps)
    for step in spec.steps:
        kind, args = step_kind(step), step_args(step)
        if kind == "sleep":
            seconds += float(args)
        elif kind == "iperf3":
            seconds += float(args.seconds)
    return seconds


def estimate(case: Any, durations: Mapping[str, float]) -> float:
    """The case's recorded duration if there is one, else its static estimate."""
    recorded = durations.get(case.id)
    return recorded if recorded is not None else static_estimate(case)


def _order(case: Any, durations: Mapping[str, float]) -> tuple[float, str, str]:
    return (-estimate(case, durations), case.id, str(getattr(case, "file", "")))


def longest_first(cases: Iterable[Case], durations: Mapping[str, float]) -> list[Case]:
    """The cases, longest first; equal estimates by id (then file)."""
    return sorted(cases, key=lambda case: _order(case, durations))


def partition(cases: Iterable[Case], count: int, durations: Mapping[str, float]) -> list[list[Case]]:
    """All `count` shards (index 0 is shard 1), each longest first: every case, longest
    first, goes to the least loaded shard (ties: the lowest-numbered)."""
    if count < 1:
        raise ShardError(f"the number of shards must be at least 1, not {count}")
    shards: list[list[Case]] = [[] for _ in range(count)]
    loads = [(0.0, number) for number in range(count)]  # a heap: (load, shard number)
    for case in longest_first(cases, durations):
        load, number = heapq.heappop(loads)
        shards[number].append(case)
        heapq.heappush(loads, (load + estimate(case, durations), number))
    return shards


def shard(cases: Sequence[Case], index: int, count: int, durations: Mapping[str, float]) -> list[Case]:
    """Shard `index` (from 1) of `count`: its cases, longest first."""
    if not 1 <= index <= count:
        raise ShardError(f"shard {index}/{count}: the index must be between 1 and {count} (shards are numbered from 1)")
    return partition(cases, count, durations)[index - 1]


def load(cases: Iterable[Any], durations: Mapping[str, float]) -> float:
    """The estimated seconds of running these cases one after another."""
    return sum(estimate(case, durations) for case in cases)
