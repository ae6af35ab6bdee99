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
import re
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, TypeVar, Union

from harness.processes import marked_env

NETNS_RUN_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
T = TypeVar("T")


MS_BIND, MS_REC, MS_SHARED, MNT_DETACH = 0x1000, 0x4000, 0x100000, 0x2
NETLINK_ROUTE, NETLINK_GENERIC = 0, 16
_run_dir_ready = False


class InNamespace(Protocol):
    """What the net layer needs of a built node (harness.engine.base.Node is one): its
    network namespace as a path, and commands run inside it. Whatever the engine, a
    rule, a qdisc or a route goes in through the node, never by a namespace's name."""

    @property
    def netns_path(self) -> str: ...

    def run(self, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None) -> subprocess.CompletedProcess: ...

    @property
    def netlink(self) -> Any:
        """A cached rtnetlink handle (pyroute2 IPRoute) opened inside it."""


# A network namespace as the callers have it: its name (`ip netns` style, under
# /run/netns), a path to it (/proc/<pid>/ns/net of a process that holds an unnamed one,
# as Mininet's hosts do), or an open file descriptor of it (the caller keeps it open).
Namespace = Union[str, Path, int]


def netns_path(namespace: Namespace) -> Path:
    """The namespace as a path another process can open."""
    if isinstance(namespace, int):
        return Path(f"/proc/{os.getpid()}/fd/{namespace}")
    text = str(namespace)
    return Path(text) if text.startswith("/") else NETNS_RUN_DIR / text


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prepare_run_dir() -> None:
    """Make /run/netns a shared mount, as iproute2 does, so named namespaces are
    visible to `ip netns` from every mount namespace."""
    global _run_dir_ready
    if _run_dir_ready:
        return
    NETNS_RUN_DIR.mkdir(mode=0o755, exist_ok=True)
    directory = str(NETNS_RUN_DIR).encode()
    if _libc.mount(b"", directory, b"none", MS_SHARED | MS_REC, None) != 0:
        _check(_libc.mount(directory, directory, b"none", MS_BIND | MS_REC, None), "bind-mount /run/netns")
        _check(_libc.mount(b"", directory, b"none", MS_SHARED | MS_REC, None), "share /run/netns")
    _run_dir_ready = True


def create_namespace(namespace: str) -> int:
    """Create a named network namespace (like `ip netns add`) without forking: a
    thread unshares its own network namespace and bind-mounts it. Returns a
    NETLINK_ROUTE socket fd opened inside it, for pyroute2's IPRoute(fileno=...)."""
    _prepare_run_dir()
    path = netns_path(namespace)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))

    def inside() -> int:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        source = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        _check(_libc.mount(source, str(path).encode(), b"none", MS_BIND, None), f"bind-mount {path}")
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE).detach()

    try:
        return _in_thread(inside)
    except BaseException:
        remove_namespace(namespace)
        raise


def remove_namespace(namespace: str) -> None:
    path = netns_path(namespace)
    _libc.umount2(str(path).encode(), MNT_DETACH)
    path.unlink(missing_ok=True)


def netlink_fd(namespace: Namespace, protocol: int = NETLINK_ROUTE) -> int:
    """A netlink socket fd opened inside `namespace` (it stays bound to it)."""
    return call_in(namespace, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, protocol).detach())


def _enter(namespace: Namespace) -> None:
    fd = namespace if isinstance(namespace, int) else os.open(netns_path(namespace), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {namespace}: {os.strerror(err)}")
    finally:
        if fd is not namespace:  # ours to close; a caller's fd stays open
            os.close(fd)


def call_in(namespace: Namespace, function: Callable[..., T], *args: Any) -> T:
    """Run ``function(*args)`` in a thread inside ``namespace`` and return its result."""

    def inside() -> T:
        _enter(namespace)
        return function(*args)

    return _in_thread(inside)


def _in_thread(function: Callable[[], T]) -> T:
    """Namespace changes are per thread: do them in a throwaway one."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # handed back to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


PROC_NET_NAME = re.compile(r"[a-z0-9_]+")


def read_proc_net(name: str) -> str:
    """/proc/net/<name> (snmp, tcp6, …) of the calling thread's network namespace
    (/proc/self/net would be the process's): run it through call_in."""
    if not PROC_NET_NAME.fullmatch(name):
        raise ValueError(f"not a /proc/net file name: {name!r}")
    return (Path("/proc/thread-self/net") / name).read_text()


def _sysctl_path(name: str) -> Path:
    """/proc/sys/net/... for a dotted name; refuses anything else (defence in depth: the
    scenario model already allows only these, but a path here is written as root)."""
    from harness.sysctls import sysctl_name_problem

    problem = sysctl_name_problem(name)
    if problem:
        raise ValueError(f"sysctl {problem}")
    return Path("/proc/sys") / name.replace(".", "/")


def write_sysctls(namespace: Namespace, values: dict[str, str]) -> None:
    """Set sysctls (dotted net.* names) in a namespace: /proc/sys/net follows the
    thread's netns. A key that is not per network namespace does not exist there."""
    paths = {name: _sysctl_path(name) for name in values}

    def write() -> None:
        for name, value in values.items():
            try:
                fd = os.open(paths[name], os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                raise OSError(
                    f"sysctl {name} does not exist in a network namespace: it is global to the host "
                    "(not settable per node), misspelt, or its module is not loaded"
                ) from None
            try:
                os.write(fd, f"{value}\n".encode())
            finally:
                os.close(fd)

    call_in(namespace, write)


def read_sysctl(namespace: Namespace, name: str) -> str:
    path = _sysctl_path(name)
    return call_in(namespace, lambda: path.read_text().strip())


def die_with_parent(signum: int = signal.SIGTERM, parent: int | None = None) -> None:
    """In a child between fork and exec: `signum` when the harness dies, even by SIGKILL
    (SIGHUP for an interactive shell, which ignores SIGTERM). `parent`, the harness's PID
    taken before the fork, closes the race where it dies before this call: the signal
    would never come, so the child exits here instead."""
    _libc.prctl(PR_SET_PDEATHSIG, signum)
    if parent is not None and os.getppid() != parent:
        os._exit(128 + signum)


def _child_setup(namespace: Namespace | None, die_with_parent: bool) -> Callable[[], None]:
    parent = os.getpid()  # before the fork: the child compares its parent with it

    def setup() -> None:
        if die_with_parent:
            # children the harness starts do not outlive it, even after SIGKILL
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # it died before the line above
                os._exit(128 + signal.SIGTERM)
        if namespace is not None:
            _enter(namespace)

    return setup


def popen(namespace: Namespace | None, argv: Sequence[str], *, die_with_parent: bool = True, **kwargs: Any) -> subprocess.Popen:
    """Start a process inside ``namespace`` (None: the harness's own namespace), marked
    as this process's (harness.processes.OWNER_ENV) so that it is found if we die first."""
    env = marked_env(kwargs.pop("env", None))
    return subprocess.Popen(list(argv), preexec_fn=_child_setup(namespace, die_with_parent), env=env, **kwargs)


def spawn(namespace: Namespace | None, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
    """popen() for a daemon, without Python in the child: util-linux's `setpriv
    --pdeathsig` and `nsenter --net` set the death signal and enter the namespace, each
    exec'ing the next, so the harness starts it with vfork. popen()'s preexec_fn forces
    a full fork, whose cost grows with the harness's memory: 3 000 wireguard-go took
    ~30 ms each (fork 11 ms, its child's first steps 15 ms), 80 s in all.

    The same PID all along, the same environment mark. One race is left to the reaper:
    a harness killed before setpriv's prctl leaves the daemon running, marked as its."""
    prefix = ["setpriv", "--pdeathsig", "TERM"]
    if namespace is not None:
        prefix += ["nsenter", f"--net={netns_path(namespace)}", "--"]
    env = marked_env(kwargs.pop("env", None))
    return subprocess.Popen(prefix + list(argv), env=env, **kwargs)


def run(namespace: Namespace | None, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run a command inside ``namespace`` to completion, capturing its output as text."""
    return subprocess.run(
        list(argv),
        preexec_fn=_child_setup(namespace, True),
        env=marked_env(),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )
