"""Flaky verdicts across repeated runs (harness.results.flakes), as the soak counts them,
and `wgh report` of a soak summary."""

from __future__ import annotations

import json

from harness.results.flakes import SOAK_KIND, Verdict, junit_verdicts, scenario_verdicts, summarize, verdicts_json


def _case(case_id: str, status: str, *steps: tuple[str, str], error: str | None = None) -> dict:
    return {
        "id": case_id, "status": status, "error": error,
        "steps": [{"index": i, "kind": "ping", "outcome": outcome, "message": message} for i, (outcome, message) in enumerate(steps)],
    }


def test_a_scenarios_verdict_is_its_status_with_the_failed_steps_and_their_causes():
    document = {"scenarios": [
        _case("a", "passed", ("pass", "ok")),
        _case("b", "failed", ("pass", "ok"), ("fail", "0/3 replies; likely cause [udp-blocked]: …")),
        _case("c", "skipped"),
        _case("d", "inconclusive", ("inconclusive", "machine overloaded: CPU stalled 90% …")),
        _case("e", "error", error="BuildError: no\nmore"),
    ]}
    found = scenario_verdicts(document)
    assert set(found) == {"a", "b", "d", "e"}, "skips depend on the host, not the run"
    assert found["a"] == Verdict("passed")
    assert found["b"].verdict == "failed: 2 fail [udp-blocked]" and found["b"].causes == ("udp-blocked",)
    assert "0/3 replies" in found["b"].message
    assert found["d"].verdict == "inconclusive" and "CPU stalled" in found["d"].message
    assert found["e"].verdict == "error: BuildError: no"


def test_a_case_is_flaky_when_its_verdicts_differ_and_inconclusive_is_no_verdict():
    ok, bad, unsure = Verdict("passed"), Verdict("failed: 1 fail", "1/3 replies", ()), Verdict("inconclusive", "stalled")
    runs = [{"x": ok, "y": ok, "z": ok}, {"x": bad, "y": unsure, "z": ok}, {"x": ok, "y": ok}]
    summary = summarize(runs)
    assert summary.runs == 3 and summary.cases == 3
    assert [f.id for f in summary.flaky] == ["x", "z"], "z is absent from a run: that differs too"
    x = summary.flaky[0]
    assert x.verdicts == {"passed": 2, "failed: 1 fail": 1} and x.messages == ["1/3 replies"]
    assert summary.inconclusive == 1 and summary.failures == 1
    assert summary.verdicts == 8  # 9 case-runs, one inconclusive
    assert summarize([{"x": ok}, {"x": ok}]).flaky == []


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.unit.test_a" name="test_ok" time="0.1"/>
<testcase classname="tests.unit.test_a" name="test_bad" time="0.1"><failure message="assert 1 == 2">trace</failure></testcase>
<testcase classname="tests.unit.test_a" name="test_broken" time="0.1"><error message="fixture failed">trace</error></testcase>
<testcase classname="scenarios.nat" name="nat" time="0.1"><skipped type="pytest.skip" message="inconclusive (machine overloaded): step 2 …"/></testcase>
<testcase classname="scenarios.x" name="x" time="0.1"><skipped type="pytest.skip" message="netem is missing"/></testcase>
</testsuite></testsuites>"""


def test_pytest_verdicts_come_from_its_junit_report():
    found = junit_verdicts(JUNIT)
    assert found["tests.unit.test_a::test_ok"].verdict == "passed"
    assert found["tests.unit.test_a::test_bad"] == Verdict("failed", "assert 1 == 2")
    assert found["tests.unit.test_a::test_broken"].verdict == "error"
    assert found["scenarios.nat::nat"].verdict == "inconclusive"
    assert found["scenarios.x::x"].verdict == "skipped"


def test_wgh_report_shows_a_soak_summary(tmp_path, wgh_cli):
    ok, bad = Verdict("passed"), Verdict("failed: 1 fail", "1/3 replies", ())
    document = {
        "kind": SOAK_KIND, "version": 1, "started": "2026-12-05T08:00:00Z", "seconds": 60,
        "machine": {"cpus": 2, "kernel": "6.1", "stall_threshold": 0.5}, "load": "stress-ng --cpu 2 beside it",
        "commands": {"library": "wgh run -j auto scenarios/"},
        "sets": [{"name": "library", "runs": [
            {"index": 1, "seconds": 30, "exit": 0, "cpu_stall": 0.9, "verdicts": verdicts_json({"nat": ok})},
            {"index": 2, "seconds": 30, "exit": 1, "cpu_stall": 0.8, "verdicts": verdicts_json({"nat": bad})},
        ]}],
    }
    path = tmp_path / "soak.json"
    path.write_text(json.dumps(document))
    done = wgh_cli("report", str(path), "--format", "markdown", "-o", "-")
    assert done.returncode == 0, done.stderr
    assert "| library | 2 | 2 | 1 | 0 | 1 | 85% |" in done.stdout
    assert "flaky (library) `nat`: passed ×1, failed: 1 fail ×1: 1/3 replies" in done.stdout
    html = wgh_cli("report", str(path), "-o", str(tmp_path / "soak.html"))
    assert html.returncode == 0 and "Flaky verdicts" in (tmp_path / "soak.html").read_text()
    mixed = wgh_cli("report", str(path), "results/")
    assert mixed.returncode == 2 and "on its own" in mixed.stderr
