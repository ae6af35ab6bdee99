"""What a guest that will not finish is doing, printed before the host kills it.

`wgh vm` kills a guest that runs past its timeout; all the log then says is that it
was killed. The guest script starts this module in the background first: shortly
before the host's deadline it prints every process with its state and the kernel
function it waits in, the kernel stack of each task stuck in uninterruptible sleep
(a netlink or namespace teardown hang), and the Python stack of every Python process
(py-spy, from the `vm` extra, reads them from outside: the hung one need not
cooperate). Then it exits; it never stops anything.

    python -m harness.vm.hang_report --after SECONDS [--within SECONDS]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.processes import stat_fields

PROC = Path("/proc")


@dataclass(frozen=True)
class Task:
    pid: int
    ppid: int
    state: str
    seconds: float  # since it started
    wchan: str
    argv: str
    python: bool
    kernel_thread: bool


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def tasks() -> list[Task]:
    """Every process that can be read now (one may exit meanwhile: left out)."""
    ticks = os.sysconf("SC_CLK_TCK")
    uptime = float((_read(PROC / "uptime").split() or ["0"])[0])
    found = []
    for entry in sorted((e for e in os.listdir(PROC) if e.isdigit()), key=int):
        fields = stat_fields(int(entry))
        if not fields:
            continue
        name = _read(PROC / entry / "comm").strip()
        raw = _read(PROC / entry / "cmdline")
        program = Path(raw.split("\0", 1)[0]).name
        argv = " ".join(raw.replace("\0", " ").split()) or f"[{name}]"  # one line, even a `python -c` script
        found.append(Task(
            pid=int(entry), ppid=int(fields[1]), state=fields[0],
            seconds=max(0.0, uptime - int(fields[19]) / ticks),
            wchan=_read(PROC / entry / "wchan").strip() or "-",
            argv=argv[:300], python=name.startswith("python") or program.startswith("python"),
            kernel_thread=not raw,
        ))
    return found


def report(after: float, py_spy: str | None = None, within: float = 240.0) -> str:
    """The whole report, as text; Python stacks are read until `within` seconds have passed."""
    deadline = time.monotonic() + within
    listed = tasks()
    lines = [f"wgh vm: the guest is still running after {after:g}s; what it is doing (the host kills it soon):"]
    lines.append("processes (kernel threads only when in uninterruptible sleep):")
    lines.append(f"{'PID':>7} {'PPID':>7} S {'AGE':>7} {'WCHAN':<28} COMMAND")
    for task in listed:
        if task.kernel_thread and task.state != "D":  # the kernel's own threads, unless stuck
            continue
        lines.append(f"{task.pid:>7} {task.ppid:>7} {task.state} {task.seconds:>6.0f}s {task.wchan[:28]:<28} {task.argv}")
    for task in listed:
        if task.state == "D":  # uninterruptible: the kernel's stack says where
            lines.append(f"--- kernel stack of {task.pid} ({task.argv[:80]}), in uninterruptible sleep:")
            lines.append(_read(PROC / str(task.pid) / "stack").rstrip() or "(unreadable)")
    py_spy = py_spy if py_spy is not None else shutil.which("py-spy") or _beside_python("py-spy")
    for task in listed:
        if not task.python or task.pid == os.getpid():
            continue
        lines.append(f"--- Python stack of {task.pid} ({task.argv[:120]}):")
        left = deadline - time.monotonic()
        lines.append(_python_stack(task.pid, py_spy, min(60.0, left)) if left > 1 else "(no time left before the kill)")
    return "\n".join(lines) + "\n"


def _beside_python(tool: str) -> str | None:
    candidate = Path(sys.executable).parent / tool
    return str(candidate) if candidate.exists() else None


def _python_stack(pid: int, py_spy: str | None, timeout: float) -> str:
    if py_spy is None:
        return "(py-spy is not installed: scripts/install.sh --vm installs it)"
    try:
        done = subprocess.run([py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"(py-spy failed: {error})"
    return (done.stdout + done.stderr).rstrip() or "(py-spy printed nothing)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--after", type=float, required=True, help="seconds to wait before reporting")
    parser.add_argument("--within", type=float, default=240.0, help="seconds the report may take (the kill comes after)")
    args = parser.parse_args(argv)
    time.sleep(args.after)
    sys.stderr.write(report(args.after, within=args.within))
    sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
