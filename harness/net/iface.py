"""Addresses and routes on one node's interfaces through its rtnetlink handle."""

from __future__ import annotations

from typing import Any, Sequence


def address_and_up(ipr: Any, ifname: str, addresses: Sequence[Any], mtu: int | None) -> int:
    """Add addresses to an interface, set its MTU, bring it up; returns its index."""
    index = ipr.link_lookup(ifname=ifname)[0]
    for address in addresses:
        ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
    settings: dict[str, Any] = {"state": "up"}
    if mtu:
        settings["mtu"] = mtu
    ipr.link("set", index=index, **settings)
    return index


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
