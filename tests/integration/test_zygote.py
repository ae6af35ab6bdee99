"""The zygote `wgh run -j` forks its workers from: a forked worker runs a real case, its
exit status and signals reach the parent through the zygote, and a zygote that dies
takes its workers down (so a SIGKILLed parent still leaves only torn-down cases)."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import pytest

from harness.processes import parent_of, process_running, process_start_time
from harness.workers.protocol import Task
from harness.workers.zygote import BASE_MODULES, Zygote, ZygoteUnavailable, supported

from .placement import host_only

pytestmark = [host_only, pytest.mark.skipif(not supported(), reason="needs pidfds (Linux 5.3 or later)")]


@pytest.fixture
def zygote():
    started = Zygote(BASE_MODULES)
    yield started
    started.close()


def _wait(process, seconds: float) -> int | None:
    """process.wait(), given up after `seconds` (None)."""
    done: list[int] = []
    thread = threading.Thread(target=lambda: done.append(process.wait()), daemon=True)
    thread.start()
    thread.join(seconds)
    return done[0] if done else None


@pytest.mark.requires("root", "wireguard")
def test_a_forked_worker_runs_a_preloaded_case_and_exits_when_its_input_ends(tmp_path):
    scenario = tmp_path / "direct.yaml"
    scenario.write_text(Path("scenarios/direct.yaml").read_text())
    zygote = Zygote(BASE_MODULES, [str(scenario)])
    try:
        _runs_one_case(zygote, scenario)
    finally:
        zygote.close()


def _runs_one_case(zygote: Zygote, scenario: Path) -> None:
    worker = zygote.spawn()
    assert parent_of(worker.pid) == zygote.process.pid
    scenario.unlink()  # the zygote loaded it: the worker does not read it again
    task = Task(1, str(scenario), None, 1, 1, "wireguard-go", None, None, None)
    worker.stdin.write(task.to_line())
    worker.stdin.flush()
    events = []
    for line in worker.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "done":
            break
    assert events[-1]["record"]["status"] == "passed", events[-1]
    assert [e["outcome"] for e in events if e["event"] == "step"] == ["pass"] * 3
    worker.stdin.close()
    assert _wait(worker, 30) == 0


def test_a_signal_reaches_the_worker_and_its_status_comes_back(zygote):
    workers = [zygote.spawn() for _ in range(2)]
    workers[0].send_signal(signal.SIGKILL)
    assert _wait(workers[0], 30) == -signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        workers[0].send_signal(signal.SIGTERM)  # gone: the pidfd never reaches a reused pid
    workers[1].stdin.close()
    assert _wait(workers[1], 30) == 0


def test_a_zygote_that_dies_stops_its_workers_and_forks_no_more(zygote):
    worker = zygote.spawn()
    started = process_start_time(worker.pid)
    assert process_running(worker.pid, started)
    zygote.process.kill()
    zygote.process.wait()
    assert _wait(worker, 30) is not None, "the worker outlived its zygote"  # wait() ends when it has exited
    assert not process_running(worker.pid, started)
    with pytest.raises(ZygoteUnavailable):
        zygote.spawn()
