"""The open-files limit a run needs (RLIMIT_NOFILE): it grows with the topology.

The harness keeps one rtnetlink socket per node, and `reach` opens a raw socket per
node: a 1 000-node run holds over 2 000 descriptors, twice the soft limit most shells
start with (1 024). The soft limit may be raised up to the hard one without privilege,
so a run raises it as far as it needs; only a hard limit too low to hold the run is an
error, said before anything is built.
"""

from __future__ import annotations

import resource

from harness.errors import MissingCapability

BASE_FILES = 256  # the process's own: Python, pytest, logs, pipes to helpers
FILES_PER_NODE = 4  # its netlink socket, a raw socket for `reach`, a UAPI or pidfd, spare


def files_needed(nodes: int) -> int:
    return BASE_FILES + FILES_PER_NODE * nodes


def ensure_open_files(nodes: int) -> int:
    """Raise the soft limit to what `nodes` nodes need (never lower it); returns it.
    MissingCapability if the hard limit cannot hold them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = files_needed(nodes)
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
