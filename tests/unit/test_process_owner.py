"""Processes carry their starter (WGH_OWNER), so a run killed before it recorded one can
still be cleaned up; and a child whose parent died before PR_SET_PDEATHSIG took hold
exits instead of running on. No root needed: plain processes, no namespaces."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from harness.net import nsexec
from harness.processes import OWNER_ENV, _owner_of, marked_env, orphaned_processes, owned_processes, owner_marker, process_start_time, stat_fields


def test_the_marker_names_this_process_and_its_start_time():
    assert owner_marker() == f"{os.getpid()}:{process_start_time(os.getpid())}"
    env = marked_env({"PATH": "/bin"})
    assert env == {"PATH": "/bin", OWNER_ENV: owner_marker()}


def test_a_forked_child_marks_its_children_as_its_own():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the marker is looked up by PID, not inherited from the parent's cache
        os.write(write, owner_marker().encode())
        os._exit(0)
    os.close(write)
    theirs = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    assert theirs.startswith(f"{pid}:") and theirs != owner_marker()


def test_the_owner_is_read_from_an_environment_block():
    block = b"PATH=/bin\0WGH_OWNER=123:456\0HOME=/root\0"
    assert _owner_of(block) == (123, 456)
    assert _owner_of(b"WGH_OWNER=garbage\0") is None
    assert _owner_of(b"PATH=/bin\0") is None


def test_a_child_of_a_dead_starter_is_an_orphan_and_a_live_ones_is_not(marked_child_starter):
    starter, child = marked_child_starter(60)  # marks a child as its own, says its PID, is then killed
    mine = {p.pid: p for p in owned_processes()}
    assert mine[child].owner_pid == starter.pid and mine[child].name == "sleep"
    assert child not in {p.pid for p in orphaned_processes()}, "its starter is alive"
    starter.kill()
    starter.wait()
    orphans = {p.pid: p for p in orphaned_processes((starter.pid, mine[child].owner_start))}
    assert child in orphans and "which is gone" in orphans[child].describe()


def test_a_child_whose_parent_died_before_pdeathsig_exits_instead_of_running():
    # parent=1 stands for "the harness died between fork and prctl": the child's parent
    # is not the one it was forked from, so the signal would never come
    child = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: nsexec.die_with_parent(parent=1))
    assert child.wait(timeout=10) == 128 + 15


def test_nsexec_children_carry_the_marker():
    out = nsexec.run(None, ["sh", "-c", f"echo ${OWNER_ENV}"]).stdout.strip()
    assert out == owner_marker()


def test_a_spawned_daemon_dies_with_its_starter_and_carries_the_marker():
    """nsexec.spawn (no Python in the child: setpriv's --pdeathsig) gives a daemon the
    same death signal popen's preexec_fn does: its starter SIGKILLed, it is gone."""
    starter = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; from harness.net import nsexec; "
         "p = nsexec.spawn(None, ['sleep', '60'], stdin=subprocess.DEVNULL); print(p.pid, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    child = int(starter.stdout.readline())
    try:
        deadline = time.monotonic() + 10  # setpriv, then sleep: the same PID all along
        while time.monotonic() < deadline and Path(f"/proc/{child}/comm").read_text().strip() != "sleep":
            time.sleep(0.01)
        assert Path(f"/proc/{child}/comm").read_text().strip() == "sleep"
        assert _owner_of(Path(f"/proc/{child}/environ").read_bytes()) == (starter.pid, process_start_time(starter.pid))
        starter.kill()
        starter.wait()
        def running() -> bool:  # a zombie waiting for init to reap it has ended
            fields = stat_fields(child)
            return fields is not None and fields[0] != "Z"

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and running():
            time.sleep(0.01)
        assert not running(), "the spawned daemon outlived its starter"
    finally:
        starter.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, 9)


def test_a_marked_process_of_another_pid_namespace_is_never_an_orphan_here():
    """A harness in a container marks its processes with PIDs of the container's PID
    namespace. Seen from the host, their owner looks gone, and `wgh clean` on the host
    killed a container's wireguard-go mid-run (found running the workflow's jobs in
    podman beside the host suite). Only processes of our own PID namespace count."""
    import shutil

    import pytest

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare (a PID namespace)")
    gone = f"{OWNER_ENV}=999999:1"  # an owner that does not exist, in either namespace
    here = subprocess.Popen(["env", gone, "sleep", "30"])
    there = subprocess.Popen(["unshare", "--pid", "--fork", "env", gone, "sleep", "30"])
    def sleeping_marked(pid: int) -> bool:  # env has exec'd sleep: the marker is in place
        with contextlib.suppress(OSError):
            return Path(f"/proc/{pid}/comm").read_text().strip() == "sleep" and gone.encode() in Path(f"/proc/{pid}/environ").read_bytes()
        return False

    try:
        deadline = time.monotonic() + 30  # a loaded machine may take a while to start them
        inner: list[int] = []
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                inner = [int(c) for c in Path(f"/proc/{there.pid}/task/{there.pid}/children").read_text().split()]
            if sleeping_marked(here.pid) and inner and all(sleeping_marked(pid) for pid in inner):
                break
            time.sleep(0.05)
        assert inner and all(sleeping_marked(pid) for pid in inner), "the process in the other PID namespace did not start"
        orphans = {p.pid for p in orphaned_processes() if p.owner_pid == 999999}
        assert here.pid in orphans and not set(inner) & orphans
    finally:
        for process in (here, there):
            process.kill()
            process.wait()
