"""Progress output of `wgh run` (and `wgh matrix`): the live line with its ETA, quiet
mode, JSON Lines; cmd_run driven with fake scenario results (no root, no network)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from harness import cli
from harness.progress import RunProgress, format_duration

REPO = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_eta_is_the_mean_so_far_times_what_is_left() -> None:
    clock, err = FakeClock(), io.StringIO()
    progress = RunProgress(4, "normal", err=err, out=io.StringIO(), clock=clock, live=True)
    assert progress.eta() is None  # nothing finished: no basis
    progress.update("a: building")
    assert err.getvalue().endswith("[1/4 0.0s] a: building")
    clock.now += 10
    progress.finished("passed", "PASS  a")
    clock.now += 20
    progress.finished("passed", "PASS  b")
    # mean 15 s × 2 left
    assert progress.eta() == 30.0
    clock.now += 5  # 5 s into the third
    assert progress.eta() == 25.0
    progress.update("c: step 2/3 ping pass")
    assert err.getvalue().endswith("\r\x1b[K[3/4 35s, ETA 25s] c: step 2/3 ping pass")
    # finished lines clear the live line first, so they stand alone in the scrollback
    assert "\r\x1b[KPASS  a\n" in err.getvalue()


def test_off_a_terminal_only_finished_lines_and_failure_reports() -> None:
    err = io.StringIO()
    progress = RunProgress(2, "normal", err=err, out=io.StringIO(), live=False)
    progress.update("a: building")
    progress.finished("passed", "PASS  a", report="long a")
    progress.finished("failed", "FAIL  b", report="long b")
    assert err.getvalue() == "PASS  a\nFAIL  b\nlong b\n"


def test_quiet_shows_only_failures_and_the_summary() -> None:
    err, out = io.StringIO(), io.StringIO()
    progress = RunProgress(3, "quiet", err=err, out=out, live=True)  # a terminal does not matter
    progress.update("a: building")
    progress.finished("passed", "PASS  a", report="long a")
    progress.finished("error", "ERROR b", report="long b")
    progress.finished("skipped", "SKIP  c")
    progress.summary({"passed": 1, "error": 1, "skipped": 1}, "1 passed, 1 error, 1 skipped")
    assert err.getvalue() == "ERROR b\nlong b\n"
    assert out.getvalue() == "1 passed, 1 error, 1 skipped\n"


def test_json_lines_one_object_per_scenario_then_a_summary() -> None:
    clock, err, out = FakeClock(), io.StringIO(), io.StringIO()
    progress = RunProgress(2, "jsonl", err=err, out=out, clock=clock, live=True)
    clock.now += 2
    progress.finished("passed", "PASS  a", record={"id": "a", "status": "passed", "steps": []})
    clock.now += 3
    progress.finished("failed", "FAIL  b", report="why b failed", record={"id": "b", "status": "failed", "steps": []})
    progress.summary({"passed": 1, "failed": 1}, "ignored", exit_code=1, results="results/x/results.json")
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["scenario", "scenario", "summary"]
    assert [(e["id"], e["number"], e["total"], e["elapsed"]) for e in events[:2]] == [("a", 1, 2, 2.0), ("b", 2, 2, 5.0)]
    assert events[2] == {"event": "summary", "total": 2, "finished": 2, "counts": {"passed": 1, "failed": 1},
                         "exit_code": 1, "results": "results/x/results.json", "elapsed": 5.0}
    assert err.getvalue() == "why b failed\n"  # the human part stays on stderr


def test_durations_read_well() -> None:
    assert [format_duration(s) for s in (0.42, 12.4, 75, 3720)] == ["0.4s", "12s", "1m15s", "1h02m"]


# --- cmd_run with fake results ---------------------------------------------------------


@pytest.fixture
def fake_run(monkeypatch):
    """`wgh run` over two real scenario files whose cases "run" instantly: direct passes,
    no-endpoint fails."""
    import harness.run
    from harness.steps.result import Measurement, StepResult

    def run_case(case, *, backend="auto", userspace=None, engine=None, artifacts_dir=None, on_step=None, repeat=1, repeats=1):
        result = harness.run.ScenarioResult(case, repeat=repeat, repeats=repeats)
        ok = case.name == "direct"
        step = StepResult(0, "handshake", "handshake a ↔ b", passed=ok, message="" if ok else "no handshake within 2s")
        step.measurements["time_to_handshake"] = Measurement(0.0125, "s")
        if on_step:
            on_step(step)
        result.steps, result.status, result.backends = [step], "passed" if ok else "failed", {"a": "wireguard-go"}
        return result

    monkeypatch.setattr(harness.run, "run_case", run_case)
    monkeypatch.setattr(cli.interrupts, "install", lambda *a, **k: None)  # leave the test runner's signal handlers alone
    return [str(REPO / "scenarios" / "direct.yaml"), str(REPO / "scenarios" / "no-endpoint.yaml"), "--no-results", "--backend", "wireguard-go"]


def test_run_jsonl(fake_run, capsys) -> None:
    assert cli.main(["run", "--jsonl", *fake_run]) == cli.EXIT_FAILED
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines()]
    assert [(e["event"], e.get("id"), e.get("status")) for e in events] == [
        ("scenario", "direct", "passed"), ("scenario", "no-endpoint", "failed"), ("summary", None, None)]
    measured = events[0]["steps"][0]["measurements"]["time_to_handshake"]
    assert (measured["value"], measured["unit"]) == (0.0125, "s")
    assert events[2]["counts"] == {"passed": 1, "failed": 1} and events[2]["exit_code"] == cli.EXIT_FAILED
    assert "scenario no-endpoint" in captured.err  # the failure's report, for humans


def test_run_quiet(fake_run, capsys) -> None:
    assert cli.main(["run", "-q", *fake_run]) == cli.EXIT_FAILED
    captured = capsys.readouterr()
    assert captured.out == "1 passed, 1 failed\n"
    assert "direct" not in captured.err and captured.err.startswith("FAIL  no-endpoint")


def test_run_json_is_still_the_results_document(fake_run, capsys) -> None:
    assert cli.main(["run", "--json", *fake_run]) == cli.EXIT_FAILED
    document = json.loads(capsys.readouterr().out)
    assert [s["id"] for s in document["scenarios"]] == ["direct", "no-endpoint"]
    assert document["summary"] == {"passed": 1, "failed": 1}


def test_run_normal_prints_the_table(fake_run, capsys) -> None:
    assert cli.main(["run", *fake_run]) == cli.EXIT_FAILED
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].split() == ["scenario", "status", "backend", "build", "steps", "summary"]
    assert captured.out.rstrip().endswith("1 passed, 1 failed")
    assert "PASS  direct" in captured.err and "FAIL  no-endpoint" in captured.err


def test_matrix_jsonl_tags_each_scenario_with_its_kernel_and_backend(tmp_path: Path) -> None:
    from harness.matrix import Combination, _report_combination

    out, err = io.StringIO(), io.StringIO()
    progress = RunProgress(2, "jsonl", err=err, out=out, live=False)
    ok = Combination("6.1", "kernel", "s-6.1-kernel", exit_code=0, seconds=61.0,
                     results={"environment": {"kernel_release": "6.1.0-56-amd64"}, "scenarios": [{"id": "direct", "status": "passed"}]})
    died = Combination("6.12", "wireguard-go", "s-6.12-wg", exit_code=124, error="timed out after 1800s", seconds=1800.0)
    _report_combination(progress, ok, tmp_path / "a.json")
    _report_combination(progress, died, tmp_path / "b.json")
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["event"], e.get("id"), e["backend"], e["status"]) for e in events] == [
        ("scenario", "direct", "kernel", "passed"), ("combination", None, "kernel", "passed"), ("combination", None, "wireguard-go", "error")]
    assert events[0]["kernel_release"] == "6.1.0-56-amd64" and events[1]["counts"] == {"passed": 1}
    assert events[2]["error"] == "timed out after 1800s"
    assert err.getvalue() == ""  # no report text for a combination: its guest already printed it
