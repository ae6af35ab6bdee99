"""harness.bisect: the halving, the judges, and `wgh bisect --configs` on stand-in runs."""

from __future__ import annotations

import json
import math
import random
import sys

import pytest

from harness import bisect as bisecting
from harness.bisect import BAD, GOOD, SKIP, MetricJudge, Trial, bisect, format_bisection, judge_verdicts
from harness.cli import main

KERNELS = [f"6.1.0-{n}" for n in range(47, 58)] + ["6.12.57", "6.12.118"]  # 13, oldest first


def results(status: str = "passed", rates: list[float] | None = None, release: str = "6.1.0-47-amd64") -> dict:
    scenarios = []
    for repeat, rate in enumerate(rates or [None]):
        steps = [{"index": 0, "kind": "ping", "outcome": "pass" if status == "passed" else "fail", "message": "0/3 replies", "measurements": {}}]
        if rate is not None:
            steps[0]["measurements"]["bulk.throughput"] = {"value": rate, "unit": "bit/s", "key": "bulk.throughput"}
        scenarios.append({"key": "site", "id": "site", "repeat": repeat + 1, "status": status, "steps": steps})
    return {"schema_version": 2, "environment": {"kernel_release": release}, "scenarios": scenarios}


def planted(first_bad: int):
    """Candidates at or after `first_bad` fail; records which were tried."""
    tried: list[str] = []

    def run(candidate: str) -> Trial:
        tried.append(candidate)
        return Trial(0, results("failed" if KERNELS.index(candidate) >= first_bad else "passed"))

    return run, tried


@pytest.mark.parametrize("first_bad", range(1, len(KERNELS)))
def test_finds_the_planted_regression_in_at_most_log2_plus_one_steps(first_bad):
    run, tried = planted(first_bad)
    result = bisect(KERNELS, run, judge_verdicts)
    assert result.found and result.first_bad == KERNELS[first_bad] and result.last_good == KERNELS[first_bad - 1]
    assert len(tried) <= bisecting.max_steps(len(KERNELS)) == math.ceil(math.log2(len(KERNELS))) + 1 == 5
    assert tried[0] == KERNELS[-1]  # the bad end first: is there anything to find?
    assert KERNELS[0] not in tried  # the good end is taken as given
    assert [s.verdict for s in result.steps][0] == BAD and "1 failed" in result.steps[0].evidence


def test_a_good_bad_end_means_nothing_to_find_after_one_step():
    run, tried = planted(len(KERNELS))  # nothing fails
    result = bisect(KERNELS, run, judge_verdicts)
    assert not result.found and tried == [KERNELS[-1]]
    assert "the bad end, 6.12.118, is good (not bad): no regression to find" in result.note


def test_check_good_boots_the_good_end_first():
    run, tried = planted(0)  # even the oldest fails
    result = bisect(KERNELS, run, judge_verdicts, check_good=True)
    assert tried == [KERNELS[0]] and not result.found and "the good end, 6.1.0-47, is bad" in result.note


def test_a_candidate_that_cannot_be_judged_is_skipped_for_its_neighbour():
    first_bad, unjudgeable = 6, {"6.1.0-52"}  # index 5: the last good one cannot be judged
    tried: list[str] = []

    def run(candidate: str) -> Trial:
        tried.append(candidate)
        if candidate in unjudgeable:
            return Trial(0, results("skipped"))
        return Trial(0, results("failed" if KERNELS.index(candidate) >= first_bad else "passed"))

    result = bisect(KERNELS, run, judge_verdicts)
    assert result.first_bad == KERNELS[first_bad] and result.undecided == ["6.1.0-52"] and not result.found
    assert "the first bad one is 6.1.0-52 or 6.1.0-53: 6.1.0-52 could not be judged" in result.note
    assert any(s.verdict == SKIP and "no case ran to a verdict" in s.evidence for s in result.steps)


def test_verdicts_of_runs_and_of_pytest_selections():
    assert judge_verdicts(Trial(0, results("passed")))[0] == GOOD
    verdict, evidence = judge_verdicts(Trial(1, results("failed")))
    assert verdict == BAD and "site: step 1 (ping): 0/3 replies" in evidence
    assert judge_verdicts(Trial(None, error="timed out after 900s")) == (SKIP, "timed out after 900s")
    assert judge_verdicts(Trial(0)) == (GOOD, "exit 0")
    assert judge_verdicts(Trial(1))[0] == BAD
    assert judge_verdicts(Trial(5))[0] == SKIP  # pytest collected nothing


def test_a_metric_judge_calls_a_halved_rate_bad_against_the_good_end():
    rng = random.Random(3)
    rates = lambda mean: [rng.gauss(mean, mean * 0.03) for _ in range(3)]  # noqa: E731
    judge = MetricJudge("bulk.throughput")
    levels = {k: (10e6 if KERNELS.index(k) >= 9 else 20e6) for k in KERNELS}
    result = bisect(KERNELS, lambda k: Trial(0, results(rates=rates(levels[k]))), judge)
    assert result.found and result.first_bad == KERNELS[9]
    assert result.steps[0].candidate == KERNELS[0] and result.steps[0].evidence == "the baseline"
    bad = next(s for s in result.steps if s.verdict == BAD)
    assert "site :: bulk.throughput" in bad.evidence and "regression" in bad.evidence and "n=3 vs 3" in bad.evidence
    assert len(result.steps) <= 6  # the baseline, then as with verdicts
    assert MetricJudge("other.metric", baseline=results(rates=rates(1e6)))(Trial(0, results(rates=rates(1e6))))[0] == SKIP


def test_fewer_than_two_candidates():
    with pytest.raises(ValueError, match="at least 2 candidates"):
        bisect(["6.1"], lambda c: Trial(0), judge_verdicts)


def test_wgh_bisect_over_config_versions(tmp_path, monkeypatch, capsys):
    """Each step runs `wgh run --configs VERSION FILES` on this machine (stood in for
    here); v3 is the first version whose run fails."""
    versions = []
    for name in ("v1", "v2", "v3", "v4", "v5"):
        (tmp_path / name).mkdir()
        versions.append(str(tmp_path / name))
    runs = []

    def fake_run_child(argv, stdout):
        runs.append(argv)
        assert argv[:3] == [sys.executable, "-m", "harness.cli"] and "scenario.yaml" in argv
        version = argv[argv.index("--configs") + 1]
        folder = tmp_path / "results" / argv[argv.index("--run-id") + 1]
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(results("failed" if version.endswith(("v3", "v4", "v5")) else "passed")))
        return 0

    monkeypatch.setattr("harness.matrix.run_child", fake_run_child)
    code = main(["bisect", "--configs", *versions, "--results-dir", str(tmp_path / "results"), "--", "scenario.yaml"])
    out = capsys.readouterr()
    assert code == 0, out
    assert f"first bad: {versions[2]} (last good: {versions[1]})" in out.out
    assert len(runs) == 3 and "at most 3 steps" in out.err
    (summary,) = (tmp_path / "results").glob("*-bisect.json")
    assert json.loads(summary.read_text())["first_bad"] == versions[2]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bisect", "--", "x.yaml"], "give --kernels A..B"),
        (["bisect", "--kernels", "6.1", "--configs", "a", "--", "x.yaml"], "give --kernels A..B"),
        (["bisect", "--kernels", "6.1.0-47..6.12.118"], "give what to run after --"),
        (["bisect", "--configs", "/nowhere/v1", "/nowhere/v2"], "not a folder of config files: /nowhere/v1, /nowhere/v2"),
        (["bisect", "--kernels", "6.1,6.12", "--metric", "x", "--", "pytest", "tests/"], "--metric needs scenario runs"),
        (["bisect", "--kernels", "6.1,6.12", "--metric", "x", "--repeat", "1", "--", "x.yaml"], "--repeat 2 or more"),
    ],
)
def test_wgh_bisect_refuses_what_it_cannot_do(argv, message, capsys, tmp_path):
    assert main([*argv[:1], "--results-dir", str(tmp_path), *argv[1:]]) == 2
    assert message in capsys.readouterr().err


def test_the_report_lists_each_steps_evidence():
    run, tried = planted(4)
    result = bisect(KERNELS, run, judge_verdicts)
    text = format_bisection(result)
    lines = text.splitlines()
    assert len(lines) == len(tried) + 1
    assert lines[0].startswith("step 1: 6.12.118 [6.1.0-47-amd64] (13/13, ") and ": BAD: 1 failed; site: step 1 (ping)" in lines[0]
    assert lines[-1] == f"wgh bisect: first bad: 6.1.0-51 (last good: 6.1.0-50), after {len(tried)} steps"
    assert result.to_json()["boots"] == len(tried)
