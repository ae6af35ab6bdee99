"""One host's share of a network placed over several hosts (pure): its nodes, and for
each link with one end there and the other on another host, the kernel VXLAN tunnel
that carries it between the two hosts' underlay addresses.

A tunnel end is made directly in its node's namespace under the link's planned
interface name, so addresses, routes, conditions, NAT and captures apply to it as to
a veth end. Its UDP socket stays in the host's own namespace (the worker's), on the
physical network. The inner MTU is the file's: the host's physical interface must
carry it plus the encapsulation, or the build stops and says so (never lowered).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import Mapping

from harness.plan.network import NetworkPlan
from harness.plan.placement import Placement

VXLAN_PORT = 4789  # IANA's; every tunnel of every run shares it, told apart by VNI
VNI_SPACE = 1 << 24
VXLAN_OVERHEAD = {4: 50, 6: 70}  # outer IP + UDP + VXLAN + inner Ethernet
DEFAULT_MTU = 1500


@dataclass(frozen=True)
class CrossLink:
    """This host's end of link `index`: the tunnel to the other end's host."""

    index: int
    node: str  # the node here
    ifname: str  # its planned interface name
    vni: int
    local: str  # this host's underlay address
    remote: str  # the other host's
    inner_mtu: int

    @property
    def outer_mtu(self) -> int:
        """What the physical network must carry for a full-size inner frame."""
        return self.inner_mtu + VXLAN_OVERHEAD[ipaddress.ip_address(self.remote).version]


@dataclass(frozen=True)
class HostShare:
    host: str
    nodes: frozenset[str]
    cross: Mapping[int, CrossLink] = field(default_factory=dict)  # link index → this host's tunnel end


def vni_of(run_id: str, link_index: int) -> int:
    """A link's VNI: from the run id (runs sharing hosts keep apart) and the link's index."""
    base = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:3], "big") & ~0xFFF
    return (base + link_index) % VNI_SPACE or 1


def share_of(plan: NetworkPlan, placement: Placement, host: str, underlays: Mapping[str, str]) -> HostShare:
    """`host`'s nodes and its ends of the links that cross to other hosts; `underlays`:
    each host's underlay address."""
    mine = frozenset(placement.nodes_on(host))
    cross: dict[int, CrossLink] = {}
    for veth in plan.veths:
        ends = {veth.a.node: veth.a, veth.b.node: veth.b}
        here = [port for node, port in ends.items() if node in mine]
        if len(here) != 1:
            continue  # both ends here (a veth), or neither
        port = here[0]
        other = veth.b if port is veth.a else veth.a
        cross[veth.index] = CrossLink(
            veth.index, port.node, port.ifname, vni_of(plan.run_id, veth.index),
            underlays[host], underlays[placement.host_of[other.node]], veth.mtu or DEFAULT_MTU,
        )
    return HostShare(host, mine, cross)
