"""Cryptokey routing as WireGuard does it: of the AllowedIPs that contain an address,
the most specific (longest prefix) wins. Used by the planner (which peer a packet
goes to), the diagnosis (which peer it actually went to, and whether the receiver
accepts its source) alike, so the three agree (pure)."""

from __future__ import annotations

import ipaddress
from typing import Callable, Iterable, TypeVar, Union

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Peer = TypeVar("Peer")


def _network(value: Union[str, Network]) -> Network:
    return ipaddress.ip_network(value, strict=False) if isinstance(value, str) else value


def covering(allowed_ips: Iterable[Union[str, Network]], address: Address) -> Network | None:
    """The most specific of `allowed_ips` that contains `address`, or None."""
    best: Network | None = None
    for value in allowed_ips:
        network = _network(value)
        if address in network and (best is None or network.prefixlen > best.prefixlen):
            best = network
    return best


def peer_for(peers: Iterable[Peer], address: Address, allowed_ips: Callable[[Peer], Iterable[Union[str, Network]]]) -> Peer | None:
    """The peer whose AllowedIPs carry `address` (longest prefix over all peers), or None.
    On a tie the first peer wins, as a device holds each prefix for one peer only."""
    best: tuple[int, Peer] | None = None
    for peer in peers:
        network = covering(allowed_ips(peer), address)
        if network is not None and (best is None or network.prefixlen > best[0]):
            best = (network.prefixlen, peer)
    return best[1] if best is not None else None
