"""The parent of `wgh run -j N`: worker processes, each running one case at a time.

Cases that share the machine well run side by side, longest first; a case that must
have the machine to itself (`runs_alone`: throughput, keepalive timing) runs after
them, one at a time. Every finished case comes back as its results.json entry, in the
order cases finish.

Signals: the workers are their own process groups, so a terminal's Ctrl-C reaches
only this process, which passes SIGTERM on to every busy worker and waits while each
tears its case down (further signals are deferred; a third aborts, as in a serial run).
A worker gets SIGTERM too when this process dies, however it dies (PR_SET_PDEATHSIG:
workers are forked by a zygote that imported what the cases need once, see
harness.workers.zygote, and that dies with this process), so a SIGKILLed parent
leaves only torn-down runs, or what the reaper removes.
"""

from __future__ import annotations

import collections
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from harness.interrupts import shielded
from harness.workers.protocol import Task, receive
from harness.workers.zygote import ForkedProcess, Zygote, ZygoteUnavailable, dying_with_this_process, supported, worker_modules

POLL_SECONDS = 0.2
STDERR_KEPT = 40  # lines of a worker's stderr kept to explain its death
# a worker's stderr may end after its protocol stream: its last words (why it died) are
# waited for this long, not for ever (a process it left behind may hold the pipe open)
STDERR_GRACE = 1.0


@dataclass
class CaseRun:
    """One entry of the run: a case, which of its repeats, and whether it runs alone."""

    number: int
    case: Any  # ScenarioCase
    repeat: int = 1
    repeats: int = 1
    alone: bool = False


@dataclass
class FinishedCase:
    """What `wgh run` needs of a case a worker ran (the fields of a ScenarioResult it reads)."""

    number: int
    case: Any
    record: dict[str, Any]
    repeat: int = 1
    repeats: int = 1
    text: str = ""
    long: str = ""

    @property
    def status(self) -> str:
        return self.record["status"]

    @property
    def backends(self) -> dict[str, str]:
        return self.record.get("backends", {})

    def _seconds(self, part: str) -> float:
        return self.record["timing"][part]["value"]

    @property
    def build_seconds(self) -> float:
        return self._seconds("build")

    @property
    def steps_seconds(self) -> float:
        return self._seconds("steps")

    @property
    def teardown_seconds(self) -> float:
        return self._seconds("teardown")

    def summary(self) -> str:
        return self.text

    def report(self) -> str:
        return self.long


class PoolInterrupted(KeyboardInterrupt):
    """A signal stopped the run: every worker tore its case down. `finished` holds the
    cases that ended (interrupted ones with status 'error'), `summaries` what each
    interrupted case says was left."""

    def __init__(self, finished: list[FinishedCase], summaries: list[str]):
        super().__init__("interrupted")
        self.finished = finished
        self.summaries = summaries


@dataclass
class _Worker:
    process: subprocess.Popen | ForkedProcess
    stderr: collections.deque = field(default_factory=lambda: collections.deque(maxlen=STDERR_KEPT))
    running: CaseRun | None = None
    stopped: bool = False  # told there is no more work
    stderr_open: bool = True
    exited: float | None = None  # when its protocol stream ended: it has exited

    def give(self, task: Task, run: CaseRun) -> None:
        self.running = run
        self.process.stdin.write(task.to_line())
        self.process.stdin.flush()

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            try:
                self.process.stdin.close()
            except OSError:  # it is gone already
                pass


WORKER_COMMAND = (sys.executable, "-m", "harness.workers.worker")


def _start_zygote(runs: Sequence[CaseRun]) -> Zygote | None:
    """The process the workers are forked from, having imported what these cases need."""
    if not supported():
        return None
    try:
        return Zygote(worker_modules(r.case for r in runs), sorted({r.case.file for r in runs}))
    except OSError:
        return None


def _start_worker(events: queue.Queue, command: Sequence[str], zygote: Zygote | None) -> _Worker:
    process: subprocess.Popen | ForkedProcess | None = None
    if zygote is not None:
        try:
            process = zygote.spawn()
        except ZygoteUnavailable:  # this worker and the next start the slow way
            pass
    if process is None:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
            preexec_fn=dying_with_this_process(),
        )
    worker = _Worker(process)

    # both streams end up in one queue, read by the main thread only (it also draws the progress line)
    def read_protocol() -> None:
        with process.stdout:  # closed at its end: the reader owns it
            for line in process.stdout:
                events.put((worker, "protocol", line))
        events.put((worker, "protocol", None))  # its end

    def read_stderr() -> None:
        with process.stderr:
            for line in process.stderr:
                events.put((worker, "stderr", line.rstrip("\n")))
        events.put((worker, "stderr", None))

    threading.Thread(target=read_protocol, daemon=True).start()
    threading.Thread(target=read_stderr, daemon=True).start()
    return worker


def run_cases(
    runs: Sequence[CaseRun],
    workers: int,
    *,
    backend: str,
    userspace: str | None,
    engine: str | None,
    artifacts_dir: str | None,
    hosts: str | None = None,
    on_step: Callable[[CaseRun, dict[str, Any]], None] = lambda run, event: None,
    on_done: Callable[[FinishedCase], None] = lambda finished: None,
    on_stderr: Callable[[str], None] = lambda line: None,
    worker_command: Sequence[str] = WORKER_COMMAND,
) -> list[FinishedCase]:
    """Run every case on up to `workers` workers; returns them in the order they ended.
    Raises PoolInterrupted on SIGINT/SIGTERM/SIGHUP, once every worker has torn down."""
    shared = [r for r in runs if not r.alone]
    alone = [r for r in runs if r.alone]
    events: queue.Queue = queue.Queue()
    pool: list[_Worker] = []
    finished: list[FinishedCase] = []

    def task_for(run: CaseRun) -> Task:
        case = run.case
        return Task(run.number, case.file, case.case_id, run.repeat, run.repeats, backend, userspace, engine, artifacts_dir, hosts)

    def hand_out() -> None:
        busy = [w for w in pool if w.running is not None]
        idle = [w for w in pool if w.running is None and not w.stopped]
        while shared and (idle or len(pool) < workers):
            worker = idle.pop() if idle else _add_worker()
            worker.give(task_for(shared[0]), shared.pop(0))
            busy.append(worker)
        if not shared and alone and not busy:  # the shared cases are over: one alone at a time
            worker = idle.pop() if idle else _add_worker()
            worker.give(task_for(alone[0]), alone.pop(0))
            busy.append(worker)
        if not shared:  # who is idle now has nothing more to do (alone cases need only one)
            for worker in [w for w in pool if w.running is None and not w.stopped][(1 if alone else 0):]:
                worker.stop()

    zygote: list[Zygote | None] = []  # started with the first worker; None: workers start with exec

    def _add_worker() -> _Worker:
        if not zygote:
            zygote.append(_start_zygote(runs) if tuple(worker_command) == WORKER_COMMAND else None)
        worker = _start_worker(events, worker_command, zygote[0])
        pool.append(worker)
        return worker

    def handle(worker: _Worker, stream: str, line: str | None) -> list[str]:
        """One line (None: that stream ended); returns interruption summaries."""
        if stream == "stderr":
            if line is None:
                worker.stderr_open = False
            else:
                worker.stderr.append(line)
                on_stderr(line)
            return []
        run = worker.running
        if line is None:
            worker.exited = time.monotonic()  # reap() ends it, once its stderr is read
            worker.stop()  # its stdin, and no more work: nobody writes to a worker that has exited
            return []
        message = receive(line)
        if message["event"] == "step" and run is not None:
            on_step(run, message)
        elif message["event"] in ("done", "interrupted") and run is not None:
            worker.running = None
            done = FinishedCase(run.number, run.case, message["record"], run.repeat, run.repeats, message.get("summary", ""), message.get("report", ""))
            finished.append(done)
            if message["event"] == "interrupted":
                return [f"{run.case.id}: {message.get('summary', '')}"]
            on_done(done)
        return []

    def reap() -> None:
        """Workers that have exited leave the pool; one that died with a case makes that
        case an error, with the last lines it wrote to stderr."""
        for worker in [w for w in pool if w.exited is not None]:
            if worker.stderr_open and time.monotonic() - worker.exited < STDERR_GRACE:
                continue  # its last words may still be on the way
            code = worker.process.wait()
            run, worker.running = worker.running, None
            if run is not None:  # it died with a case: that case is an error
                record = _died(run, code, "\n".join(worker.stderr))
                finished.append(FinishedCase(run.number, run.case, record, run.repeat, run.repeats, record["error"], record["error"]))
                on_done(finished[-1])
            pool.remove(worker)

    try:
        hand_out()
        while pool:
            try:
                worker, stream, line = events.get(timeout=POLL_SECONDS)
                handle(worker, stream, line)
            except queue.Empty:
                pass
            reap()
            hand_out()
    except KeyboardInterrupt:
        summaries = _stop_all(pool, events, handle, reap)
        raise PoolInterrupted(finished, summaries) from None
    finally:
        for worker in pool:
            worker.stop()
        for started in zygote:
            if started is not None:
                started.close()
    return finished


def _stop_all(
    pool: list[_Worker], events: queue.Queue, handle: Callable[[_Worker, str, str | None], list[str]], reap: Callable[[], None]
) -> list[str]:
    """Every worker tears down: SIGTERM to the busy ones, end of input to all, and wait
    until each has ended (a signal meanwhile is deferred; the third aborts)."""
    summaries: list[str] = []
    with shielded(lambda: f"{sum(1 for w in pool if w.running)} cases still tearing down in their workers"):
        for worker in pool:
            worker.stop()
            if worker.running is not None:
                try:
                    worker.process.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        while pool:
            try:
                worker, stream, line = events.get(timeout=POLL_SECONDS)
                summaries += handle(worker, stream, line)
            except queue.Empty:
                pass
            reap()
    return summaries


def _died(run: CaseRun, code: int, stderr_tail: str) -> dict[str, Any]:
    """The results.json entry of a case whose worker died under it."""
    how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    error = f"the worker running this case died ({how})" + (f"; its last output:\n{stderr_tail}" if stderr_tail else "")
    case = run.case
    zero = {"value": 0.0, "unit": "s"}
    return {
        "key": case.id, "repeat": run.repeat, "repeats": run.repeats, "run_id": "", "id": case.id, "name": case.name,
        "file": case.file, "file_sha256": case.file_sha256, "case": case.case_id, "matrix": case.matrix_values,
        "status": "error", "error": error, "backends": {},
        "timing": {"build": zero, "steps": dict(zero), "teardown": dict(zero)}, "steps": [], "artifacts": [],
    }
