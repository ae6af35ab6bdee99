"""Sharding (harness/schedule.py, `wgh run --shard`): every case in exactly one shard,
balanced, the same on every machine whatever the input order, by recorded durations
where there are any and static estimates elsewhere."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from harness import cli, schedule
from harness.results.load import ResultsError
from harness.scenario.load import load_text

REPO = Path(__file__).resolve().parents[2]


def validate(document: dict) -> None:
    """Against the shipped results.json schema (as tests/unit/test_results_format.py does)."""
    import jsonschema
    from importlib import resources

    schema = json.loads(resources.files("harness").joinpath("schema/results.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)


@dataclass(frozen=True)
class Case:
    id: str
    file: str = "s.yaml"


case_times = st.dictionaries(st.text("abcdefgh[]=-", min_size=1, max_size=6), st.floats(0, 1000, allow_nan=False), max_size=40)


def cases_of(times: dict[str, float]) -> list[Case]:
    return [Case(key) for key in times]


@settings(max_examples=150, deadline=None)
@given(case_times, st.integers(1, 12))
def test_every_case_is_in_exactly_one_shard(times, count):
    cases = cases_of(times)
    shards = [schedule.shard(cases, index, count, times) for index in range(1, count + 1)]
    assert sorted(c.id for s in shards for c in s) == sorted(times)
    assert shards == schedule.partition(cases, count, times)


@settings(max_examples=150, deadline=None)
@given(case_times, st.integers(1, 12))
def test_shards_are_balanced_within_the_longest_case(times, count):
    shards = schedule.partition(cases_of(times), count, times)
    loads = [schedule.load(s, times) for s in shards]
    longest = max(times.values(), default=0.0)
    assert max(loads) <= min(loads) + longest + 1e-6
    for s in shards:  # each shard runs longest first
        assert [times[c.id] for c in s] == sorted((times[c.id] for c in s), reverse=True)


@settings(max_examples=100, deadline=None)
@given(case_times, st.integers(1, 8), st.randoms(use_true_random=False))
def test_the_same_shards_whatever_the_input_order(times, count, rng):
    cases = cases_of(times)
    shuffled = list(cases)
    rng.shuffle(shuffled)
    assert schedule.partition(shuffled, count, dict(reversed(list(times.items())))) == schedule.partition(cases, count, times)


def test_ties_are_broken_by_id_and_file():
    cases = [Case("b"), Case("a", "2.yaml"), Case("a", "1.yaml"), Case("c")]
    durations = {"a": 1.0, "b": 1.0, "c": 1.0}
    assert schedule.longest_first(cases, durations) == [Case("a", "1.yaml"), Case("a", "2.yaml"), Case("b"), Case("c")]
    assert schedule.partition(cases, 2, durations) == [[Case("a", "1.yaml"), Case("b")], [Case("a", "2.yaml"), Case("c")]]


def test_more_shards_than_cases_leaves_some_empty():
    cases = [Case("a"), Case("b")]
    assert schedule.partition(cases, 3, {"a": 2.0, "b": 1.0}) == [[Case("a")], [Case("b")], []]


SLEEPY = """
name: sleepy
nodes: {a: {}, b: {}}
links: [{ends: [a, b]}]
wireguard: {a: {peers: {b: {endpoint: b}}}, b: {}}
steps:
  - handshake: {between: [a, b], within: 50s}   # a deadline: not counted
  - sleep: 3s
  - iperf3: {from: a, to: b, seconds: 5s}
matrix: {steps.1.sleep: [1s, 10s]}
"""


def test_static_estimate_counts_nodes_steps_sleeps_and_iperf3_but_not_deadlines():
    short, long = load_text(SLEEPY)
    base = schedule.CASE_SECONDS + 2 * schedule.NODE_SECONDS + 3 * schedule.STEP_SECONDS + 5.0
    assert schedule.static_estimate(short) == pytest.approx(base + 1.0)
    assert schedule.static_estimate(long) == pytest.approx(base + 10.0)
    assert schedule.estimate(long, {}) == schedule.static_estimate(long)


def test_recorded_durations_are_used_where_known():
    short, long = load_text(SLEEPY)
    durations = {short.id: 100.0}  # measured: far longer than its estimate
    assert schedule.estimate(short, durations) == 100.0
    assert schedule.longest_first([long, short], durations) == [short, long]
    assert schedule.longest_first([short, long], {}) == [long, short]
    assert schedule.shard([short, long], 1, 2, durations) == [short]


def test_the_suite_is_sharded_evenly_by_estimates():
    cases = [case for file in cli.scenario_files([str(REPO / "scenarios")]) for case in cases_in(file)]
    shards = schedule.partition(cases, 3, {})
    loads = [schedule.load(s, {}) for s in shards]
    assert sum(len(s) for s in shards) == len(cases)
    assert max(loads) - min(loads) <= max(schedule.static_estimate(c) for c in cases)


def cases_in(file):
    from harness.scenario.load import load_file

    return load_file(file)


@pytest.mark.parametrize(
    "text, message",
    [
        ("0/3", "--shard 0/3: I must be between 1 and 3 (shards are numbered from 1)"),
        ("4/3", "--shard 4/3: I must be between 1 and 3"),
        ("1/0", "--shard 1/0: N, the number of shards, must be at least 1"),
        ("x/y", "--shard 'x/y': expected I/N, two whole numbers with 1 ≤ I ≤ N"),
        ("2", "expected I/N"),
        ("-1/3", "expected I/N"),
    ],
)
def test_bad_shards_are_refused_naming_the_option_and_the_rule(text, message):
    with pytest.raises(schedule.ShardError) as caught:
        schedule.parse_shard(text)
    assert str(caught.value).startswith(message) or message in str(caught.value)


def test_shards_parse():
    assert schedule.parse_shard(" 2 / 3 ") == schedule.Shard(2, 3)
    assert str(schedule.parse_shard("1/1", "--wg-shard")) == "1/1"
    assert schedule.Shard(2, 3).to_json() == {"index": 2, "count": 3}
    with pytest.raises(schedule.ShardError, match="--wg-shard 5/4"):
        schedule.parse_shard("5/4", "--wg-shard")


# --- recorded durations ------------------------------------------------------------------


def entry(key: str, build: float, steps: float, teardown: float = 0.0, status: str = "passed") -> dict:
    timing = {name: {"value": value, "unit": "s"} for name, value in (("build", build), ("steps", steps), ("teardown", teardown))}
    return {"key": key, "id": key, "status": status, "timing": timing, "steps": []}


def write_run(folder: Path, *entries: dict, shard: dict | None = None, kernel: str = "6.1") -> Path:
    folder.mkdir(parents=True)
    environment = {"kernel_release": kernel, "backend_requested": "wireguard-go"}
    if shard:
        environment["shard"] = shard
    document = {"schema_version": 2, "run_id": folder.name, "started": "2026-01-01T00:00:00+00:00", "wall_seconds": 1.0,
                "environment": environment, "scenarios": list(entries)}
    (folder / "results.json").write_text(json.dumps(document))
    return folder


def test_recorded_durations_are_medians_of_wall_times_without_skips(tmp_path):
    write_run(tmp_path / "one", entry("a", 1, 2, 1), entry("a", 1, 4, 1), entry("b", 0, 0, 0, status="skipped"))
    write_run(tmp_path / "two", entry("a", 1, 8, 1), entry("c", 0.5, 1, 0.5, status="failed"))
    assert schedule.recorded_durations([tmp_path / "one", tmp_path / "two" / "results.json"]) == {"a": 6.0, "c": 2.0}
    assert schedule.recorded_durations([tmp_path]) == {"a": 6.0, "c": 2.0}  # a folder of runs
    assert schedule.recorded_durations([]) == {}
    with pytest.raises(ResultsError, match="no such file"):
        schedule.recorded_durations([tmp_path / "nowhere"])


def test_schema_1_timings_count_too():
    document = {"scenarios": [{"key": "a", "status": "passed", "timing": {"build": 1.0, "steps": 2.0, "teardown": 0.5}}, {"key": "b", "status": "error"}]}
    assert schedule.durations_of([document]) == {"a": 3.5}


# --- wgh run --shard ----------------------------------------------------------------------


@pytest.fixture
def fake_suite(monkeypatch):
    """`wgh run` whose cases "run" instantly and pass, noting which ran."""
    import harness.run

    ran: list[str] = []

    def run_case(case, *, repeat=1, repeats=1, **_):
        ran.append(case.id)
        result = harness.run.ScenarioResult(case, repeat=repeat, repeats=repeats)
        result.status, result.build_seconds = "passed", {"direct": 5.0}.get(case.id, 0.1)
        return result

    monkeypatch.setattr(harness.run, "run_case", run_case)
    monkeypatch.setattr(cli.interrupts, "install", lambda *a, **k: None)
    files = [str(REPO / "scenarios" / name) for name in ("direct.yaml", "nat-keepalive.yaml", "no-endpoint.yaml", "routed.yaml")]
    return ran, files


def test_wgh_run_shards_cover_the_suite_once_and_record_the_shard(fake_suite, tmp_path, capsys):
    ran, files = fake_suite
    everything = {case.id for f in files for case in cases_in(f)}
    per_shard = []
    for index in (1, 2, 3):  # three machines, each with its own (empty) results folder
        ran.clear()
        code = cli.main(["run", "-q", "--no-report", "--results-dir", str(tmp_path / f"r{index}"), "--run-id", "s", "--shard", f"{index}/3", *files])
        assert code == cli.EXIT_OK
        err = capsys.readouterr().err
        assert f"wgh run: shard {index}/3: {len(ran)} of {len(everything)} cases" in err and "estimated from the scenarios" in err
        per_shard.append(list(ran))
        document = json.loads((tmp_path / f"r{index}" / "s" / "results.json").read_text())
        assert document["environment"]["shard"] == {"index": index, "count": 3}
        validate(document)
    assert sorted(c for s in per_shard for c in s) == sorted(everything)
    assert all(per_shard)


def test_wgh_run_balances_by_the_newest_run_under_results_dir_by_default(fake_suite, tmp_path, capsys):
    ran, files = fake_suite
    write_run(tmp_path / "older", entry("routed", 0, 1))
    write_run(tmp_path / "newer", entry("direct", 0, 1000))
    assert cli.main(["run", "-q", "--no-results", "--results-dir", str(tmp_path), "--shard", "1/2", *files]) == cli.EXIT_OK
    assert ran == ["direct"]
    assert f"1 of them timed by {tmp_path / 'newer' / 'results.json'}" in capsys.readouterr().err


def test_wgh_run_shards_with_given_durations_keep_repeats_together(fake_suite, tmp_path, capsys):
    ran, files = fake_suite
    write_run(tmp_path / "old", entry("direct", 0, 1000))  # direct is by far the longest
    args = ["run", "-q", "--no-results", "--repeat", "2", "--durations", str(tmp_path / "old"), *files]
    assert cli.main([*args, "--shard", "1/2"]) == cli.EXIT_OK
    assert ran == ["direct", "direct"]
    assert f"1 of {sum(len(cases_in(f)) for f in files)} cases" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--shard", "0/3"], "wgh run: --shard 0/3: I must be between 1 and 3"),
        (["--shard", "x/y"], "wgh run: --shard 'x/y': expected I/N"),
        (["--durations", "somewhere"], "wgh run: --durations balances shards and orders -j: give --shard I/N or -j N too"),
        (["--shard", "1/2", "--durations", "nowhere"], "wgh run: --durations: nowhere: no such file or folder"),
    ],
)
def test_wgh_run_refuses_bad_shard_options(fake_suite, capsys, extra, message):
    ran, files = fake_suite
    assert cli.main(["run", "-q", "--no-results", *extra, *files]) == cli.EXIT_INVALID
    assert message in capsys.readouterr().err
    assert ran == []


def test_an_empty_shard_runs_nothing_and_succeeds(fake_suite, tmp_path, capsys):
    ran, files = fake_suite
    assert cli.main(["run", "-q", "--results-dir", str(tmp_path), "--shard", "9/9", files[0]]) == cli.EXIT_OK
    assert ran == [] and "0 of 1 cases" in capsys.readouterr().err


def test_shard_order_does_not_depend_on_file_order(fake_suite, capsys):
    ran, files = fake_suite
    cli.main(["run", "-q", "--no-results", "--shard", "2/3", *files])
    first = list(ran)
    ran.clear()
    shuffled = list(files)
    random.Random(3).shuffle(shuffled)
    cli.main(["run", "-q", "--no-results", "--shard", "2/3", *reversed(shuffled)])
    assert ran == first
