"""The machine's CPU pressure around timing checks (harness.pressure) and what a check
that failed on a stalled CPU becomes (harness.steps.checks): retried once, then
inconclusive; a named cause, a pass, or --strict-load keep their verdict."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness import pressure
from harness.context import RunContext
from harness.pressure import PressureReading, Stall
from harness.steps import checks
from harness.steps.checks import check
from harness.steps.result import StepResult

PSI = """some avg10=51.88 avg60=16.63 avg300=27.03 total=354577429
full avg10=0.00 avg60=0.00 avg300=0.00 total=0
"""


def test_the_some_total_is_read_from_a_psi_file():
    assert pressure.parse_some_total(PSI) == 354577429
    assert pressure.parse_some_total("full avg10=0.00 total=5\n") is None


def test_the_stall_share_is_the_growth_over_the_window_and_the_cgroups_is_judged():
    before = PressureReading(10.0, 1_000_000, 5_000_000, "/sys/fs/cgroup/ci/cpu.pressure")
    after = PressureReading(12.0, 2_500_000, 5_400_000, "/sys/fs/cgroup/ci/cpu.pressure")
    stall = pressure.between(before, after)
    assert stall.system == pytest.approx(0.75) and stall.cgroup == pytest.approx(0.2)
    assert stall.share == pytest.approx(0.2), "the harness's own cgroup is the sharper signal"
    assert not stall.overloaded(0.5)
    assert "cgroup /sys/fs/cgroup/ci/cpu.pressure" in stall.describe() and "host 75%" in stall.describe()
    host_only = pressure.between(PressureReading(0.0, 0, None, None), PressureReading(1.0, 2_000_000, None, None))
    assert host_only.share == 1.0, "clipped to the window"
    assert host_only.overloaded(0.5) and "/proc/pressure/cpu" in host_only.describe()
    unknown = pressure.between(PressureReading(0.0, None, None, None), PressureReading(1.0, None, None, None))
    assert unknown.share is None and not unknown.overloaded(0.01), "no PSI: never called overloaded"
    assert unknown.to_json() == {"window_s": 1.0, "cpu_stall": None, "host_cpu_stall": None}


def test_the_cgroup_pressure_file_is_found_for_a_cgroup_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr(pressure, "CGROUP_ROOT", tmp_path)
    assert pressure.own_cgroup_pressure("0::/\n") is None, "the root cgroup's figures are the host's"
    (tmp_path / "unified" / "job").mkdir(parents=True)
    (tmp_path / "unified" / "job" / "cpu.pressure").write_text(PSI)
    assert pressure.own_cgroup_pressure("1:cpu:/\n0::/job\n") == tmp_path / "unified" / "job" / "cpu.pressure"
    assert pressure.own_cgroup_pressure("0::/elsewhere\n") is None


def test_the_threshold_is_read_from_the_environment(monkeypatch):
    assert pressure.stall_threshold() == pressure.DEFAULT_THRESHOLD
    monkeypatch.setenv(pressure.THRESHOLD_ENV, "80%")
    assert pressure.stall_threshold() == pytest.approx(0.8)
    monkeypatch.setenv(pressure.THRESHOLD_ENV, "1.5")
    with pytest.raises(ValueError, match="at most 1"):
        pressure.stall_threshold()


# --- what a failed check on a stalled CPU becomes ------------------------------------


class Scripted:
    """Stands in for a step runner: each call returns the next scripted outcome."""

    def __init__(self, *outcomes: tuple[bool, str]):
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self, network, index, args):
        passed, message = self.outcomes[self.calls]
        self.calls += 1
        return StepResult(index, "ping", "ping a → b", passed, getattr(args, "expect", "pass"), message=message)


@pytest.fixture
def stalled(monkeypatch):
    """Run checks with a scripted runner; `stalled(share, *outcomes)` → (result, runner)."""

    def run(share: float, *outcomes: tuple[bool, str], step: dict | None = None):
        runner = Scripted(*outcomes)
        monkeypatch.setattr(checks, "runner", lambda kind: runner)
        monkeypatch.setenv(pressure.TEST_STALL_ENV, str(share))
        network = SimpleNamespace(context=RunContext(), step_started=None)
        return check(network, step or {"ping": {"from": "a", "to": "b"}}), runner

    return run


def test_a_check_failed_on_a_stalled_cpu_is_retried_then_inconclusive(stalled):
    result, runner = stalled(0.9, (False, "1/3 replies, rtt max 900 ms"), (False, "2/3 replies"))
    assert runner.calls == 2, "retried once"
    assert result.outcome == "inconclusive" and result.inconclusive and not result.failed
    assert result.message.startswith("machine overloaded: CPU stalled 90%")
    assert "retried once, stalled 90% again" in result.message and "2/3 replies" in result.message
    assert result.to_json()["load"]["cpu_stall"] == 0.9


def test_a_retry_that_passes_is_a_pass_that_says_so(stalled):
    result, runner = stalled(0.9, (False, "1/3 replies"), (True, "3/3 replies"))
    assert runner.calls == 2 and result.outcome == "pass"
    assert "retried once: the first attempt failed while the machine was overloaded" in result.message


def test_a_failure_on_an_idle_cpu_is_a_failure(stalled):
    result, runner = stalled(0.1, (False, "1/3 replies"))
    assert runner.calls == 1 and result.outcome == "fail" and result.failed
    assert result.to_json()["load"]["cpu_stall"] == 0.1, "the stall is recorded anyway"


def test_a_failure_with_a_named_cause_is_not_blamed_on_load(stalled):
    result, runner = stalled(0.95, (False, "0/3 replies; likely cause [udp-blocked]: …"))
    assert runner.calls == 1 and result.outcome == "fail"


def test_load_never_explains_a_pass(stalled):
    result, runner = stalled(0.95, (True, "3/3 replies"))
    assert runner.calls == 1 and result.outcome == "pass"


def test_strict_load_keeps_the_failure_and_names_the_stall(stalled, monkeypatch):
    monkeypatch.setenv(pressure.STRICT_LOAD_ENV, "1")
    result, runner = stalled(0.9, (False, "1/3 replies"))
    assert runner.calls == 1 and result.outcome == "fail"
    assert "--strict-load" in result.message and "CPU stalled 90%" in result.message


def test_a_check_that_cannot_be_repeated_is_inconclusive_at_once(stalled):
    result, runner = stalled(0.9, (False, "no handshake within 2s"), step={"handshake": {"between": ["a", "b"], "within": "2s"}})
    assert runner.calls == 1 and result.outcome == "inconclusive"


def test_steps_that_judge_no_timing_carry_no_load(stalled):
    result, runner = stalled(0.9, (False, "still 1 s to go"), step={"sleep": "1s"})
    assert runner.calls == 1 and result.stall is None and "load" not in result.to_json()


def test_a_stop_is_judged_over_its_backgrounds_whole_run(monkeypatch):
    context = RunContext()
    context.step_pressure = PressureReading(0.0, 0, None, None)  # the probe step began here
    context.probes["p"] = ("stream", None, 0.0)
    began = PressureReading(9.0, 9_000_000, None, None)
    assert checks._window_start(SimpleNamespace(context=context), "stop", SimpleNamespace(probe="p", capture=None, iperf3=None), began).at == 0.0
    assert checks._window_start(SimpleNamespace(context=context), "ping", SimpleNamespace(), began) is began


def test_an_inconclusive_case_is_neither_failed_nor_passed():
    from harness.run import ScenarioResult

    step = StepResult(0, "ping", "ping", False, message="…")
    step.inconclusive = True
    result = ScenarioResult(case=SimpleNamespace(id="x"), steps=[step])
    assert result.failed_steps == [] and result.inconclusive_steps == [step]
    assert "inconclusive" in result.summary()
    assert Stall(1.0, 0.9, None).overloaded(0.5)


def test_the_heartbeat_counts_only_late_wake_ups_and_its_share_is_judged():
    beat = pressure.Heartbeat(tick=0.01, floor=0.02)
    for late in (0.001, 0.015, 0.02):  # scheduler and GIL latency: not counted
        beat.note(late)
    assert beat.lag_us == 0
    beat.note(0.6)
    assert beat.lag_us == 600_000
    stall = pressure.between(PressureReading(0.0, 0, None, None, 0), PressureReading(1.0, 100_000, None, None, 600_000))
    assert stall.psi == pytest.approx(0.1) and stall.lag == pytest.approx(0.6) and stall.share == pytest.approx(0.6)
    assert stall.overloaded(0.5) and stall.to_json()["timer_lag"] == 0.6
    assert "not run for 60% of the 1.0s measurement" in stall.describe() and "CPU stalled 10%" in stall.describe()


def test_a_stopped_process_sees_its_stop_as_heartbeat_lag():
    """What a descheduled VM looks like from inside: the process is not run (SIGSTOP
    here), so its heartbeat wakes late by the whole stop, though no CPU was contended."""
    import signal
    import subprocess
    import sys
    import time

    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from harness import pressure\n"
         "pressure.read(); print('ready', flush=True); sys.stdin.readline(); time.sleep(0.1)\n"
         "print(pressure.HEARTBEAT.lag_us, flush=True)"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGSTOP)
        time.sleep(0.5)
        child.send_signal(signal.SIGCONT)
        child.stdin.write("go\n")
        child.stdin.flush()
        lag_us = int(child.stdout.readline())
    finally:
        child.kill()
        child.wait()
    assert lag_us >= 300_000, lag_us
