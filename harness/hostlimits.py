"""Host limits that grow with the topology, checked before anything is built.

- Open files (RLIMIT_NOFILE): the harness keeps one rtnetlink socket per node, and
  `reach` opens a raw socket per node: a 1 000-node run holds over 2 000 descriptors,
  twice the soft limit most shells start with (1 024). The soft limit may be raised up
  to the hard one without privilege, so a run raises it as far as it needs; only a hard
  limit too low to hold the run is an error.
- inotify instances (fs.inotify.max_user_instances, 128 by default, per user):
  wireguard-go watches its UAPI socket with one, so the 129th daemon of a run failed
  with "too many open files". That limit is the host's, so the harness does not change
  it: it says how many the run needs before starting any.
- Neighbour entries (net.ipv4.neigh.default.gc_thresh3, and IPv6's, 1 024 by default):
  the kernel's ARP and ND tables are shared by every namespace of the host, and only
  the host's own settings bound them. Every end of a link resolves its neighbour, so a
  1 000-link hub needs 2 000 entries: past the bound, "neighbor table overflow" drops
  packets, and a thousand spokes never converged. Said before anything is built, with
  the sysctls that raise it.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import TYPE_CHECKING, AbstractSet

from harness.errors import MissingCapability

if TYPE_CHECKING:
    from harness.plan.types import NetworkPlan

BASE_FILES = 256  # the process's own: Python, pytest, logs, pipes to helpers
# a pyroute2 handle is 4 descriptors (its netlink socket, an epoll and its event loop's
# self-pipe pair): every node and LAN bridge holds one for the engine, every kernel
# WireGuard device a second (generic netlink); 2 more per node for `reach`'s raw socket
# and a UAPI connection or pidfd. Measured: 4.0 per wireguard-go node; a 300-spoke hub
# with kernel WireGuard ran out of a 1 456 limit in the 6.1 VM
FILES_PER_NODE = 6
FILES_PER_KERNEL_DEVICE = 4


def files_needed(nodes: int, kernel_devices: int = 0) -> int:
    return BASE_FILES + FILES_PER_NODE * nodes + FILES_PER_KERNEL_DEVICE * kernel_devices


def ensure_open_files(nodes: int, kernel_devices: int = 0) -> int:
    """Raise the soft limit to what `nodes` nodes (LAN bridges counted as nodes) and
    `kernel_devices` kernel WireGuard devices need (never lower it); returns it.
    MissingCapability if the hard limit cannot hold them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = files_needed(nodes, kernel_devices)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise MissingCapability(
            f"a run of {nodes} nodes needs about {needed} open files, and this process may have at most {hard} "
            f"(its hard RLIMIT_NOFILE): raise it (as root: `ulimit -Hn {needed}` in the shell that starts the run, "
            f"or LimitNOFILE= for a systemd service, or nofile in /etc/security/limits.conf)"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed


INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")


def inotify_instances_in_use(uid: int | None = None) -> int:
    """inotify instances held by the processes of `uid` (default: ours): the kernel
    counts them per user. A scan of /proc: done only for runs that come near the limit."""
    uid = os.getuid() if uid is None else uid
    count = 0
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and proc.stat().st_uid == uid:
                count += inotify_instances_of(proc)
        except OSError:
            continue  # gone meanwhile
    return count


def inotify_instances_of(proc: Path) -> int:
    """inotify instances among the open files of /proc/<pid> (0 if it is gone)."""
    count = 0
    try:
        for fd in (proc / "fd").iterdir():
            try:
                count += os.readlink(fd) == "anon_inode:inotify"
            except OSError:
                continue
    except OSError:
        pass
    return count


def ensure_inotify_instances(daemons: int, limit_path: Path = INOTIFY_LIMIT) -> None:
    """MissingCapability if `daemons` userspace WireGuard daemons (one inotify instance
    each) would not fit under this user's inotify limit."""
    try:
        limit = int(limit_path.read_text())
    except (OSError, ValueError):
        return  # no such limit here
    if daemons <= limit // 2:
        return  # far from it: spare the scan
    in_use = inotify_instances_in_use()
    if daemons + in_use > limit:
        needed = daemons + in_use + 64
        raise MissingCapability(
            f"{daemons} userspace WireGuard daemons need an inotify instance each (wireguard-go watches its UAPI "
            f"socket with one), and this user may have {limit} ({in_use} in use): raise the limit, as root: "
            f"`sysctl -w fs.inotify.max_user_instances={needed}` (add it to /etc/sysctl.d/ to keep it), "
            f"or use kernel WireGuard (--backend kernel), which needs none"
        )


def raise_to(wanted: int, in_use: int, limit: int) -> int | None:
    """What a host-wide limit should be raised to when `wanted` more beside `in_use`
    would pass it (twice the need: other runs share it), or None if they fit."""
    return 2 * (wanted + in_use) if wanted + in_use > limit else None


NEIGHBOUR_TABLES = {4: ("arp_cache", "ipv4"), 6: ("ndisc_cache", "ipv6")}


def neighbour_entries_in_use(table: str, stat_dir: Path = Path("/proc/net/stat")) -> int:
    """Entries of a neighbour table, host-wide (every namespace's)."""
    try:
        lines = (stat_dir / table).read_text().splitlines()
        return int(lines[1].split()[0], 16)
    except (OSError, ValueError, IndexError):
        return 0


def ensure_neighbour_tables(entries: dict[int, int], sys_dir: Path = Path("/proc/sys/net"), stat_dir: Path = Path("/proc/net/stat")) -> None:
    """MissingCapability if the run's neighbour entries (per IP version: one per link end)
    would overflow the host's table, together with what is in it already."""
    for family, wanted in entries.items():
        table, ip = NEIGHBOUR_TABLES[family]
        try:
            limit = int((sys_dir / ip / "neigh" / "default" / "gc_thresh3").read_text())
        except (OSError, ValueError):
            continue
        if wanted <= limit // 2:
            continue
        in_use = neighbour_entries_in_use(table, stat_dir)
        needed = raise_to(wanted, in_use, limit)
        if needed is not None:
            raise MissingCapability(
                f"this run's links need about {wanted} IPv{family} neighbour entries (one per link end), and the host's "
                f"{table} table, which every namespace shares, holds at most {limit} ({in_use} in use): past that the kernel "
                f"drops packets (\"neighbor table overflow\"). Raise it, as root: `sysctl -w net.{ip}.neigh.default.gc_thresh3={needed} "
                f"net.{ip}.neigh.default.gc_thresh2={needed // 2}` (add them to /etc/sysctl.d/ to keep them)"
            )


# threads of one userspace daemon: wireguard-go has ~12 after its first handshakes (Go's
# runtime, and one per blocking read: TUN, UDP v4 and v6, UAPI), a hub's a few more
THREADS_PER_DAEMON = 16
HOST_TASKS = Path("/proc/loadavg")  # its 4th field: running/existing threads, host-wide


def threads_in_use(loadavg: Path = HOST_TASKS) -> int:
    """Threads that exist now, host-wide (every process's)."""
    try:
        return int(loadavg.read_text().split()[3].split("/")[1])
    except (OSError, ValueError, IndexError):
        return 0


def ensure_threads(daemons: int, sys_dir: Path = Path("/proc/sys/kernel"), loadavg: Path = HOST_TASKS) -> None:
    """MissingCapability if `daemons` userspace WireGuard daemons' threads would not fit
    under the kernel's bound on task ids (kernel.pid_max, 32 768 on a small machine: a
    thread takes one) or threads (kernel.threads-max), with what runs already: past it
    fork() fails with EAGAIN halfway through the build (3 000 wireguard-go did)."""
    wanted = daemons * THREADS_PER_DAEMON
    limits = {}
    for name in ("pid_max", "threads-max"):
        try:
            limits[name] = int((sys_dir / name).read_text())
        except (OSError, ValueError):
            continue
    if not limits or wanted <= min(limits.values()) // 2:
        return
    in_use = threads_in_use(loadavg)
    for name, limit in limits.items():
        needed = raise_to(wanted, in_use, limit)
        if needed is not None:
            raise MissingCapability(
                f"{daemons} userspace WireGuard daemons run about {wanted} threads ({THREADS_PER_DAEMON} each), and the "
                f"kernel allows {limit} (kernel.{name}; {in_use} exist already): raise it, as root: "
                f"`sysctl -w kernel.{name}={needed}` (add it to /etc/sysctl.d/ to keep it), or use kernel WireGuard "
                f"(--backend kernel), which runs no daemons"
            )


def ensure_room_for(plan: "NetworkPlan", nodes: AbstractSet[str] | None = None) -> None:
    """This machine can hold `nodes` of `plan` (default: all of it): open files,
    inotify instances, threads and neighbour entries, checked before anything is built.
    A run over several hosts checks each host's share where it is built."""
    from harness import caps
    from harness.backends import BACKENDS

    mine = [wg for wg in plan.wireguard.values() if nodes is None or wg.node in nodes]
    daemons = sum(BACKENDS[caps.resolve_backend(wg.backend)].userspace for wg in mine)
    count = len(plan.nodes) if nodes is None else len(nodes)
    lans = sum(1 for lan in plan.lans if nodes is None or any(port.node in nodes for port in lan.members))
    ensure_open_files(count + lans, len(mine) - daemons)
    ensure_inotify_instances(daemons)
    ensure_threads(daemons)
    ensure_neighbour_tables(plan.neighbour_entries(nodes))
