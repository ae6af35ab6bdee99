"""Was the machine too busy to measure? The kernel's pressure stall information (PSI).

`/proc/pressure/cpu` counts, in microseconds since boot, how long at least one runnable
task waited for a CPU ("some"). Read before and after a measurement, its growth divided
by the measurement's length is the share of that time the CPU was contended: 0 on an
idle machine, ~0.3-0.5 under `pytest -n 4` on 2 cores, near 1 with `stress-ng --cpu 2`
beside it. Where the harness runs in a cgroup of its own (a container, a systemd unit,
a CI job), that cgroup's `cpu.pressure` says how long *its* tasks waited, which is the
sharper signal: it is used when present, the host's figure otherwise.

PSI cannot see a machine that is itself descheduled: in a VM whose host is busy (a
shared CI runner, an emulated guest), the guest's vCPUs simply stop, and no guest task
counts as waiting. So every harness process also keeps a heartbeat: a thread that
wakes every 10 ms and adds up how late it woke, beyond 20 ms (scheduler and GIL
latency stay below that). Its growth over a window is the *timer lag* share, and the
figure judged is the larger of the two.

A timing or rate check that fails while the stall share was at least the threshold
(`WGH_STALL_THRESHOLD`, default 0.5) and whose diagnosis names no cause is retried
once, and if it fails stalled again its verdict is *inconclusive (machine overloaded)*
(harness.steps.checks). Load only slows things down: a pass under load stands.

Test hook: `WGH_TEST_CPU_STALL=<share>` makes every window report that share, so a test
can force an overloaded verdict without a CPU hog it cannot time.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SYSTEM_PSI = Path("/proc/pressure/cpu")
CGROUP_ROOT = Path("/sys/fs/cgroup")
DEFAULT_THRESHOLD = 0.5
THRESHOLD_ENV = "WGH_STALL_THRESHOLD"
TEST_STALL_ENV = "WGH_TEST_CPU_STALL"
STRICT_LOAD_ENV = "WGH_STRICT_LOAD"
HEARTBEAT_TICK = 0.01  # s between the heartbeat's wake-ups
HEARTBEAT_FLOOR = 0.02  # s: a wake-up later than this was the process not being run


@dataclass(frozen=True)
class PressureReading:
    """Cumulative CPU stall ("some", microseconds) at one moment; None where unreadable."""

    at: float  # time.monotonic()
    system_us: int | None
    cgroup_us: int | None
    cgroup: str | None  # the cgroup's pressure file, when the harness runs in one that has it
    lag_us: int | None = None  # the heartbeat's cumulative lateness (see Heartbeat)


@dataclass(frozen=True)
class Stall:
    """How stalled the CPU was over one measurement window."""

    seconds: float
    system: float | None  # share of the window, 0..1
    cgroup: float | None
    cgroup_path: str | None = None
    lag: float | None = None  # share of the window the heartbeat woke late (a starved VM or process)

    @property
    def psi(self) -> float | None:
        """The kernel's figure: the cgroup's where there is one, else the host's."""
        return self.cgroup if self.cgroup is not None else self.system

    @property
    def share(self) -> float | None:
        """The figure judged: the larger of the kernel's and the heartbeat's."""
        figures = [f for f in (self.psi, self.lag) if f is not None]
        return max(figures) if figures else None

    def overloaded(self, threshold: float | None = None) -> bool:
        share = self.share
        return share is not None and share >= (stall_threshold() if threshold is None else threshold)

    def describe(self) -> str:
        if self.share is None:
            return "CPU pressure unknown (no /proc/pressure/cpu: kernel without PSI)"
        if self.lag is not None and (self.psi is None or self.lag > self.psi):
            text = (
                f"the harness was not run for {self.lag:.0%} of the {self.seconds:.1f}s measurement (its heartbeat woke "
                "late: a starved VM or process, which the kernel's pressure figures do not show)"
            )
            return text + (f"; CPU stalled {self.psi:.0%}" if self.psi is not None else "")
        where = f"cgroup {self.cgroup_path}" if self.cgroup is not None else "host, /proc/pressure/cpu"
        text = f"CPU stalled {self.share:.0%} of the {self.seconds:.1f}s measurement ({where})"
        if self.cgroup is not None and self.system is not None:
            text += f", host {self.system:.0%}"
        return text

    def to_json(self) -> dict[str, float | str | None]:
        data: dict[str, float | str | None] = {"window_s": round(self.seconds, 3), "cpu_stall": _rounded(self.share), "host_cpu_stall": _rounded(self.system)}
        if self.lag is not None:
            data["timer_lag"] = _rounded(self.lag)
        if self.cgroup_path:
            data["cgroup"] = self.cgroup_path
        return data


class Heartbeat:
    """A daemon thread that sleeps HEARTBEAT_TICK at a time and adds up how much later
    than that it woke, counting only wake-ups later than HEARTBEAT_FLOOR: the time this
    process was not run although it was ready (its VM descheduled, the machine starved).
    Started on the first reading in each process (a forked child starts its own)."""

    def __init__(self, tick: float = HEARTBEAT_TICK, floor: float = HEARTBEAT_FLOOR):
        self.tick, self.floor = tick, floor
        self.lag_us = 0
        self._pid: int | None = None

    def ensure_running(self) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            threading.Thread(target=self._beat, name="wgh-heartbeat", daemon=True).start()

    def _beat(self) -> None:
        while True:
            began = time.monotonic()
            time.sleep(self.tick)
            self.note(time.monotonic() - began - self.tick)

    def note(self, late: float) -> None:
        """One wake-up `late` seconds after it was due."""
        if late > self.floor:
            self.lag_us += int(late * 1e6)


HEARTBEAT = Heartbeat()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def strict_load() -> bool:
    """--strict-load (WGH_STRICT_LOAD=1): a check failed, or a change measured, on an
    overloaded machine is judged as on a quiet one, not inconclusive."""
    return os.environ.get(STRICT_LOAD_ENV, "") not in ("", "0")


def stall_threshold() -> float:
    text = os.environ.get(THRESHOLD_ENV)
    if not text:
        return DEFAULT_THRESHOLD
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise ValueError(f"{THRESHOLD_ENV}={text!r}: not a share (0.5 or 50%)") from None
    if not 0 < value <= 1:
        raise ValueError(f"{THRESHOLD_ENV}={text!r}: must be above 0 and at most 1 (100%)")
    return value


def parse_some_total(text: str) -> int | None:
    """The "some" line's total= from a PSI file's text."""
    for line in text.splitlines():
        if line.startswith("some "):
            for field in line.split()[1:]:
                key, _, value = field.partition("=")
                if key == "total":
                    return int(value)
    return None


def _read_total(path: Path) -> int | None:
    try:
        return parse_some_total(path.read_text())
    except (OSError, ValueError):
        return None


def own_cgroup_pressure(proc_cgroup: str | None = None) -> Path | None:
    """The cpu.pressure file of this process's cgroup v2, if it is not the root (whose
    figures are the host's) and the kernel has one for it."""
    if proc_cgroup is None:
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
        except OSError:
            return None
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            relative = line[3:].strip().lstrip("/")
            if not relative:
                return None
            for base in (CGROUP_ROOT, CGROUP_ROOT / "unified"):  # unified: hybrid hierarchies
                candidate = base / relative / "cpu.pressure"
                if candidate.exists():
                    return candidate
    return None


_cgroup_file: list[Path | None] = []  # looked up once per process


def read() -> PressureReading:
    if not _cgroup_file:
        _cgroup_file.append(own_cgroup_pressure())
    cgroup = _cgroup_file[0]
    HEARTBEAT.ensure_running()
    return PressureReading(
        time.monotonic(), _read_total(SYSTEM_PSI), _read_total(cgroup) if cgroup else None, str(cgroup) if cgroup else None,
        HEARTBEAT.lag_us,
    )


def between(before: PressureReading, after: PressureReading) -> Stall:
    seconds = max(after.at - before.at, 1e-6)

    def share(a: int | None, b: int | None) -> float | None:
        if a is None or b is None:
            return None
        return min(max((b - a) / 1e6 / seconds, 0.0), 1.0)

    forced = os.environ.get(TEST_STALL_ENV)
    if forced:
        value = float(forced)
        return Stall(seconds, value, None)
    return Stall(
        seconds, share(before.system_us, after.system_us), share(before.cgroup_us, after.cgroup_us), after.cgroup,
        share(before.lag_us, after.lag_us),
    )
