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
- `<node id>::<metric key>` for every timing metric (see metrics.is_timing), its
  per-repeat `values` in `extra_info`;
- `<node id>::scenario_steps`, the wall time of the scenario's steps, whose
  `extra_info` carries every other measurement (RTT, loss, throughput, counts) with
  its unit, per-repeat values and raw samples.

Without pytest-benchmark, with `--benchmark-disable`/`--benchmark-skip`, under xdist,
or without any option that asks for results (save, autosave, json, compare, only,
enable, histogram), nothing is fed and scenario runs behave as before.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

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


def feed(item: Any, scenario_runs: Sequence[dict[str, Any]], environment: Callable[[], dict[str, Any]] | None = None) -> int:
    """Feed the passed runs (results.json scenario entries) of one scenario item into
    pytest-benchmark, when it is installed and asked for results. Returns how many
    benchmark entries were added. `environment` gives results.json's environment,
    recorded as the entries' `history_key`, so that the storage can be a results history
    (harness.results.benchstore)."""
    if not any(item.config.getoption(name, None) for name in _ASKING_OPTIONS):
        return 0
    make_fixture = _fixture_maker(item.config)
    runs = [r for r in scenario_runs if r["status"] == "passed"]
    if make_fixture is None or not runs:
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
    if environment is not None:
        from harness.results.history import key_of

        common["history_key"] = key_of(environment(), first.get("engine") or "netns").to_json()
    for key, durations in timings.items():
        # from here on only the fixture's documented attributes and pedantic()
        fixture = make_fixture(item, ReplayClock(durations))
        fixture.name, fixture.fullname, fixture.group = f"{item.name}::{key}", f"{item.nodeid}::{key}", f"wgh {first['key']}"
        # each repeat's value: the storage keeps only statistics of the rounds otherwise
        fixture.extra_info.update(common, metric=key, unit="s", values=list(durations))
        if key == "scenario_steps":
            fixture.extra_info["measurements"] = others
        fixture.pedantic(_noop, rounds=len(durations), iterations=1, warmup_rounds=0)
    return len(timings)


def _fixture_maker(config: Any) -> Callable[[Any, ReplayClock], Any] | None:
    """THE one place that reaches past pytest-benchmark's documented API (the `benchmark`
    fixture: its pedantic(), name, fullname, group, extra_info). Its fixture gives a
    test one entry; a scenario has one per timing, so this makes the fixtures the way
    its own `benchmark` fixture does: from the plugin it registers as "pytest-benchmark"
    (its session: `disabled`, `skip`, `options`, `benchmarks`, `logger`) and the
    BenchmarkFixture constructor, with a replay timer instead of the session's.
    None when pytest-benchmark is absent, disabled (--benchmark-disable, xdist) or
    skipping. Bounded in pyproject.toml (pytest-benchmark <6) and pinned by
    tests/unit/test_pytest_benchmark_contract.py."""
    session = config.pluginmanager.get_plugin("pytest-benchmark")
    if session is None or session.disabled or session.skip:
        return None
    from pytest_benchmark.fixture import BenchmarkFixture
    from pytest_benchmark.utils import NameWrapper

    def make(item: Any, timer: ReplayClock) -> Any:
        options = dict(session.options, timer=NameWrapper(timer), cprofile=False)
        return BenchmarkFixture(item, add_stats=session.benchmarks.append, logger=session.logger, warner=item.warn, disabled=False, **options)

    return make
