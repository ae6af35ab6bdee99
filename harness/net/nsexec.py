"""Doing things inside a network namespace without `ip netns exec`.

setns(2) moves only the calling thread, so work that must happen inside a namespace
(sysctl writes, opening sockets) runs in a short-lived thread that enters it; child
processes enter it between fork and exec. Sockets keep the namespace they were
opened in, so the rest of the harness can use them from anywhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

NETNS_RUN_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
T = TypeVar("T")


def netns_path(namespace: str) -> Path:
    return NETNS_RUN_DIR / namespace


def _enter(namespace: str) -> None:
    fd = os.open(netns_path(namespace), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {namespace}: {os.strerror(err)}")
    finally:
        os.close(fd)


def call_in(namespace: str, function: Callable[..., T], *args: Any) -> T:
    """Run ``function(*args)`` in a thread inside ``namespace`` and return its result."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            _enter(namespace)
            outcome["value"] = function(*args)
        except BaseException as exc:  # handed back to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"netns:{namespace}", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def write_sysctls(namespace: str, values: dict[str, str]) -> None:
    """Set sysctls (dotted names) in a namespace: /proc/sys/net follows the thread's netns."""

    def write() -> None:
        for name, value in values.items():
            path = Path("/proc/sys") / name.replace(".", "/")
            try:
                path.write_text(f"{value}\n")
            except FileNotFoundError:
                raise OSError(f"sysctl {name} does not exist here (module not loaded?)") from None

    call_in(namespace, write)


def read_sysctl(namespace: str, name: str) -> str:
    return call_in(namespace, lambda: (Path("/proc/sys") / name.replace(".", "/")).read_text().strip())


def _child_setup(namespace: str | None, die_with_parent: bool) -> Callable[[], None]:
    def setup() -> None:
        if die_with_parent:
            # children the harness starts do not outlive it, even after SIGKILL
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if namespace is not None:
            _enter(namespace)

    return setup


def popen(namespace: str | None, argv: Sequence[str], *, die_with_parent: bool = True, **kwargs: Any) -> subprocess.Popen:
    """Start a process inside ``namespace`` (None: the harness's own namespace)."""
    return subprocess.Popen(list(argv), preexec_fn=_child_setup(namespace, die_with_parent), **kwargs)


def run(namespace: str | None, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run a command inside ``namespace`` to completion, capturing its output as text."""
    return subprocess.run(
        list(argv),
        preexec_fn=_child_setup(namespace, True),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )
