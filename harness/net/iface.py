"""Addresses and routes on one node's interfaces through its rtnetlink handle."""

from __future__ import annotations

from typing import Any, Sequence


# linux/if_addr.h
IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40


def add_address(ipr: Any, index: int, address: Any, **extra: Any) -> None:
    """Add one address (an ipaddress interface) to the link with this index.

    IPv6 addresses skip duplicate address detection: the plan gives every address
    once, and without IFA_F_NODAD the kernel keeps a new address tentative (packets to
    it dropped) until its DAD work item runs, which waits for the RTNL lock; while other
    namespaces are being built or deleted that can take seconds, even with accept_dad=0
    or on a NOARP device such as a TUN (CI lost in-tunnel IPv6 pings this way)."""
    if address.version == 6:
        extra.setdefault("flags", IFA_F_NODAD)
    ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen, **extra)


def route_requests(ipr: Any, routes: Sequence[Any]) -> list[dict[str, Any]]:
    """pyroute2 `route()` keywords for planned routes (interface indexes looked up once)."""
    indexes = {link.get_attr("IFLA_IFNAME"): link["index"] for link in ipr.get_links()} if routes else {}
    return [
        {"dst": str(r.destination), "gateway": str(r.gateway) if r.gateway else None, "oif": indexes[r.dev]} for r in routes
    ]


def install_route(ipr: Any, route: Any, replace: bool = False) -> None:
    index = ipr.link_lookup(ifname=route.dev)[0]
    gateway = str(route.gateway) if route.gateway else None
    ipr.route("replace" if replace else "add", dst=str(route.destination), gateway=gateway, oif=index)


def address_flags(ipr: Any, address: Any) -> int | None:
    """The kernel's flags for this address on any of the node's interfaces (None: absent)."""
    for message in ipr.get_addr(family=10 if address.version == 6 else 2):
        if message.get_attr("IFA_ADDRESS") == str(address):
            return message.get_attr("IFA_FLAGS") or message["flags"]
    return None


def unusable_address(ipr: Any, address: Any) -> str | None:
    """Why the node cannot use its own address yet: 'tentative' (duplicate address
    detection has not finished: packets to it are dropped, none are sent from it),
    'dadfailed', or None."""
    flags = address_flags(ipr, address) or 0
    if flags & IFA_F_DADFAILED:
        return "dadfailed"
    if flags & IFA_F_TENTATIVE:
        return "tentative"
    return None
