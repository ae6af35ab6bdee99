"""harness.results.stats (the test and the family control) and harness.results.history
(runs kept over time, the baseline of `wgh compare --history`)."""

import json
import math
import random

import pytest
from scipy import stats as scipy_stats

from harness.cli import main
from harness.results import history
from harness.results.compare import UNCHANGED
from harness.results.load import ResultsError, load_result_sets
from harness.results.stats import adjust, location_test

ENVIRONMENT = {"kernel_release": "6.1.0-57-amd64", "backend_requested": "kernel", "machine": "x86_64", "cpus": 2, "cpu": "AMD EPYC"}


# --- the test and the family ---------------------------------------------------------


def test_location_test_is_the_pooled_t_test_on_logarithms():
    base, new = [20.1, 19.5, 20.4, 19.9, 20.0], [15.2, 16.0, 15.6]
    test = location_test(base, new)
    expected = scipy_stats.ttest_ind([math.log(v) for v in base], [math.log(v) for v in new])
    assert test.scale == "log" and test.p_value == pytest.approx(expected.pvalue)
    low, high = test.ci
    assert low < (15.6 / 20.0 - 1) < high < 0  # the interval of the ratio of geometric means, less 1


def test_location_test_on_metrics_that_can_be_zero_and_on_constant_sides():
    test = location_test([0.0, 1.0, 0.0, 2.0], [5.0, 6.0, 7.0])
    assert test.scale == "linear" and test.p_value == pytest.approx(scipy_stats.ttest_ind([0, 1, 0, 2], [5, 6, 7]).pvalue)
    assert location_test([3.0, 3.0, 3.0], [3.0, 3.0, 3.0]).p_value == 1.0
    assert location_test([3.0, 3.0, 3.0], [4.0, 4.0, 4.0]).p_value == 0.0  # never varies, and moved: certainly apart
    with pytest.raises(ValueError):
        location_test([1.0], [1.0, 2.0])


def test_family_adjustments():
    p = [0.01, 0.04, 0.03, 0.005]
    assert adjust(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust(p, "none") == p and adjust([], "bh") == []
    with pytest.raises(ValueError, match="unknown family method"):
        adjust(p, "bonferroni")


# --- the history -------------------------------------------------------------------------


def run_doc(run_id: str, rates: list[float], *, engine: str | None = None, kernel: str = "6.1.0-57-amd64", status: str = "passed", started: str = "") -> dict:
    scenarios = []
    for repeat, rate in enumerate(rates, 1):
        entry = {
            "key": "site-tunnel", "id": "site-tunnel", "repeat": repeat, "repeats": len(rates), "status": status,
            "steps": [{"index": 0, "kind": "iperf3", "measurements": {"bulk.throughput": {"value": rate, "unit": "bit/s", "key": "bulk.throughput"}}}],
        }
        if engine:
            entry["engine"] = engine
        scenarios.append(entry)
    return {
        "schema_version": 2, "run_id": run_id, "started": started or f"2026-12-01T00:{len(run_id):02d}:00+00:00", "wall_seconds": 1.0, "summary": {},
        "environment": dict(ENVIRONMENT, kernel_release=kernel), "scenarios": scenarios,
    }


def write_run(folder, doc: dict):
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(doc))
    return folder


def stored_history(tmp_path, rng, runs: int = 5, rate: float = 20e6):
    """`runs` runs of 3 repeats each, added to a history: 15 stored observations."""
    folders = [write_run(tmp_path / "runs" / f"r{i:02d}", run_doc(f"r{i:02d}", [rng.gauss(rate, rate * 0.05) for _ in range(3)], started=f"2026-12-01T00:{i:02d}:00+00:00")) for i in range(runs)]
    assert main(["history", "add", str(tmp_path / "history"), *map(str, folders)]) == 0
    return tmp_path / "history"


def test_three_new_runs_against_fifteen_stored(tmp_path, capsys):
    rng = random.Random(2)
    directory = stored_history(tmp_path, rng)
    capsys.readouterr()
    halved = write_run(tmp_path / "halved", run_doc("halved", [rng.gauss(10e6, 0.5e6) for _ in range(3)]))
    same = write_run(tmp_path / "same", run_doc("same", [rng.gauss(20e6, 1e6) for _ in range(3)]))
    assert main(["compare", "--history", str(directory), str(halved)]) == 1
    out = capsys.readouterr()
    # the unit is the run: 5 stored runs' values (each the geometric mean of its 3) against the new run's
    assert "REGRESSION" in out.out and "(5 runs)" in out.out and "(1 run)" in out.out
    assert "at least 3 stored runs, each run's value one observation" in out.out
    assert main(["compare", "--history", str(directory), "--json", str(same)]) == 0
    (row,) = json.loads(capsys.readouterr().out)["metrics"]
    assert row["verdict"] == UNCHANGED and len(row["base"]) == 5 and len(row["new"]) == 1


def test_each_new_input_is_a_run_and_a_sharded_runs_shards_are_one(tmp_path, capsys):
    """3 new runs against 15 stored: 3 observations against 15. The shards of one run
    (as the workflow's gate passes them) are one observation."""
    rng = random.Random(5)
    folders = [write_run(tmp_path / "runs" / f"r{i:02d}", run_doc(f"r{i:02d}", [rng.gauss(20e6, 1e6)], started=f"2026-12-01T00:{i:02d}:00+00:00")) for i in range(15)]
    assert main(["history", "add", str(tmp_path / "history"), *map(str, folders)]) == 0
    halved = [write_run(tmp_path / f"halved{i}", run_doc(f"halved{i}", [rng.gauss(10e6, 0.5e6)])) for i in range(3)]
    capsys.readouterr()
    assert main(["compare", "--history", str(tmp_path / "history"), "--json", *map(str, halved)]) == 1
    (row,) = json.loads(capsys.readouterr().out)["metrics"]
    assert row["verdict"] == "regression" and len(row["base"]) == 15 and len(row["new"]) == 3

    shards = []
    for index in (1, 2):
        doc = run_doc(f"wireguard-go-shard-{index}", [rng.gauss(10e6, 0.5e6)])
        doc["environment"]["shard"] = {"index": index, "count": 2}
        shards.append(write_run(tmp_path / f"shard{index}", doc))
    assert main(["compare", "--history", str(tmp_path / "history"), "--json", *map(str, shards)]) == 1
    (row,) = json.loads(capsys.readouterr().out)["metrics"]
    assert len(row["new"]) == 1


def test_a_history_of_fewer_than_three_runs_is_not_enough(tmp_path, capsys):
    directory = stored_history(tmp_path, random.Random(12), runs=2)
    halved = write_run(tmp_path / "halved", run_doc("halved", [10e6] * 3))
    assert main(["compare", "--history", str(directory), str(halved)]) == 0
    assert "insufficient samples (2 stored runs of this metric: at least 3 for a history baseline)" in capsys.readouterr().out


def test_a_run_unlike_every_stored_one_is_judged_against_the_spread_between_runs(tmp_path, capsys):
    """Repeats within a run agree more than runs do (a machine's state, what else ran):
    a new run whose level differs from each stored run's by as much as they differ from
    each other is not a change, however tight its own repeats."""
    rng = random.Random(13)
    folders = []
    for i, level in enumerate((19e6, 21e6, 20e6, 18.5e6, 21.5e6)):  # runs ~5% apart, repeats 0.2% apart
        folders.append(write_run(tmp_path / "runs" / f"r{i}", run_doc(f"r{i}", [rng.gauss(level, level * 0.002) for _ in range(3)], started=f"2026-12-01T00:0{i}:00+00:00")))
    assert main(["history", "add", str(tmp_path / "history"), *map(str, folders)]) == 0
    new = write_run(tmp_path / "new", run_doc("new", [rng.gauss(18e6, 18e6 * 0.002) for _ in range(3)]))  # -10%: inside that spread
    capsys.readouterr()
    assert main(["compare", "--history", str(tmp_path / "history"), "--json", str(new)]) == 0
    (row,) = json.loads(capsys.readouterr().out)["metrics"]
    assert row["verdict"] == UNCHANGED and row["p_value"] > 0.01


def test_adding_is_once_per_run_and_keyed_by_environment(tmp_path, capsys, monkeypatch):
    directory = tmp_path / "history"
    one = write_run(tmp_path / "a", run_doc("a", [1e6, 1e6, 1e6]))
    assert main(["history", "add", str(directory), str(one)]) == 0
    assert main(["history", "add", str(directory), str(one)]) == 0
    out = capsys.readouterr().out
    assert "added: a → host class x86_64, 2 CPUs, AMD EPYC, kernel 6.1.0-57-amd64, backend kernel, engine netns" in out
    assert "already there: a" in out
    # one line per engine a run's scenarios ran on; another kernel is another history
    doc = run_doc("b", [1e6] * 2, engine="mininet")
    doc["scenarios"] += run_doc("b", [2e6] * 2)["scenarios"]
    write_run(tmp_path / "b", doc)
    write_run(tmp_path / "c", run_doc("c", [1e6] * 3, kernel="6.12.57+deb13-amd64"))
    assert main(["history", "add", "--host-class", "ci-runner", str(directory), str(tmp_path / "b"), str(tmp_path / "c")]) == 0
    assert [(key.host_class, key.kernel, key.engine, runs) for key, runs in history.keys(directory)] == [
        ("ci-runner", "6.1.0-57-amd64", "mininet", 1),
        ("ci-runner", "6.1.0-57-amd64", "netns", 1),
        ("ci-runner", "6.12.57+deb13-amd64", "netns", 1),
        ("x86_64, 2 CPUs, AMD EPYC", "6.1.0-57-amd64", "netns", 1),
    ]
    capsys.readouterr()
    assert main(["history", "show", str(directory)]) == 0
    assert "   1 runs  host class ci-runner, kernel 6.12.57+deb13-amd64, backend kernel, engine netns" in capsys.readouterr().out
    # the host class a run recorded ($WGH_HOST_CLASS when it ran) is its key
    recorded = run_doc("d", [1e6] * 3)
    recorded["environment"]["host_class"] = "github-ubuntu-24.04"
    (key, _), = history.records(load_result_sets(write_run(tmp_path / "d", recorded))[0])
    assert key.host_class == "github-ubuntu-24.04" and key.filename == "github-ubuntu-24.04__6.1.0-57-amd64__kernel__netns.jsonl"


def test_the_baseline_is_the_newest_runs_without_the_judged_ones(tmp_path):
    rng = random.Random(4)
    directory = stored_history(tmp_path, rng, runs=6)
    (key, runs), = history.keys(directory)
    assert runs == 6
    (series, statuses), used = history.baseline(directory, key, window=4, leave_out={"r05"})
    assert used == 4 and len(series[("site-tunnel", "bulk.throughput")].observations) == 4  # a value per run
    assert statuses == {"site-tunnel": {"passed": 12}}
    stored = [json.loads(line)["run_id"] for line in (directory / key.filename).read_text().splitlines()]
    assert stored == [f"r{i:02d}" for i in range(6)]


def test_a_run_that_now_fails_is_a_regression_against_history(tmp_path, capsys):
    directory = stored_history(tmp_path, random.Random(6))
    broken = write_run(tmp_path / "broken", run_doc("broken", [1.0] * 3, status="failed"))
    assert main(["compare", "--history", str(directory), str(broken)]) == 1
    assert "status site-tunnel: base 15 passed, new 3 failed  REGRESSION" in capsys.readouterr().out


def test_an_environment_the_history_lacks_is_said_and_not_judged(tmp_path, capsys):
    directory = stored_history(tmp_path, random.Random(8))
    other = write_run(tmp_path / "other", run_doc("other", [1e6] * 3, kernel="6.12.57+deb13-amd64"))
    assert main(["compare", "--history", str(directory), str(other)]) == 0
    out = capsys.readouterr().out
    assert "holds no runs of host class x86_64, 2 CPUs, AMD EPYC, kernel 6.12.57+deb13-amd64" in out
    assert "the history holds: host class x86_64, 2 CPUs, AMD EPYC, kernel 6.1.0-57-amd64, backend kernel, engine netns (5 runs)" in out


def test_bad_history_input_is_named(tmp_path, capsys):
    directory = stored_history(tmp_path, random.Random(9))
    new = write_run(tmp_path / "new", run_doc("new", [1e6] * 3))
    (path,) = directory.glob("*.jsonl")
    path.write_text(path.read_text() + "{not json\n")
    assert main(["compare", "--history", str(directory), str(new)]) == 2
    assert f"wgh compare: {path}:6: not a history line" in capsys.readouterr().err
    assert main(["compare", "--history", str(tmp_path / "nowhere"), str(new)]) == 2
    assert "no such history folder" in capsys.readouterr().err
    assert main(["compare", "--history", str(directory), "--base", str(new), "--new", str(new)]) == 2
    assert main(["compare", "--history", str(directory)]) == 2
    assert main(["history", "add", str(directory)]) == 2
    key = history.HistoryKey(**json.loads(path.read_text().splitlines()[0])["key"])
    with pytest.raises(ResultsError, match=":6: not a history line"):
        history.baseline(directory, key)


def test_a_ci_runs_shards_are_stored_as_one_run_per_environment(tmp_path, capsys):
    """The workflow's history job: each backend's shards (the runner's cases, and
    netem's in a VM under another kernel) added under the workflow run's id."""
    shard1 = run_doc("wireguard-go-shard-1", [1e6] * 3)
    shard1["environment"]["shard"] = {"index": 1, "count": 2}
    shard2 = run_doc("wireguard-go-shard-2", [1e6] * 3)
    shard2["environment"]["shard"] = {"index": 2, "count": 2}
    in_vm = run_doc("wireguard-go-shard-1-vm", [2e6] * 3, kernel="6.12.57+deb13-amd64")
    write_run(tmp_path / "results-1" / "wireguard-go-shard-1", shard1)
    write_run(tmp_path / "results-1" / "wireguard-go-shard-1-vm", in_vm)
    write_run(tmp_path / "results-2" / "wireguard-go-shard-2", shard2)
    directory = tmp_path / "history"
    args = ["history", "add", "--host-class", "runner", "--run-id", "4711-wireguard-go", str(directory), str(tmp_path / "results-1"), str(tmp_path / "results-2")]
    assert main(args) == 0
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("added: 4711-wireguard-go") == 2 and out.count("already there: 4711-wireguard-go") == 2
    held = {key.kernel: runs for key, runs in history.keys(directory)}
    assert held == {"6.1.0-57-amd64": 1, "6.12.57+deb13-amd64": 1}
    (key,) = [key for key, _ in history.keys(directory) if key.kernel == "6.1.0-57-amd64"]
    (series, statuses), runs = history.baseline(directory, key)
    assert runs == 1 and statuses == {"site-tunnel": {"passed": 6}}


def saved_benchmark(path, number: int, rates: list[float], handshakes: list[float]) -> None:
    """A pytest-benchmark saved file as harness.results.bench feeds one (the shape
    test_pytest_benchmark_contract pins), beside a plain benchmark test's entry."""
    key = history.key_of(ENVIRONMENT, "netns").to_json()
    common = {"wgharness": True, "scenario": "site-tunnel", "file_sha256": "ab", "backends": {}, "repeats": len(rates), "history_key": key}
    document = {
        "datetime": f"2026-12-0{number}T10:00:00.000000", "commit_info": {"id": f"c{number}"}, "machine_info": {"node": "ci"},
        "benchmarks": [
            {"name": "test_plain", "extra_info": {}, "stats": {"median": 1.0, "rounds": 5}},
            {"name": "site::time_to_handshake", "stats": {"median": handshakes[1]},
             "extra_info": dict(common, metric="time_to_handshake", unit="s", values=handshakes)},
            {"name": "site::scenario_steps", "stats": {"median": 3.0},
             "extra_info": dict(common, metric="scenario_steps", unit="s", values=[3.0] * len(rates),
                                measurements={"bulk.throughput": {"unit": "bit/s", "values": rates}})},
        ],
    }
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{number:04d}_c{number}_20261201_100000.json").write_text(json.dumps(document))


def test_the_pytest_benchmark_storage_is_a_history(tmp_path, capsys):
    rng = random.Random(9)
    storage = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    for number in range(1, 6):
        saved_benchmark(storage, number, [rng.gauss(20e6, 0.4e6) for _ in range(3)], [rng.gauss(0.012, 0.0005) for _ in range(3)])
    (storage / "notes.json").write_text("not json")
    assert main(["history", "show", str(tmp_path / ".benchmarks")]) == 0
    assert "backend kernel, engine netns" in capsys.readouterr().out
    ((key, runs),) = history.keys(tmp_path / ".benchmarks")
    assert runs == 5 and key.kernel == "6.1.0-57-amd64"
    (series, statuses), count = history.baseline(tmp_path / ".benchmarks", key)
    assert count == 5 and statuses == {"site-tunnel": {"passed": 15}}
    assert set(series) == {("site-tunnel", "time_to_handshake"), ("site-tunnel", "bulk.throughput")}

    halved = write_run(tmp_path / "halved", run_doc("halved", [rng.gauss(10e6, 0.2e6) for _ in range(3)]))
    assert main(["history", "add", str(tmp_path / ".benchmarks"), str(halved)]) == 2
    assert "a pytest-benchmark storage" in capsys.readouterr().err and not list((tmp_path / ".benchmarks").glob("*.jsonl"))
    assert main(["compare", "--history", str(tmp_path / ".benchmarks"), "--json", str(halved)]) == 1
    rows = {row["metric"]: row for row in json.loads(capsys.readouterr().out)["metrics"]}
    assert rows["bulk.throughput"]["verdict"] == "regression" and len(rows["bulk.throughput"]["base"]) == 5
    assert rows["time_to_handshake"]["verdict"] == "missing"  # the new run has none
