"""How many workers `wgh run -j auto` starts.

Cases mostly wait (WireGuard's timers, NAT timeouts, recovery windows), so the CPU is
not the limit: several cases per core share the machine well. What does limit it is
memory (a worker is a Python process with pyroute2 and pydantic loaded; every node of
a userspace backend adds a wireguard-go), open files, and the host's namespace limit.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

CASES_PER_CPU = 4
MAX_WORKERS = 16
WORKER_BYTES = 120 * 2**20  # a worker's own memory (measured ~70 MiB RSS; room to spare)
NODE_BYTES = 24 * 2**20  # per node: a wireguard-go, dnsmasq or iperf3 at most (measured ~10-15 MiB)
WORKER_FILES = 64
NODE_FILES = 16  # netlink sockets, the namespace fd, pipes of its processes


@dataclass(frozen=True)
class Capacity:
    workers: int
    limited_by: str  # what set the number, for the user


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _max_net_namespaces() -> int | None:
    try:
        return int(Path("/proc/sys/user/max_net_namespaces").read_text())
    except (OSError, ValueError):
        return None


def auto_workers(cases: int, largest_case_nodes: int) -> Capacity:
    """Workers for `cases` cases whose largest has `largest_case_nodes` nodes."""
    nodes = max(1, largest_case_nodes)
    limits = {"the number of cases": cases, f"{CASES_PER_CPU} per CPU": CASES_PER_CPU * (os.cpu_count() or 1), "the cap": MAX_WORKERS}
    memory = _mem_available()
    if memory is not None:
        limits["available memory"] = memory // (WORKER_BYTES + nodes * NODE_BYTES)
    files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if files != resource.RLIM_INFINITY:
        limits["the open-files limit"] = files // (WORKER_FILES + nodes * NODE_FILES)
    namespaces = _max_net_namespaces()
    if namespaces is not None:
        limits["user.max_net_namespaces"] = namespaces // nodes
    reason, workers = min(limits.items(), key=lambda item: item[1])
    return Capacity(max(1, workers), reason)
