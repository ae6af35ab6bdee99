"""pytest-benchmark integration: a scenario's timings in pytest-benchmark's tables,
storage and comparisons (`--benchmark-autosave`, `--benchmark-compare`,
`--benchmark-compare-fail=median:10%`).

pytest-benchmark times a callable; our timings are measured inside the scenario
(time to handshake, recovery, outage, wait_until). They are fed through its public
`pedantic()` mode with a replay timer: each round calls a no-op between two reads of
a clock that advances by exactly one measured duration, so the round's time *is*
the measurement, and pytest-benchmark's own statistics, storage and comparison
apply unchanged. Each repeat (`--wg-repeat N`) is one round.

Entries, per scenario case (node id `scenarios/x.yaml::case`):
- `<node id>::<metric key>` for every timing metric (see metrics.is_timing);
- `<node id>::scenario_steps`, the wall time of the scenario's steps, whose
  `extra_info` carries every other measurement (RTT, loss, throughput, counts) with
  its unit, per-repeat values and raw samples.

Without pytest-benchmark, with `--benchmark-disable`/`--benchmark-skip`, under xdist,
or without any option that asks for results (save, autosave, json, compare, only,
enable, histogram), nothing is fed and scenario runs behave as before.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Sequence

from harness.results.metrics import is_timing, observation

_ASKING_OPTIONS = (
    "benchmark_save",
    "benchmark_autosave",
    "benchmark_json",
    "benchmark_compare",
    "benchmark_only",
    "benchmark_enable",
    "benchmark_histogram",
)


def benchmark_session(config: Any) -> Any | None:
    """pytest-benchmark's session object when it should receive scenario timings."""
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled or session.skip:
        return None
    if not any(config.getoption(name, None) for name in _ASKING_OPTIONS):
        return None
    return session


class ReplayClock:
    """A timer for pedantic(): every second call (the end of a round) advances the
    clock by the next recorded duration."""

    __name__ = "wgharness_replay"  # how pytest-benchmark names the timer in its JSON

    def __init__(self, durations: Sequence[float]):
        self._durations = list(durations)
        self._calls = 0
        self._now = 0.0

    def __call__(self) -> float:
        if self._calls % 2 == 1:
            self._now += self._durations[self._calls // 2]
        self._calls += 1
        return self._now


def _noop() -> None:
    return None


def record(session: Any, item: Any, scenario_runs: Sequence[dict[str, Any]]) -> int:
    """Feed the passed runs (results.json scenario entries) of one scenario item into
    pytest-benchmark. Returns how many benchmark entries were added."""
    from pytest_benchmark.fixture import BenchmarkFixture
    from pytest_benchmark.utils import NameWrapper

    runs = [r for r in scenario_runs if r["status"] == "passed"]
    if not runs:
        return 0
    timings: dict[str, list[float]] = {}
    others: dict[str, dict[str, Any]] = {}
    for run in runs:
        for step in run["steps"]:
            for name, measurement in step["measurements"].items():
                key, unit, value = measurement.get("key", name), measurement["unit"], observation(measurement)
                if value is None:
                    continue
                if is_timing(key, unit):
                    timings.setdefault(key, []).append(value)
                else:
                    entry = others.setdefault(key, {"unit": unit, "values": []})
                    entry["values"].append(value)
                    if measurement.get("samples"):
                        entry.setdefault("samples", []).append(measurement["samples"])
    timings["scenario_steps"] = [run["timing"]["steps"]["value"] for run in runs]
    first = runs[0]
    common = {
        "wgharness": True,
        "scenario": first["key"],
        "file_sha256": first["file_sha256"],
        "backends": first["backends"],
        "repeats": len(runs),
    }
    added = 0
    for key, durations in timings.items():
        node = SimpleNamespace(name=f"{item.name}::{key}", nodeid=f"{item.nodeid}::{key}")
        options = dict(session.options, timer=NameWrapper(ReplayClock(durations)), cprofile=False)
        fixture = BenchmarkFixture(
            node,
            add_stats=session.benchmarks.append,
            logger=session.logger,
            warner=item.warn,
            disabled=False,
            group=f"wgh {first['key']}",
            **options,
        )
        fixture.extra_info.update(common, metric=key, unit="s")
        if key == "scenario_steps":
            fixture.extra_info["measurements"] = others
        fixture.pedantic(_noop, rounds=len(durations), iterations=1, warmup_rounds=0)
        added += 1
    return added
