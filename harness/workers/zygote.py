"""A process that imports what a case needs once and forks `wgh run -j`'s workers from
that image, so each worker starts running cases at once instead of importing pyroute2,
pydantic, cryptography and the harness again (~0.3 s each on metal, ~5 s in an
emulated VM: with 8 workers on 2 CPUs, 20 s of the run).

The parent talks to it over a socket pair: each request carries the new worker's
stdin, stdout and stderr pipes and a status pipe (SCM_RIGHTS); the answer is the
worker's PID and a pidfd, so the parent signals that very process and no other. The
zygote reaps its workers and writes each one's exit status to its status pipe.

Lifetimes: the zygote is its own process group (a terminal's Ctrl-C reaches the parent
only) and gets SIGTERM when the parent dies (PR_SET_PDEATHSIG), or exits when the
socket ends; each worker gets SIGTERM when the zygote dies. So a SIGKILLed parent
still makes every worker tear its case down, as with workers it started itself.

Needs pidfds (Linux 5.3): without them, or if the zygote fails, workers are started
with a plain exec, as before."""

from __future__ import annotations

import functools
import importlib
import os
import signal
import socket
import struct
import subprocess
import sys
import traceback
from typing import Any, Callable, Iterable, Sequence

from harness.fdwait import readable

# what every case imports (the worker's loop, a run, the netns engine, the steps and diagnoses)
BASE_MODULES = (
    "harness.workers.worker",
    "harness.run",
    "harness.engine.netns",
    "harness.scenario.steps",
    "harness.steps.basic",
    "harness.steps.wgstate",
    "harness.steps.actions",
    "harness.steps.peers",
    "harness.steps.probe",
    "harness.steps.capture",
    "harness.steps.throughput",
    "harness.diagnosis.tunnel",
)
# scapy (~1 s on metal, tens of seconds emulated): only for runs whose cases capture or serve DNS
SCAPY_MODULES = ("scapy.layers.inet", "scapy.layers.inet6", "scapy.layers.l2", "scapy.layers.dns", "scapy.utils")
_STATUS = struct.Struct("i")


class ZygoteUnavailable(OSError):
    """The zygote could not fork a worker (it died, or failed to import): start one with exec."""


def worker_modules(cases: Iterable[Any]) -> list[str]:
    """The modules the zygote imports for these cases (ScenarioCase): the base set, and
    scapy if any case captures packets or runs a DNS server."""
    from harness.scenario.steps.registry import step_kind

    def uses_scapy(spec: Any) -> bool:
        captures = any(step_kind(step) == "capture" for step in spec.steps)
        return captures or any(node.dns for node in spec.nodes.values())

    return [*BASE_MODULES, *(SCAPY_MODULES if any(uses_scapy(case.spec) for case in cases) else ())]


def own_group_dying_with_parent(parent: int | None = None) -> None:
    """In a new worker or zygote, before it runs anything: its own process group (a
    terminal's Ctrl-C reaches the parent only, which passes it on) and SIGTERM (a clean
    teardown) when its parent dies, SIGKILL included. `parent`: its PID taken before
    the fork (a parent that died first would never send the signal)."""
    from harness.net.nsexec import die_with_parent

    os.setpgid(0, 0)
    die_with_parent(parent=parent)


def dying_with_this_process() -> Callable[[], None]:
    """A preexec_fn: the child is in its own group and dies with this process."""
    return functools.partial(own_group_dying_with_parent, os.getpid())


def supported() -> bool:
    """pidfds work here (Linux 5.3 and later)."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


class ForkedProcess:
    """A worker the zygote forked, with what the pool uses of a Popen: the three text
    streams, pid, send_signal() and wait()."""

    def __init__(self, pid: int, pidfd: int, stdin: int, stdout: int, stderr: int, status: int):
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd = pidfd
        self._status = status
        self.stdin = os.fdopen(stdin, "w", buffering=1)
        self.stdout = os.fdopen(stdout)
        self.stderr = os.fdopen(stderr)

    def send_signal(self, signum: int) -> None:
        """ProcessLookupError if it has exited; never reaches another process."""
        if self._pidfd < 0:
            raise ProcessLookupError(self.pid)
        signal.pidfd_send_signal(self._pidfd, signum)

    def wait(self) -> int:
        """Its exit status as Popen gives it (-N: killed by signal N); blocks until it exits."""
        if self.returncode is not None:
            return self.returncode
        data = b""
        while True:  # the zygote writes the status once it has reaped the worker, then closes
            chunk = os.read(self._status, _STATUS.size - len(data))
            data += chunk
            if not chunk or len(data) == _STATUS.size:
                break
        if len(data) == _STATUS.size:
            self.returncode = _STATUS.unpack(data)[0]
        else:  # the zygote died first: the worker was told to stop (SIGTERM); wait for its end
            readable(self._pidfd, None)
            self.returncode = -signal.SIGTERM
        os.close(self._status)
        os.close(self._pidfd)
        self._pidfd = -1
        return self.returncode


class Zygote:
    """The parent's side: started with the modules to import and the scenario files to
    load, spawn() per worker, close() once they have ended."""

    def __init__(self, modules: Sequence[str], files: Sequence[str] = ()):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "harness.workers.zygote", str(theirs.fileno()), *modules, "--", *files],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                preexec_fn=dying_with_this_process(),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._socket: socket.socket | None = ours

    def spawn(self) -> ForkedProcess:
        """A new worker (the first waits while the zygote imports). ZygoteUnavailable if it cannot."""
        if self._socket is None:
            raise ZygoteUnavailable("the zygote is gone")
        pipes = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, status
        theirs = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
        ours = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
        try:
            socket.send_fds(self._socket, [b"fork"], theirs)
            answer, fds, _, _ = socket.recv_fds(self._socket, 32, 1)
        except BaseException as exc:
            self._lost()
            for fd in ours:
                os.close(fd)
            if isinstance(exc, OSError):
                raise ZygoteUnavailable(f"the zygote failed: {exc}") from exc
            raise  # an interrupt: any worker forked meanwhile sees its stdin end, and exits
        finally:
            for fd in theirs:
                os.close(fd)
        if not answer or not fds:
            for fd in ours + fds:
                os.close(fd)
            self._lost()
            raise ZygoteUnavailable("the zygote exited (see its error above)")
        return ForkedProcess(int(answer), fds[0], *ours)

    def _lost(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def close(self) -> None:
        """The zygote exits. A worker still running gets SIGTERM (its parent died) and
        tears its case down: close it once the workers have ended."""
        self._lost()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the zygote itself ------------------------------------------------------------------


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[0]))
    modules, files = _split(argv[1:])
    for module in modules:
        importlib.import_module(module)
    loaded = _load(files)
    statuses: dict[int, int] = {}  # worker pid -> the write end of its status pipe

    def reap(signum: int, frame: Any) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            fd = statuses.pop(pid, None)
            if fd is not None:
                try:
                    os.write(fd, _STATUS.pack(os.waitstatus_to_exitcode(status)))
                except OSError:  # the parent stopped waiting
                    pass
                os.close(fd)

    signal.signal(signal.SIGCHLD, reap)
    me = os.getpid()
    while True:
        message, fds, _, _ = socket.recv_fds(control, 16, 4)
        if not message:
            return 0  # the parent is done, or gone
        stdin, stdout, stderr, status = fds
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # not reaped before its pidfd exists
        try:
            pid = os.fork()
            if pid == 0:
                _become_worker(me, control, stdin, stdout, stderr, [status, *statuses.values()], loaded)
            pidfd = os.pidfd_open(pid)
            statuses[pid] = status
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        for fd in (stdin, stdout, stderr):
            os.close(fd)
        socket.send_fds(control, [str(pid).encode()], [pidfd])
        os.close(pidfd)


def _split(args: list[str]) -> tuple[list[str], list[str]]:
    """Modules to import, and scenario files to load: `MODULE... -- FILE...`."""
    if "--" not in args:
        return args, []
    cut = args.index("--")
    return args[:cut], args[cut + 1 :]


def _load(files: list[str]) -> dict[str, list]:
    """The run's scenario files, loaded once for every worker (one that fails is left to
    the worker that gets its case, which reports the error as it would have)."""
    if not files:
        return {}
    from harness.errors import HarnessError
    from harness.scenario.load import load_file

    loaded = {}
    for path in files:
        try:
            loaded[path] = load_file(path)
        except (HarnessError, OSError):
            pass
    return loaded


def _become_worker(
    zygote: int, control: socket.socket, stdin: int, stdout: int, stderr: int, not_ours: list[int], loaded: dict[str, list]
) -> None:
    """In the forked child: become a worker on the given pipes; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # its own children are waited for one by one
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        own_group_dying_with_parent(zygote)  # exits if the zygote died before: no one would stop us
        control.close()
        for fd in not_ours:
            os.close(fd)
        for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(fd, target)
            os.close(fd)
        from harness.workers import worker

        code = worker.main([], loaded=loaded)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
