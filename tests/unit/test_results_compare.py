"""harness.results.compare: noise-aware comparison of two result sets (synthetic data)."""

import json
import random
from pathlib import Path

import pytest

from harness.cli import main
from harness.results.compare import (
    CHANGED,
    IMPROVEMENT,
    INSUFFICIENT,
    MISSING,
    OVERLOADED,
    REGRESSION,
    UNCHANGED,
    compare,
    format_report,
)
from harness.results.load import ResultSet, ResultsError, load_result_sets


def results_doc(
    metrics: dict[str, tuple[str, list[float]]], scenario: str = "direct", status: str = "passed", stall: float | None = None,
) -> dict:
    """A schema-2 results document: one scenario, one entry per repeat, one step
    per metric; `metrics` maps a metric name to (unit, per-repeat values)."""
    repeats = max(len(values) for _, values in metrics.values())
    scenarios = []
    for r in range(repeats):
        steps = []
        for index, (name, (unit, values)) in enumerate(metrics.items()):
            if r < len(values):
                step = {"index": index, "kind": "x", "measurements": {name: {"value": values[r], "unit": unit, "key": name}}}
                if stall is not None:  # as harness.pressure records it with every step
                    step["load"] = {"window_s": 1.0, "cpu_stall": stall, "host_cpu_stall": stall}
                steps.append(step)
        scenarios.append({"key": scenario, "id": scenario, "repeat": r + 1, "repeats": repeats, "status": status, "steps": steps})
    return {"schema_version": 2, "environment": {}, "scenarios": scenarios}


def one(doc: dict) -> list[ResultSet]:
    return [ResultSet("", None, doc)]


def noisy(rng: random.Random, mean: float, n: int, cv: float = 0.03) -> list[float]:
    return [rng.gauss(mean, mean * cv) for _ in range(n)]


def verdicts(report) -> dict[str, str]:
    return {row.metric: row.verdict for row in report.rows}


def test_flags_an_injected_20_percent_slowdown_with_repeats():
    rng = random.Random(1)
    base = results_doc({"recover.time": ("s", noisy(rng, 2.0, 5))})
    new = results_doc({"recover.time": ("s", noisy(rng, 2.4, 5))})
    report = compare(one(base), one(new))
    row = report.rows[0]
    assert row.verdict == REGRESSION
    assert 0.15 < row.change < 0.25
    assert row.ci[0] > 0 and row.p_value < 0.05
    assert report.regressions == [row]


def test_same_distribution_is_not_flagged():
    rng = random.Random(3)
    base = results_doc({"time_to_handshake": ("s", noisy(rng, 0.5, 5, cv=0.05)), "tunnel.throughput": ("bit/s", noisy(rng, 19e6, 5, cv=0.05))})
    new = results_doc({"time_to_handshake": ("s", noisy(rng, 0.5, 5, cv=0.05)), "tunnel.throughput": ("bit/s", noisy(rng, 19e6, 5, cv=0.05))})
    report = compare(one(base), one(new))
    assert verdicts(report) == {"time_to_handshake": UNCHANGED, "tunnel.throughput": UNCHANGED}
    assert main_exit(base, new) == 0


def test_false_alarm_rate_between_runs_of_one_configuration_stays_near_alpha():
    # 5 runs a side, 5% noise: a 20% regression is caught, equal configurations are
    # flagged (either way) in about alpha = 1% of comparisons
    trials, false_alarms, caught = 100, 0, 0
    for seed in range(trials):
        rng = random.Random(seed)
        base, same, slow = (results_doc({"x.time": ("s", noisy(rng, mean, 5, cv=0.05))}) for mean in (1.0, 1.0, 1.2))
        false_alarms += compare(one(base), one(same)).rows[0].verdict != UNCHANGED
        caught += compare(one(base), one(slow)).rows[0].verdict == REGRESSION
    assert false_alarms / trials <= 0.025
    assert caught / trials >= 0.8


def main_exit(base: dict, new: dict) -> int:
    report = compare(one(base), one(new))
    return 1 if report.regressions else 0


def test_direction_decides_regression_or_improvement():
    base = results_doc(
        {
            "tunnel.throughput": ("bit/s", [100e6, 101e6, 99e6, 100.5e6, 99.5e6]),
            "fast.throughput": ("bit/s", [100e6, 101e6, 99e6, 100.5e6, 99.5e6]),
            "udp.loss": ("%", [1.0, 1.2, 1.1, 0.9, 1.0]),
            "tunnel.rtt_avg": ("ms", [2.0, 2.1, 1.9, 2.05, 1.95]),
            "wan.keepalive_interval": ("s", [1.0, 1.01, 0.99, 1.0, 1.0]),
        }
    )
    new = results_doc(
        {
            "tunnel.throughput": ("bit/s", [80e6, 81e6, 79e6, 80.5e6, 79.5e6]),  # slower: worse
            "fast.throughput": ("bit/s", [120e6, 121e6, 119e6, 120.5e6, 119.5e6]),  # faster: better
            "udp.loss": ("%", [5.0, 5.2, 5.1, 4.9, 5.0]),  # more loss: worse
            "tunnel.rtt_avg": ("ms", [1.5, 1.6, 1.4, 1.55, 1.45]),  # lower RTT: better
            "wan.keepalive_interval": ("s", [2.0, 2.01, 1.99, 2.0, 2.0]),  # behaviour: neither
        }
    )
    assert verdicts(compare(one(base), one(new))) == {
        "tunnel.throughput": REGRESSION,
        "fast.throughput": IMPROVEMENT,
        "udp.loss": REGRESSION,
        "tunnel.rtt_avg": IMPROVEMENT,
        "wan.keepalive_interval": CHANGED,
    }


def test_a_big_but_not_significant_change_is_not_flagged():
    # medians 20% apart, but the samples overlap completely: noise, not a regression
    base = results_doc({"recover.time": ("s", [1.0, 2.0, 1.5, 0.6, 2.4])})
    new = results_doc({"recover.time": ("s", [1.8, 0.7, 2.3, 1.1, 2.0])})
    row = compare(one(base), one(new)).rows[0]
    assert row.verdict == UNCHANGED and "not significant" in row.note


def test_changes_below_the_threshold_or_resolution_are_unchanged():
    base = results_doc({"a.time": ("s", [1.00, 1.001, 1.002, 1.0, 1.001]), "b.rtt_avg": ("ms", [0.010, 0.011, 0.010, 0.011, 0.010])})
    new = results_doc({"a.time": ("s", [1.03, 1.031, 1.032, 1.03, 1.031]), "b.rtt_avg": ("ms", [0.030, 0.031, 0.030, 0.031, 0.030])})
    report = compare(one(base), one(new), threshold=0.05)
    assert verdicts(report) == {"a.time": UNCHANGED, "b.rtt_avg": UNCHANGED}  # 3% < 5%; +0.02 ms < 0.05 ms resolution
    assert verdicts(compare(one(base), one(new), threshold=0.02))["a.time"] == REGRESSION


def test_too_few_repeats_are_insufficient_samples_and_never_a_regression():
    base = results_doc({"recover.time": ("s", [1.0, 1.01])})
    new = results_doc({"recover.time": ("s", [3.0, 3.01])})
    report = compare(one(base), one(new))
    assert report.rows[0].verdict == INSUFFICIENT and not report.regressions
    assert "2 vs 2 runs: at least 3 a side, use --repeat" in report.rows[0].note
    assert compare(one(base), one(new), min_samples=2).rows[0].verdict == REGRESSION
    # below what the t-test can take (1 against 1), insufficient rather than an error
    one_each = compare(one(results_doc({"recover.time": ("s", [1.0])})), one(results_doc({"recover.time": ("s", [3.0])})), min_samples=1)
    assert one_each.rows[0].verdict == INSUFFICIENT


def test_three_runs_a_side_flag_a_halved_rate_and_not_the_same_config():
    """The issue's case: a rate limit halved, run 3 times a side, was not flagged
    (a rank test of 3 against 3 cannot go below p = 0.1)."""
    rng = random.Random(11)
    for trial in range(20):
        full, again, halved = (noisy(rng, mean, 3, cv=0.05) for mean in (20e6, 20e6, 10e6))
        base = results_doc({"bulk.throughput": ("bit/s", full), "bulk.retransmits": ("segments", [3, 5, 4])})
        assert compare(one(base), one(results_doc({"bulk.throughput": ("bit/s", halved), "bulk.retransmits": ("segments", [4, 3, 5])}))).regressions
        same = compare(one(base), one(results_doc({"bulk.throughput": ("bit/s", again), "bulk.retransmits": ("segments", [4, 3, 5])})))
        assert not same.regressions and {r.verdict for r in same.rows} == {UNCHANGED}, trial


def test_many_metrics_are_judged_as_one_family():
    """200 unchanged metrics, 3 runs a side: judged one by one at alpha 0.01, about 2
    come out significant by chance in every comparison; adjusted over the family, a
    false alarm is rare, and a real change among them is still found."""
    rng = random.Random(5)
    flagged = {"bh": 0, "holm": 0, "none": 0}
    trials = 20
    for _ in range(trials):
        metrics = {f"m{i}.time": ("s", noisy(rng, 1.0, 3, cv=0.05)) for i in range(200)}
        again = {f"m{i}.time": ("s", noisy(rng, 1.0, 3, cv=0.05)) for i in range(200)}
        for family in flagged:
            report = compare(one(results_doc(metrics)), one(results_doc(again)), family=family, threshold=0.0)
            flagged[family] += sum(r.verdict != UNCHANGED for r in report.rows)
    assert flagged["none"] / trials > 0.5  # what the family control is for
    assert flagged["bh"] <= 1 and flagged["holm"] <= 1
    metrics = {f"m{i}.time": ("s", noisy(rng, 1.0, 3, cv=0.02)) for i in range(200)}
    slower = dict(metrics, **{"m7.time": ("s", [v * 1.5 for v in metrics["m7.time"][1]])})
    report = compare(one(results_doc(metrics)), one(results_doc(slower)))
    assert [r.metric for r in report.regressions] == ["m7.time"]
    assert "alpha 0.01 over the 200 tested, Benjamini-Hochberg" in format_report(report)


def test_missing_metrics_and_failed_runs():
    base = results_doc({"a.time": ("s", [1.0] * 5), "gone.time": ("s", [1.0] * 5)})
    new = results_doc({"a.time": ("s", [1.0] * 5)}, status="failed")
    report = compare(one(base), one(new))
    # the failed runs' numbers are not used; the status change is the regression
    assert verdicts(report) == {"a.time": MISSING, "gone.time": MISSING}
    assert [(s.scenario, s.verdict) for s in report.statuses] == [("direct", REGRESSION)]
    assert report.regressions


def test_samples_only_metrics_use_each_runs_median():
    doc = results_doc({"probe.rtt_max": ("ms", [1.0] * 5)})
    for scenario, samples in zip(doc["scenarios"], ([1.0, 2.0, 9.0], [1.0, 2.0, 3.0], [2.0, 2.0, 50.0], [2.0], [2.0, 3.0])):
        scenario["steps"].append({"index": 1, "kind": "stop", "measurements": {"probe.rtt": {"value": None, "unit": "ms", "samples": samples, "key": "probe.rtt"}}})
    report = compare(one(doc), one(doc))
    row = next(r for r in report.rows if r.metric == "probe.rtt")
    assert row.base == [2.0, 2.0, 2.0, 2.0, 2.5] and row.verdict == UNCHANGED


def test_matrix_combinations_are_matched_by_label():
    fast, slow = [1.0, 1.01, 0.99, 1.0, 1.0], [2.0, 2.01, 1.99, 2.0, 2.0]
    base = [ResultSet("6.1/kernel", None, results_doc({"x.time": ("s", fast)})), ResultSet("6.1/wireguard-go", None, results_doc({"x.time": ("s", slow)}))]
    new = [ResultSet("6.1/kernel", None, results_doc({"x.time": ("s", fast)})), ResultSet("6.1/wireguard-go", None, results_doc({"x.time": ("s", fast)}))]
    report = compare(base, new)
    assert {(r.group, r.verdict) for r in report.rows} == {("6.1/kernel", UNCHANGED), ("6.1/wireguard-go", IMPROVEMENT)}
    assert "6.1/wireguard-go: direct" in format_report(report)


def test_wgh_compare_exit_code_table_and_json(tmp_path, capsys):
    rng = random.Random(7)
    for name, mean in (("base", 1.0), ("same", 1.0), ("slow", 1.3)):
        (tmp_path / name).mkdir()
        doc = results_doc({"recover.time": ("s", noisy(rng, mean, 5, cv=0.02))})
        doc.update(run_id=name, started="", wall_seconds=0, summary={})
        (tmp_path / name / "results.json").write_text(json.dumps(doc))
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "same")]) == 0
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "slow" / "results.json")]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "recover.time" in out
    assert main(["compare", "--json", "--threshold", "50%", str(tmp_path / "base"), str(tmp_path / "slow")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["threshold"] == 0.5 and data["metrics"][0]["verdict"] == UNCHANGED
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "nowhere")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_matrix_summary_is_read_as_one_set_per_combination(tmp_path):
    for run in ("k", "g"):
        (tmp_path / run).mkdir()
        doc = results_doc({"x.time": ("s", [1.0])})
        (tmp_path / run / "results.json").write_text(json.dumps(doc))
    summary = {
        "kernels": ["6.1"],
        "backends": ["kernel", "wireguard-go", "auto"],
        "combinations": [
            {"kernel_spec": "6.1", "backend": "kernel", "results": str(tmp_path / "k" / "results.json")},
            {"kernel_spec": "6.1", "backend": "wireguard-go", "results": "g/results.json"},
            {"kernel_spec": "6.1", "backend": "auto", "results": str(tmp_path / "never-written" / "results.json")},
        ],
    }
    (tmp_path / "m-matrix.json").write_text(json.dumps(summary))
    sets = load_result_sets(tmp_path / "m-matrix.json")
    assert [s.label for s in sets] == ["6.1/kernel", "6.1/wireguard-go"]


# --- sharded runs: a folder of runs, or several a side, is one merged set -----------------


def _suite(rng: random.Random, mean: float) -> list[dict]:
    """Three scenario cases' documents, five repeats each."""
    return [results_doc({"x.time": ("s", noisy(rng, mean * (i + 1), 5)), "rtt": ("ms", noisy(rng, 0.5, 5))}, scenario=f"case{i}") for i in range(3)]


def _write(folder, docs: list[dict], shard: dict | None = None, kernel: str = "6.1"):
    document = {"schema_version": 2, "run_id": folder.name, "started": "", "wall_seconds": 1.0, "summary": {},
                "environment": {"kernel_release": kernel, "backend_requested": "kernel"}, "scenarios": [s for d in docs for s in d["scenarios"]]}
    if shard:
        document["environment"]["shard"] = shard
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(document))
    return folder


def test_the_shards_of_a_run_compare_as_the_unsharded_run(tmp_path, capsys):
    base_docs, new_docs = _suite(random.Random(1), 1.0), _suite(random.Random(2), 1.3)
    whole = load_result_sets(_write(tmp_path / "base-whole", base_docs))
    _write(tmp_path / "base" / "shard-1", base_docs[:2], {"index": 1, "count": 2})
    _write(tmp_path / "base" / "shard-2", base_docs[2:], {"index": 2, "count": 2})
    new = load_result_sets(_write(tmp_path / "new", new_docs))
    (merged,) = load_result_sets(tmp_path / "base")
    assert merged.notes == [] and merged.data["environment"]["merged_from"] == "2 runs: shards 1/2, 2/2"
    assert "shard" not in merged.data["environment"] and merged.data["summary"] == {"passed": 15}
    expected = compare(whole, new).to_json()
    assert compare([merged], new).to_json() == expected
    assert compare(load_result_sets(tmp_path / "base" / "shard-1") + load_result_sets(tmp_path / "base" / "shard-2"), new).to_json() == expected
    assert expected["regressions"] == 3
    # the command line: a folder of shards, or --base/--new with several each
    assert main(["compare", "--json", str(tmp_path / "base"), str(tmp_path / "new")]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert "run against run: the repeats within a run do not measure how much runs differ" in printed.pop("notes")[0]
    assert {**printed, "notes": []} == expected
    shards = [str(tmp_path / "base" / f"shard-{i}") for i in (1, 2)]
    assert main(["compare", "--json", "--base", *shards, "--new", str(tmp_path / "new")]) == 1
    assert {**json.loads(capsys.readouterr().out), "notes": []} == expected
    assert main(["compare", "--base", *shards, "--new", *shards]) == 0
    assert main(["compare", "--base", shards[0], "--new", str(tmp_path / "new")]) == 1  # one shard: the regressions in its cases
    capsys.readouterr()
    assert main(["compare", "--base", shards[0], str(tmp_path / "base-whole"), "--new", str(tmp_path / "new")]) == 1
    assert "wgh compare: note: --base: sharded and unsharded runs merged" in capsys.readouterr().err


def test_merging_shards_notes_what_is_missing_and_refuses_other_environments(tmp_path, capsys):
    docs = _suite(random.Random(3), 1.0)
    _write(tmp_path / "runs" / "a", docs[:1], {"index": 1, "count": 3})
    _write(tmp_path / "runs" / "b", docs[1:2], {"index": 1, "count": 3})
    (merged,) = load_result_sets(tmp_path / "runs")
    assert merged.notes == [
        f"{tmp_path / 'runs'}: shards 2/3, 3/3 missing: their scenarios are absent",
        f"{tmp_path / 'runs'}: shard 1/3 more than once: their runs count as repeats",
    ]
    assert main(["compare", str(tmp_path / "runs"), str(tmp_path / "runs" / "a")]) == 0
    assert "wgh compare: note: " in capsys.readouterr().err
    _write(tmp_path / "runs" / "c", docs[2:], kernel="6.12")
    # a folder of runs of two environments (a CI shard's runs on the runner and in a VM):
    # one set each, named by its environment; compared with itself, pair by pair
    sets = load_result_sets(tmp_path / "runs")
    assert [s.label for s in sets] == ["kernel 6.1, backend kernel", "kernel 6.12, backend kernel"]
    assert [len(s.data["scenarios"]) for s in sets] == [sum(len(d["scenarios"]) for d in docs[:2]), sum(len(d["scenarios"]) for d in docs[2:])]
    assert sets[0].notes[0] == f"{tmp_path / 'runs'}: runs of 2 environments, each its own input ({sets[0].label}; {sets[1].label})"
    assert main(["compare", "--json", str(tmp_path / "runs"), str(tmp_path / "runs")]) == 0
    assert {row["group"] for row in json.loads(capsys.readouterr().out)["metrics"]} == {s.label for s in sets}
    # runs given one by one on a side are one run: those must share an environment
    assert main(["compare", "--base", str(tmp_path / "runs" / "a"), str(tmp_path / "runs" / "c"), "--new", str(tmp_path / "runs" / "a")]) == 2
    assert "wgh compare: --base: its runs were taken in different environments" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="no results.json in this folder or beneath it"):
        load_result_sets(tmp_path / "empty")
    (only,) = load_result_sets(tmp_path / "runs" / "a")  # a plain run folder stays itself
    assert only.path == tmp_path / "runs" / "a" / "results.json" and only.notes == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["a"], "give BASE NEW (two results, 1 given)"),
        (["a", "b", "c"], "give BASE NEW (two results, 3 given)"),
        (["--base", "a"], "give BASE NEW, or --base RESULTS... and --new RESULTS..."),
        (["x", "--base", "a", "--new", "b"], "not both forms"),
    ],
)
def test_wgh_compare_wants_two_sides(args, message, capsys):
    assert main(["compare", *args]) == 2
    assert message in capsys.readouterr().err


def test_two_cases_of_one_run_compare_with_each_other(tmp_path, capsys):
    """--cases: a matrix over config versions, v1 against v2 in one results file: v2
    newly failing is a regression; the metric of v1 against v2 is compared too."""
    rng = random.Random(3)
    v1 = results_doc({"rtt.rtt_avg": ("ms", noisy(rng, 1.0, 5))}, scenario="road-warriors[v1]")
    v2 = results_doc({"rtt.rtt_avg": ("ms", noisy(rng, 1.0, 5))}, scenario="road-warriors[v2]", status="failed")
    for doc, case in ((v1, "v1"), (v2, "v2")):
        for scenario in doc["scenarios"]:
            scenario["case"] = case
    doc = {**v1, "scenarios": v1["scenarios"] + v2["scenarios"], "run_id": "r", "started": "", "wall_seconds": 0, "summary": {}}
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "results.json").write_text(json.dumps(doc))
    assert main(["compare", str(tmp_path / "r"), "--cases", "road-warriors[v1]", "v2"]) == 1
    out = capsys.readouterr().out
    assert "road-warriors[v1] → v2" in out and "REGRESSION" in out
    assert main(["compare", str(tmp_path / "r"), "--cases", "v1", "v1"]) == 0
    assert main(["compare", str(tmp_path / "r"), "--cases", "v1", "v3"]) == 2
    assert "no runs of case 'v3' (there: road-warriors[v1], road-warriors[v2])" in capsys.readouterr().err


def test_a_change_measured_on_an_overloaded_machine_is_inconclusive_not_a_regression(tmp_path, capsys):
    """The flake this guards against: two runs of one configuration beside stress-ng
    (CPU stall 60-100%) differed 70% in handshake time, and compare called it a
    regression. Measured overloaded, a change is inconclusive; --strict-load judges it."""
    rng = random.Random(7)
    quiet = results_doc({"time_to_handshake": ("s", noisy(rng, 0.012, 5))}, stall=0.1)
    loaded = results_doc({"time_to_handshake": ("s", noisy(rng, 0.020, 5))}, stall=0.8)
    report = compare(one(quiet), one(loaded), stall_threshold=0.5)
    row = report.rows[0]
    assert row.verdict == OVERLOADED and not report.regressions
    assert (row.base_stall, row.new_stall) == (0.1, 0.8)
    assert "machine overloaded: CPU stall 10% base, 80% new; would be a regression" in row.note
    # judged whatever the load, it is the regression it looks like
    assert verdicts(compare(one(quiet), one(loaded))) == {"time_to_handshake": REGRESSION}
    # both sides quiet: the threshold changes nothing
    calm = results_doc({"time_to_handshake": ("s", noisy(rng, 0.020, 5))}, stall=0.2)
    assert verdicts(compare(one(quiet), one(calm), stall_threshold=0.5)) == {"time_to_handshake": REGRESSION}
    # an unchanged metric stays unchanged, loaded or not
    same = results_doc({"time_to_handshake": ("s", noisy(rng, 0.012, 5))}, stall=0.9)
    assert verdicts(compare(one(quiet), one(same), stall_threshold=0.5)) == {"time_to_handshake": UNCHANGED}

    # a step that fills the CPU by itself (a CPU-bound iperf3: 50-70% stall on idle
    # cores) stalls as much on both sides: that is its own demand, and it is judged;
    # 20 points more on one side is load from outside; at 90% PSI cannot tell
    rates = lambda rate, stall: results_doc({"tunnel.throughput": ("bit/s", noisy(rng, rate, 5, cv=0.01))}, stall=stall)
    assert verdicts(compare(one(rates(20e6, 0.6)), one(rates(16e6, 0.65)), stall_threshold=0.5)) == {"tunnel.throughput": REGRESSION}
    assert verdicts(compare(one(rates(20e6, 0.6)), one(rates(16e6, 0.85)), stall_threshold=0.5)) == {"tunnel.throughput": OVERLOADED}
    assert verdicts(compare(one(rates(20e6, 0.85)), one(rates(16e6, 0.6)), stall_threshold=0.5)) == {"tunnel.throughput": OVERLOADED}
    assert verdicts(compare(one(rates(20e6, 0.95)), one(rates(16e6, 0.96)), stall_threshold=0.5)) == {"tunnel.throughput": OVERLOADED}
    assert verdicts(compare(one(rates(20e6, 0.3)), one(rates(16e6, 0.45)), stall_threshold=0.5)) == {"tunnel.throughput": REGRESSION}

    base, new = tmp_path / "base.json", tmp_path / "new.json"
    base.write_text(json.dumps(quiet))
    new.write_text(json.dumps(loaded))
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    assert "inconclusive (machine overloaded: CPU stall 10% base, 80% new" in out and "REGRESSION" not in out
    assert main(["compare", "--strict-load", str(base), str(new)]) == 1
    assert "REGRESSION" in capsys.readouterr().out


def test_several_runs_a_side_are_each_one_observation(tmp_path, capsys):
    """`--base R1 R2 R3 --new R4 R5 R6`: each run's value (the geometric mean of its
    repeats) one observation, so the test sees how much runs differ from each other.
    Here each run's handshake level differs by up to 25% (a machine's state), its
    repeats by 1%: one run against one run takes that for a change."""
    rng = random.Random(11)

    def run(name: str, level: float, rate: float) -> str:
        doc = results_doc({"time_to_handshake": ("s", noisy(rng, level, 3, cv=0.01)), "tunnel.throughput": ("bit/s", noisy(rng, rate, 3, cv=0.01))})
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(doc))
        return str(tmp_path / name)

    base = [run(f"base{i}", level, 20e6) for i, level in enumerate((0.11, 0.125, 0.138))]
    same = [run(f"same{i}", level, 20e6) for i, level in enumerate((0.128, 0.137, 0.131))]
    slow = [run(f"slow{i}", level, 10e6) for i, level in enumerate((0.128, 0.137, 0.131))]
    assert main(["compare", "--json", "--base", *base, "--new", *same]) == 0
    data = json.loads(capsys.readouterr().out)
    assert all(len(m["base"]) == 3 and len(m["new"]) == 3 for m in data["metrics"])
    assert {m["metric"]: m["verdict"] for m in data["metrics"]} == {"time_to_handshake": UNCHANGED, "tunnel.throughput": UNCHANGED}
    assert data["notes"] == ["runs against runs: 3 against 3, each run's value one observation"]
    # one run against one run sees only repeats: the level of a run looks like a change
    assert main(["compare", base[0], same[1]]) == 1
    assert "run against run: the repeats within a run do not measure" in capsys.readouterr().out

    assert main(["compare", "--base", *base, "--new", *slow]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in next(line for line in out.splitlines() if "tunnel.throughput" in line) and "(3 runs)" in out
    # runs of two environments on one side are refused, named
    other = json.loads((Path(slow[0]) / "results.json").read_text())
    other["environment"] = {"kernel_release": "6.12", "backend_requested": "kernel"}
    (Path(slow[0]) / "results.json").write_text(json.dumps(other))
    assert main(["compare", "--base", *base, "--new", *slow]) == 2
    assert "--new: its runs were taken in different environments" in capsys.readouterr().err
