"""The environment a measurement was taken in, so results stay comparable."""

from __future__ import annotations

import os
import platform
from typing import Any

from harness.backends import UserspaceCommand
from harness import __version__, caps


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _harness_commit() -> str | None:
    """The git commit of the harness checkout, when it runs from one."""
    import subprocess
    from pathlib import Path

    try:
        done = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def environment(requested_backend: str, userspace: UserspaceCommand | None = None, shard: dict[str, int] | None = None) -> dict[str, Any]:
    """The environment section of results.json; `shard` ({"index": I, "count": N},
    from --shard I/N) only in a sharded run's. `workers` is 1 here: a run that puts
    cases side by side (wgh run -j, pytest -n) says how many with `set_workers`."""
    uname = os.uname()
    versions = caps.tool_versions()
    found = {
        "kernel_release": uname.release,
        "kernel_version": uname.version,
        "machine": uname.machine,
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "harness_version": __version__,
        "harness_commit": _harness_commit(),
        "backend_requested": requested_backend,
        "backend_auto_resolves_to": caps.resolve_backend("auto"),
        # the userspace backend's command template, as given (never a file's: files cannot set it)
        "userspace_command": userspace.template if userspace is not None else None,
        "wireguard_tools_version": versions.get("wireguard-tools"),
        "wireguard_go_version": versions.get("wireguard-go"),
        "kernel_wireguard": caps.kernel_wireguard(),
        "netem": caps.netem(),
        "workers": 1,
    }
    if shard is not None:
        found["shard"] = dict(shard)
    host_class = os.environ.get("WGH_HOST_CLASS")  # harness.results.history's key: which machines compare
    if host_class:
        found["host_class"] = host_class
    return found
