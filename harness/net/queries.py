"""What the diagnosis and the steps ask of a node's kernel, by name: the route to an
address, an interface's MTU and error counters, whether an address is usable yet.

A node handle answers these questions itself (`NetlinkQueries`, over its own rtnetlink
handle); code outside the engines and net/ asks the node and never touches its
netlink handle, so that a node can live where that handle is not (another machine,
whose worker answers the same questions). The answers are plain data.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from harness.net.iface import unusable_address


@dataclass(frozen=True)
class RouteLookup:
    """`ip route get` in short: the interface a packet leaves by, the next hop (None:
    on-link), and the path MTU the kernel has learnt for it (None: none cached)."""

    oif: int
    gateway: str | None
    cached_mtu: int | None


class NetlinkQueries:
    """The named queries over `self.netlink` (a pyroute2 IPRoute, or a stand-in with
    the same methods)."""

    netlink: Any

    def route_to(self, destination: str, mark: int | None = None) -> RouteLookup | None:
        """The route a packet to `destination` takes (with socket mark `mark`, as
        WireGuard's own packets carry its fwmark); None when there is none."""
        query: dict[str, Any] = {"dst": destination}
        if mark is not None:
            query["mark"] = mark
        try:
            route = self.netlink.route("get", **query)[0]
        except NetlinkError:  # ENETUNREACH, EHOSTUNREACH: no route
            return None
        metrics = route.get_attr("RTA_METRICS")
        cached = metrics.get_attr("RTAX_MTU") if metrics is not None else None
        return RouteLookup(route.get_attr("RTA_OIF"), route.get_attr("RTA_GATEWAY"), cached)

    def interface_index(self, ifname: str) -> int | None:
        """The index of interface `ifname`, None if there is none."""
        found = self.netlink.link_lookup(ifname=ifname)
        return found[0] if found else None

    def interface_mtu(self, index: int) -> int:
        return int(self.netlink.link("get", index=index)[0].get_attr("IFLA_MTU"))

    def interface_counters(self, ifname: str) -> dict[str, int]:
        """The kernel's counters of `ifname` (rx_errors, tx_packets, …); {} if it is gone."""
        index = self.interface_index(ifname)
        if index is None:
            return {}
        for link in self.netlink.get_links(index):
            stats = link.get_attr("IFLA_STATS64") or link.get_attr("IFLA_STATS") or {}
            return {name: value for name, value in dict(stats).items() if isinstance(value, int)}
        return {}

    def address_state(self, address: str) -> str | None:
        """'tentative' or 'dadfailed' when the node cannot use its own `address` yet,
        else None (see harness.net.iface.unusable_address)."""
        return unusable_address(self.netlink, ipaddress.ip_address(address))
