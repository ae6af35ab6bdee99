"""What this host can do, and for each missing piece, how to get it."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.backends import AUTO, USERSPACE, UserspaceCommand


@dataclass(frozen=True)
class Capability:
    name: str
    ok: bool
    detail: str
    how_to_get: str = ""


def _module_loaded_or_loadable(module: str) -> bool:
    if Path(f"/sys/module/{module}").exists():
        return True
    modprobe = shutil.which("modprobe")
    if modprobe is None or os.geteuid() != 0:
        return False
    subprocess.run([modprobe, "-q", module], capture_output=True)
    return Path(f"/sys/module/{module}").exists()


@functools.cache
def is_root() -> bool:
    return os.geteuid() == 0


@functools.cache
def kernel_wireguard() -> bool:
    return _module_loaded_or_loadable("wireguard")


@functools.cache
def netem() -> bool:
    return _module_loaded_or_loadable("sch_netem")


@functools.cache
def wireguard_go() -> bool:
    return shutil.which("wireguard-go") is not None


@functools.cache
def mininet_missing() -> str:
    """Why the Mininet engine cannot build here ('' if it can): its Python module
    (PyPI's `mininet`, or Debian's for the system Python) and Debian's `mnexec`."""
    import importlib.util

    parts = []
    if importlib.util.find_spec("mininet") is None:
        parts.append("the Python module mininet (pip install 'mininet==2.3.0.dev6', or scripts/install.sh)")
    if shutil.which("mnexec") is None:
        parts.append("mnexec (apt-get install mininet)")
    return f"the mininet engine needs {' and '.join(parts)}" if parts else ""


def vm_tools() -> list[str]:
    """What `wgh vm` lacks on this host (empty: it can boot guests)."""
    from harness.errors import MissingCapability
    from harness.vm.runner import find_vng

    if os.environ.get("WGH_IN_VM"):
        return ["already inside a `wgh vm` guest: no VMs in VMs"]
    try:
        find_vng()
    except MissingCapability as exc:
        return [str(exc)]
    return []


def resolve_backend(requested: str) -> str:
    """'auto' → kernel where the module loads, else wireguard-go."""
    if requested != AUTO:
        return requested
    return "kernel" if kernel_wireguard() else "wireguard-go"


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else ""


@functools.cache
def tool_versions() -> dict[str, str]:
    versions = {}
    if shutil.which("wg"):
        versions["wireguard-tools"] = _version(["wg", "--version"]).split(" - ")[0].removeprefix("wireguard-tools ")
    if shutil.which("wireguard-go"):
        versions["wireguard-go"] = _version(["wireguard-go", "--version"]).removeprefix("wireguard-go ")
    return versions


def userspace_missing(command: UserspaceCommand | None) -> list[str]:
    """Why the userspace backend cannot start here (empty: it can)."""
    if command is None:
        return ["the userspace backend needs a command: wgh run --userspace 'wireguard-go -f {ifname}' (pytest --wg-userspace, WGH_USERSPACE)"]
    if shutil.which(command.program) is None:
        return [f"the userspace backend's command {command.program!r} is not on PATH (from {command.template!r})"]
    return []


def missing_for(requirements: set[str], backend: str, userspace: UserspaceCommand | None = None) -> list[str]:
    """Reasons this host cannot run something needing `requirements` with `backend`
    (and `userspace`, the userspace backend's command)."""
    reasons = []
    if "root" in requirements and not is_root():
        reasons.append("needs root (network namespaces): run as root or in privileged CI")
    resolved = resolve_backend(backend)
    if "wireguard" in requirements:
        if resolved == "kernel" and not kernel_wireguard():
            reasons.append(
                "kernel WireGuard is not available (modprobe wireguard failed): choose the wireguard-go backend "
                "(wgh run --backend wireguard-go, pytest --wg-backend wireguard-go), or run in a VM with `wgh vm --kernel 6.1`"
            )
        if resolved == "wireguard-go" and not wireguard_go():
            reasons.append("wireguard-go is not installed: apt-get install wireguard-go")
        if resolved == USERSPACE:
            reasons += userspace_missing(userspace)
    if "userspace" in requirements and resolved != USERSPACE:  # a node asks for it by name
        reasons += userspace_missing(userspace)
    if "kernel_wireguard" in requirements and not kernel_wireguard():
        reasons.append("needs the kernel WireGuard module (modprobe wireguard failed): run it in a VM, e.g. `wgh vm --kernel 6.1 -- pytest ...` or pytest --vm-kernel 6.1")
    if "wireguard_go" in requirements and not wireguard_go():
        reasons.append("needs wireguard-go: apt-get install wireguard-go")
    if "vm" in requirements:
        reasons += vm_tools()
    if "mininet" in requirements and mininet_missing():
        reasons.append(mininet_missing())
    if "netem" in requirements and not netem():
        reasons.append("needs sch_netem, which this kernel lacks: run it in a VM, e.g. `wgh vm --kernel 6.1 -- pytest ...` or pytest --vm-kernel 6.1")
    return reasons
