"""Processes the harness started (wireguard-go, dnsmasq, iperf3, watchdogs): told
apart from a recycled PID by their start time, and stopped by PID only, never by name.

Every process the harness starts carries its starter in its environment
(WGH_OWNER=<pid>:<start time>), and so does everything that process starts in turn (a
shell step's background jobs). A run killed before it could record a process (a
SIGKILL between fork and the record's write) still leaves it findable: a process whose
owner is gone is the harness's to end, whatever its name, namespace or parent.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Mapping, Sequence


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def process_start_time(pid: int) -> int | None:
    """Start time in clock ticks since boot: tells a PID from a recycled one."""
    fields = stat_fields(pid)
    return int(fields[19]) if fields else None


OWNER_ENV = "WGH_OWNER"


def owner_marker() -> str:
    """The value of WGH_OWNER for this process's children: looked up by the current
    PID, so a forked worker marks its children as its own, not as its parent's."""
    return _marker_of(os.getpid())


@functools.lru_cache(maxsize=4)
def _marker_of(pid: int) -> str:
    return f"{pid}:{process_start_time(pid)}"


def marked_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's environment) with this process as the owner."""
    marked = dict(os.environ if env is None else env)
    marked[OWNER_ENV] = owner_marker()
    return marked


@dataclass(frozen=True)
class OwnedProcess:
    """A process that carries an owner's marker: what it is, and who started it."""

    pid: int
    start: int
    name: str
    owner_pid: int
    owner_start: int | None

    def owner_alive(self) -> bool:
        return process_running(self.owner_pid, self.owner_start)

    def describe(self) -> str:
        return f"{self.name} {self.pid} (started by harness process {self.owner_pid}, which is gone)"


def _owner_of(environ: bytes) -> tuple[int, int | None] | None:
    prefix = OWNER_ENV.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(prefix):
            pid, _, start = entry[len(prefix):].decode(errors="replace").partition(":")
            try:
                return int(pid), int(start) if start not in ("", "None") else None
            except ValueError:
                return None
    return None


def owned_processes() -> list[OwnedProcess]:
    """Every process of this PID namespace that carries an owner's marker (a zombie,
    which has exited and only waits for its parent, is left out)."""
    found = []
    me = os.getpid()
    ours = _pid_namespace("self")
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        # a marker names its owner by PID in the owner's PID namespace: one from another
        # (a harness running in a container, seen from the host) would look orphaned
        # here and be killed while its owner runs on
        if _pid_namespace(entry) != ours:
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        owner = _owner_of(environ) if OWNER_ENV.encode() in environ else None
        fields = stat_fields(int(entry))
        if owner is None or fields is None or fields[0] in ("Z", "X"):
            continue
        try:
            name = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        found.append(OwnedProcess(int(entry), int(fields[19]), name, *owner))
    return found


def _pid_namespace(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def orphaned_processes(owner: tuple[int, int | None] | None = None) -> list[OwnedProcess]:
    """Processes whose owner is gone: of that one owner, or of any."""
    return [
        p for p in owned_processes()
        if (owner is None or (p.owner_pid, p.owner_start) == owner) and not p.owner_alive()
    ]


def process_running(pid: int, start: int | None) -> bool:
    """The process we started (same start time) is still running: not gone, not a zombie."""
    fields = stat_fields(pid)
    return fields is not None and start is not None and int(fields[19]) == start and fields[0] not in ("Z", "X")


def stop_process(pid: int, start: int | None, grace: float = 1.0) -> bool:
    """SIGTERM, then SIGKILL after `grace`, only if `pid` is still the process we started."""
    return not stop_processes([(pid, start)], grace)


def stop_processes(processes: list[tuple[int, int | None]], grace: float = 1.0) -> list[int]:
    """Stop several processes at once (each one's teardown overlaps the others');
    only those whose start time still matches, i.e. the ones we started. Returns the
    PIDs that would not die."""

    def ours(pid: int, start: int | None) -> bool:
        return start is not None and not _reap_if_child(pid) and process_running(pid, start)

    pending = [(pid, start) for pid, start in processes if ours(pid, start)]
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 1.0)):
        for pid, _ in pending:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        delay = 0.0005
        while pending and time.monotonic() < deadline:
            pending = [(pid, start) for pid, start in pending if ours(pid, start)]
            if pending:
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
        if not pending:
            return []
    return [pid for pid, _ in pending]


def _reap_if_child(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        return False


def stop_children(processes: Sequence[subprocess.Popen], grace: float = 1.0) -> list[int]:
    """Stop processes this one started and has not waited for (so their PIDs cannot have
    been reused): SIGTERM, SIGKILL after `grace`, then reap them. Returns the PIDs that
    would not die."""
    running = [p for p in processes if p.poll() is None]
    stuck = stop_processes([(p.pid, process_start_time(p.pid)) for p in running], grace)
    for process in running:
        if process.pid not in stuck:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                stuck.append(process.pid)
    return stuck


def command_lines() -> list[tuple[int, list[str]]]:
    """(pid, argv) of every process on the host that can be read now (one may exit
    while the list is made: it is left out). Zombies, which have exited and only wait
    for their parent, are left out too: their command line is empty."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            found.append((int(entry), raw.rstrip(b"\0").decode(errors="replace").split("\0")))
    return found


def parent_of(pid: int) -> int | None:
    """The parent's PID, or None if `pid` is gone."""
    fields = stat_fields(pid)
    return int(fields[1]) if fields else None
