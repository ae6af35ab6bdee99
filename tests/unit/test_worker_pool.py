"""The `wgh run -j` pool, driven with a stand-in worker (no root, no network): how many
cases run at once, exclusive cases alone and last, a worker that dies, and a signal."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.workers.pool import CaseRun, PoolInterrupted, run_cases

# Speaks the worker protocol. A case id says what to do: "sleep:<s>", "die", "die-late"
# (its protocol stream ends first, its last words come 0.3 s later), or
# "hang" (until SIGTERM, then report the case as interrupted, as a real worker does).
FAKE_WORKER = textwrap.dedent(
    """
    import json, os, signal, sys, time
    log = open(sys.argv[1], "a")
    def say(event, **fields):
        print(json.dumps({"event": event, **fields}), flush=True)
    def record(task, status):
        zero = {"value": 0.0, "unit": "s"}
        return {"key": task["case_id"], "status": status, "backends": {}, "timing": {"build": zero, "steps": zero, "teardown": zero}}
    current = None
    def stop(signum, frame):
        log.write(f"end {current['number']} {time.monotonic()}\\n"); log.flush()
        say("interrupted", number=current["number"], record=record(current, "error"), summary="interrupted; everything run x built was torn down")
        sys.exit(130)
    signal.signal(signal.SIGTERM, stop)
    for line in sys.stdin:
        current = task = json.loads(line)
        what = task["case_id"]
        log.write(f"start {task['number']} {time.monotonic()}\\n"); log.flush()
        if what == "die":
            print("fake worker: something broke", file=sys.stderr, flush=True)
            sys.exit(3)
        if what == "die-late":
            sys.stdout.flush(); os.close(1); time.sleep(0.3)
            print("fake worker: broke after its output", file=sys.stderr, flush=True)
            os._exit(3)
        if what == "hang":
            time.sleep(60)
        time.sleep(float(what.split(":")[1]))
        say("step", number=task["number"], index=0, kind="sleep", outcome="pass")
        log.write(f"end {task['number']} {time.monotonic()}\\n"); log.flush()
        say("done", number=task["number"], record=record(task, "passed"), summary="1 step ok", report="")
    """
)


def _case(case_id: str) -> SimpleNamespace:
    return SimpleNamespace(file="x.yaml", case_id=case_id, id=f"x[{case_id}]", name="x", file_sha256="", matrix_values={}, spec=SimpleNamespace(steps=[None]))


def _run(tmp_path, cases: list[tuple[str, bool]], workers: int, **kwargs):
    script = tmp_path / "worker.py"
    script.write_text(FAKE_WORKER)
    log = tmp_path / "log"
    runs = [CaseRun(n, _case(case_id), alone=alone) for n, (case_id, alone) in enumerate(cases)]
    options = dict(backend="wireguard-go", userspace=None, engine=None, artifacts_dir=None)
    finished = run_cases(runs, workers, worker_command=[sys.executable, str(script), str(log)], **options, **kwargs)
    return finished, _intervals(log)


def _intervals(log) -> dict[int, tuple[float, float]]:
    starts, ends = {}, {}
    for line in log.read_text().splitlines() if log.exists() else []:
        what, number, when = line.split()
        (starts if what == "start" else ends)[int(number)] = float(when)
    return {n: (starts[n], ends.get(n, float("inf"))) for n in starts}


def _most_at_once(intervals) -> int:
    moments = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    now = most = 0
    for _, change in moments:
        now += change
        most = max(most, now)
    return most


def test_shared_cases_run_side_by_side_and_exclusive_ones_alone_after_them(tmp_path):
    cases = [("sleep:0.4", False)] * 6 + [("sleep:0.2", True)] * 2
    finished, intervals = _run(tmp_path, cases, workers=3)
    assert sorted(f.number for f in finished) == list(range(8))
    assert all(f.status == "passed" for f in finished)
    shared = [intervals[n] for n in range(6)]
    alone = [intervals[n] for n in (6, 7)]
    assert _most_at_once(shared) == 3, "three workers: three shared cases at once"
    last_shared_end = max(end for _, end in shared)
    assert all(start >= last_shared_end for start, _ in alone), "exclusive cases start once the shared ones are over"
    assert _most_at_once(alone) == 1, "and one at a time"


def test_a_worker_that_dies_makes_its_case_an_error_that_says_why_and_the_rest_runs(tmp_path):
    messages = []
    finished, _ = _run(tmp_path, [("die", False), ("sleep:0.1", False), ("sleep:0.1", False)], workers=2, on_stderr=messages.append)
    by_number = {f.number: f for f in finished}
    assert by_number[0].status == "error"
    assert "died (exit status 3)" in by_number[0].summary() and "something broke" in by_number[0].summary()
    assert by_number[1].status == by_number[2].status == "passed"
    assert "fake worker: something broke" in messages


def test_a_dead_workers_last_words_are_kept_when_they_come_after_its_output_ends(tmp_path):
    """CI16: the end of a dying worker's protocol stream was handled before its stderr
    line, and the error lost the reason. Here the reason comes 0.3 s after that end."""
    finished, _ = _run(tmp_path, [("die-late", False), ("sleep:0.1", False)], workers=1)
    by_number = {f.number: f for f in finished}
    assert by_number[0].status == "error" and "broke after its output" in by_number[0].summary()
    assert by_number[1].status == "passed"


def _interrupt_once_started(log: Path, cases: int) -> threading.Event:
    """SIGINT to this process once `cases` cases have started in their workers (each
    worker logs its start before it works): after the phase, never on a timer, which a
    busy machine outruns. Returns an event that stops the watcher."""
    give_up = threading.Event()

    def watch() -> None:
        while not give_up.is_set():
            text = log.read_text() if log.exists() else ""
            if sum(line.startswith("start ") for line in text.splitlines()) >= cases:
                os.kill(os.getpid(), signal.SIGINT)
                return
            give_up.wait(0.01)

    threading.Thread(target=watch, daemon=True).start()
    return give_up


def test_a_signal_stops_every_worker_and_waits_for_their_teardown(tmp_path):
    give_up = _interrupt_once_started(tmp_path / "log", 3)
    started = time.monotonic()
    with pytest.raises(PoolInterrupted) as caught:
        _run(tmp_path, [("hang", False)] * 3 + [("sleep:0.1", False)], workers=3)
    give_up.set()
    assert time.monotonic() - started < 10, "the hanging workers were stopped, not waited out"
    interrupted = [f for f in caught.value.finished if f.status == "error"]
    assert len(interrupted) == 3 and len(caught.value.summaries) == 3
    assert all("torn down" in s for s in caught.value.summaries)


def test_auto_workers_follow_the_tightest_limit(monkeypatch):
    from harness.workers import capacity

    monkeypatch.setattr(capacity.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(capacity, "_mem_available", lambda: 64 * 2**30)
    monkeypatch.setattr(capacity, "_max_net_namespaces", lambda: 1_000_000)
    monkeypatch.setattr(capacity.resource, "getrlimit", lambda which: (1_000_000, 1_000_000))
    assert capacity.auto_workers([3] * 50) == capacity.Capacity(8, "4 per CPU")
    assert capacity.auto_workers([3] * 3) == capacity.Capacity(3, "the number of cases")
    monkeypatch.setattr(capacity, "_mem_available", lambda: 600 * 2**20)  # 600 MiB: 3 workers of 3-node cases
    assert capacity.auto_workers([3] * 50) == capacity.Capacity(3, "available memory")
    # counted for the largest cases at once, not every worker running the largest: a
    # 25-node case (720 MiB) next to 3-node ones (192 MiB each) in 2 GiB leaves room for 6
    # more (counting every worker as the 25-node one gave 2)
    monkeypatch.setattr(capacity, "_mem_available", lambda: 2 * 2**30)
    assert capacity.auto_workers([3] * 50 + [25]) == capacity.Capacity(7, "available memory")
    monkeypatch.setattr(capacity, "_mem_available", lambda: 64 * 2**30)
    monkeypatch.setattr(capacity, "_max_net_namespaces", lambda: 20)
    assert capacity.auto_workers([10] * 50) == capacity.Capacity(2, "user.max_net_namespaces")
    assert capacity.auto_workers([10] + [2] * 50) == capacity.Capacity(6, "user.max_net_namespaces")  # 10 + 5 x 2
    # the open-files limit is per process: with the common soft limit of 1024 a 26-node
    # case next to others does not count against it (summing the workers' files as if
    # they shared one limit held the emulated VM to 4 workers)
    monkeypatch.setattr(capacity, "_max_net_namespaces", lambda: 1_000_000)
    monkeypatch.setattr(capacity.resource, "getrlimit", lambda which: (1024, 4096))
    assert capacity.auto_workers([26, 11, 6] + [5] * 50) == capacity.Capacity(8, "4 per CPU")
    monkeypatch.setattr(capacity.resource, "getrlimit", lambda which: (84, 4096))  # the parent's files: (84 - 64) / 5
    assert capacity.auto_workers([3] * 50) == capacity.Capacity(4, "the open-files limit")
    monkeypatch.setattr(capacity, "_mem_available", lambda: 10 * 2**20)
    assert capacity.auto_workers([3] * 50).workers == 1, "never fewer than one"


def test_the_zygote_imports_scapy_only_for_cases_that_capture_or_serve_dns():
    from harness.scenario.load import load_file
    from harness.workers.zygote import BASE_MODULES, SCAPY_MODULES, worker_modules

    plain = load_file("scenarios/direct.yaml") + load_file("scenarios/nat.yaml")
    assert worker_modules(plain) == list(BASE_MODULES)
    for capturing in ("scenarios/nat-keepalive.yaml", "scenarios/dns-endpoint.yaml"):
        assert set(SCAPY_MODULES) <= set(worker_modules(plain + load_file(capturing))), capturing


def test_a_worker_the_zygote_cannot_fork_starts_with_exec():
    import queue
    import subprocess

    from harness.workers import pool
    from harness.workers.zygote import ZygoteUnavailable

    class GoneZygote:
        def spawn(self):
            raise ZygoteUnavailable("the zygote is gone")

    worker = pool._start_worker(queue.Queue(), [sys.executable, "-c", "import sys; sys.stdin.read()"], GoneZygote())
    worker.stop()
    assert worker.process.wait() == 0
    assert isinstance(worker.process, subprocess.Popen), "started with exec"
