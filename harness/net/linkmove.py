"""Moving an interface between namespaces, as WireGuard's netns.sh does with
`ip link set wg0 netns ns1`: the interface leaves, but a WireGuard device keeps its
UDP socket in the namespace it was created in (wireguard-go: the namespace its
process runs in), so that namespace becomes its underlay."""

from __future__ import annotations

import os
from typing import Any

from harness.net import nsexec


def move_link(ipr: Any, ifname: str, to_namespace: str) -> int:
    """Move `ifname` (seen by `ipr`, a netlink socket in its current namespace) into
    `to_namespace`; returns its index there (the kernel keeps it when it is free)."""
    index = ipr.link_lookup(ifname=ifname)
    if not index:
        raise LookupError(f"no interface {ifname} to move")
    fd = os.open(nsexec.netns_path(to_namespace), os.O_RDONLY | os.O_CLOEXEC)
    try:
        ipr.link("set", index=index[0], net_ns_fd=fd)
    finally:
        os.close(fd)
    return index[0]


def move_link_from(from_namespace: str, ifname: str, to_namespace: str) -> int:
    """move_link with a netlink socket opened just for this inside `from_namespace`."""
    from pyroute2 import IPRoute

    with IPRoute(fileno=nsexec.netlink_fd(from_namespace)) as ipr:
        return move_link(ipr, ifname, to_namespace)
