"""How many workers `wgh run -j auto` starts.

Cases mostly wait (WireGuard's timers, NAT timeouts, recovery windows), so the CPU is
not the limit: several cases per core share the machine well. What does limit it is
memory (a worker is a Python process with pyroute2 and pydantic loaded; every node of
a userspace backend adds a wireguard-go), the host's namespace limit, and the parent's
open files. The open-files limit (RLIMIT_NOFILE) is per process: a worker holds only its
own case's sockets, so what grows with the worker count is the parent's pipes to them.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

CASES_PER_CPU = 4
MAX_WORKERS = 16
WORKER_BYTES = 120 * 2**20  # a worker's own memory (measured ~70 MiB RSS; room to spare)
NODE_BYTES = 24 * 2**20  # per node: a wireguard-go, dnsmasq or iperf3 at most (measured ~10-15 MiB)
PARENT_FILES = 64  # the parent's own: results, logs, its terminal, Python's
PARENT_FILES_PER_WORKER = 5  # the parent's ends of a worker's stdin, stdout, stderr and status pipes, its pidfd


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


def _most_side_by_side(nodes_largest_first: list[int], per_worker: int, per_node: int, budget: int) -> int:
    """How many workers fit in `budget` when each holds `per_worker` and the cases they
    run `per_node` for each node: the worst moment is the largest cases all at once."""
    used = 0
    for fitted, nodes in enumerate(nodes_largest_first):
        used += per_worker + per_node * nodes
        if used > budget:
            return fitted
    return len(nodes_largest_first)


def auto_workers(case_nodes: Sequence[int]) -> Capacity:
    """Workers for cases of `case_nodes` nodes each (one entry per case). Memory and
    namespaces are counted for the largest cases running at once, not for every
    worker running the largest (one 25-node mesh among 3-node cases took a 3 GiB VM down
    to 2 workers)."""
    largest_first = sorted((max(1, nodes) for nodes in case_nodes), reverse=True) or [1]
    cpus = os.cpu_count() or 1
    limits = {"the number of cases": len(largest_first), f"{CASES_PER_CPU} per CPU": CASES_PER_CPU * cpus, "the cap": MAX_WORKERS}
    memory = _mem_available()
    if memory is not None:
        limits["available memory"] = _most_side_by_side(largest_first, WORKER_BYTES, NODE_BYTES, memory)
    files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if files != resource.RLIM_INFINITY:
        limits["the open-files limit"] = max(0, files - PARENT_FILES) // PARENT_FILES_PER_WORKER
    namespaces = _max_net_namespaces()
    if namespaces is not None:
        limits["user.max_net_namespaces"] = _most_side_by_side(largest_first, 0, 1, namespaces)
    reason, workers = min(limits.items(), key=lambda item: item[1])
    return Capacity(max(1, workers), reason)
