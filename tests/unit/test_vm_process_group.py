"""A VM start that hangs must take its whole process group with it: vng's children
(virtme-run, qemu) once outlived a timed-out KVM probe and ran for ever."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.vm import runner
from harness.kernels.cache import Kernel

# stands in for vng: starts a long-lived child (qemu's part) and waits for it
FAKE_VNG = """#!/bin/sh
sleep 600 &
echo $! > "{pidfile}"
wait
"""


def _fake_vng(tmp_path: Path) -> tuple[str, Path]:
    pidfile = tmp_path / "child.pid"
    script = tmp_path / "vng"
    script.write_text(FAKE_VNG.format(pidfile=pidfile))
    script.chmod(0o755)
    return str(script), pidfile


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _child_pid(pidfile: Path) -> int:
    deadline = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, "the fake vng never started its child"
        time.sleep(0.01)
    return int(pidfile.read_text())


def test_run_group_kills_the_whole_group_on_timeout(tmp_path):
    vng, pidfile = _fake_vng(tmp_path)
    assert runner.run_group([vng], timeout=1.0) is None
    child = _child_pid(pidfile)
    time.sleep(0.1)
    assert not _alive(child), "the child of a timed-out command outlived it"


def test_run_group_returns_the_exit_code(tmp_path):
    script = tmp_path / "ok"
    script.write_text("#!/bin/sh\nexit 3\n")
    script.chmod(0o755)
    assert runner.run_group([str(script)], timeout=10) == 3


def test_timed_out_kvm_probe_leaves_nothing_and_means_no_kvm(tmp_path, monkeypatch):
    vng, pidfile = _fake_vng(tmp_path)
    monkeypatch.setenv("WGH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(runner, "KVM_PROBE_TIMEOUT", 1.0)
    real_access = os.access
    monkeypatch.setattr(runner.os, "access", lambda path, mode: True if path == "/dev/kvm" else real_access(path, mode))
    kernel = Kernel(image=tmp_path / "vmlinuz", release="test", source="test")
    assert runner.kvm_usable(vng, kernel) is False
    child = _child_pid(pidfile)
    time.sleep(0.1)
    assert not _alive(child), "a timed-out KVM probe left its child running (qemu, in real life)"
    assert runner.cached_kvm_verdict() is False  # remembered: the next run does not probe again


def _main_thread_in(function: str, timeout: float = 60) -> None:
    """Wait until the main thread is inside `function` (its stack, read from here)."""
    import sys
    import threading

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(threading.main_thread().ident)
        while frame is not None:
            if frame.f_code.co_name == function:
                return
            frame = frame.f_back
        time.sleep(0.005)
    raise AssertionError(f"the main thread never reached {function}")


def test_interrupt_during_run_group_kills_the_group(tmp_path, monkeypatch):
    import signal
    import threading

    vng, pidfile = _fake_vng(tmp_path)

    def interrupt() -> None:
        # once the child runs and the main thread waits for the group (not on a timer:
        # under load the main thread may still be inside Popen when the child is up)
        _child_pid(pidfile)
        _main_thread_in("_wait")
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        runner.run_group([vng], timeout=60)
    child = _child_pid(pidfile)
    time.sleep(0.1)
    assert not _alive(child)
