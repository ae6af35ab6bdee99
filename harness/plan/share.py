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
import statistics
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from harness.plan.network import NetworkPlan
from harness.plan.placement import Placement
from harness.plan.types import Conditions

VXLAN_PORT = 4789  # IANA's; every tunnel of every run shares it, told apart by VNI
VNI_SPACE = 1 << 24
VXLAN_OVERHEAD = {4: 50, 6: 70}  # outer IP + UDP + VXLAN + inner Ethernet
DEFAULT_MTU = 1500
LAN_MEMBERS_PER_VNI_BLOCK = 1024  # a LAN's members are at most a bridge's ports


@dataclass(frozen=True)
class CrossLink:
    """This host's end of link `index`: the tunnel to the other end's host."""

    index: int  # the link's (or the LAN's)
    node: str  # the node here ("": a LAN's bridge, here)
    ifname: str  # its planned interface name (a LAN's bridge: its port towards the member)
    vni: int
    local: str  # this host's underlay address
    remote: str  # the other host's
    inner_mtu: int
    # one way, seconds: what the hosts' own network adds, taken off the link's configured delay
    underlay_delay: float = 0.0

    @property
    def outer_mtu(self) -> int:
        """What the physical network must carry for a full-size inner frame."""
        return self.inner_mtu + VXLAN_OVERHEAD[ipaddress.ip_address(self.remote).version]


@dataclass(frozen=True)
class HostShare:
    host: str
    nodes: frozenset[str]
    cross: Mapping[int, CrossLink] = field(default_factory=dict)  # link index → this host's tunnel end
    # a LAN's bridge is on one host (lan_homes: LAN index → host); a member elsewhere
    # reaches it by a tunnel: (LAN index, member position) → this host's end of it, in
    # the member node (its port's name) or, on the bridge's host, in the bridge's
    # namespace (the bridge's port towards that member)
    lan_homes: Mapping[int, str] = field(default_factory=dict)
    lan_ends: Mapping[tuple[int, int], CrossLink] = field(default_factory=dict)

    def bridge_here(self, lan_index: int) -> bool:
        return self.lan_homes.get(lan_index, self.host) == self.host


def vni_of(run_id: str, link_index: int, member: int | None = None) -> int:
    """A tunnel's VNI: from the run id (runs sharing hosts keep apart) and the link's
    index, or a LAN's and its member's position (every tunnel of a run has its own:
    the kernel keeps one VXLAN device per VNI and port in the hosts' namespace)."""
    base = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:3], "big") & ~0xFFF
    offset = link_index if member is None else (1 << 23) + link_index * LAN_MEMBERS_PER_VNI_BLOCK + member
    return (base + offset) % VNI_SPACE or 1


def share_of(
    plan: NetworkPlan, placement: Placement, host: str, underlays: Mapping[str, str],
    latencies: Mapping[frozenset[str], "UnderlayLatency"] | None = None,
) -> HostShare:
    """`host`'s nodes and its ends of the links that cross to other hosts; `underlays`:
    each host's underlay address; `latencies`: measured between pairs of hosts (their
    one-way latency is taken off the links' configured delays)."""
    latencies = latencies or {}
    mine = frozenset(placement.nodes_on(host))
    cross: dict[int, CrossLink] = {}
    for veth in plan.veths:
        ends = {veth.a.node: veth.a, veth.b.node: veth.b}
        here = [port for node, port in ends.items() if node in mine]
        if len(here) != 1:
            continue  # both ends here (a veth), or neither
        port = here[0]
        other = veth.b if port is veth.a else veth.a
        far = placement.host_of[other.node]
        cross[veth.index] = CrossLink(
            veth.index, port.node, port.ifname, vni_of(plan.run_id, veth.index),
            underlays[host], underlays[far], veth.mtu or DEFAULT_MTU, _one_way(latencies, host, far),
        )
    homes = {lan.index: placement.lan_home(lan) for lan in plan.lans}
    lan_ends: dict[tuple[int, int], CrossLink] = {}
    for index, k in placement.crossing_lan_ports(plan):
        lan = next(lan for lan in plan.lans if lan.index == index)
        port, home = lan.members[k], homes[index]
        member_host = placement.host_of[port.node]
        if host not in (home, member_host):
            continue
        far = home if host == member_host else member_host
        node, ifname = (port.node, port.ifname) if host == member_host else ("", lan.bridge_port(k))
        lan_ends[(index, k)] = CrossLink(
            index, node, ifname, vni_of(plan.run_id, index, k), underlays[host], underlays[far],
            lan.mtu or DEFAULT_MTU, _one_way(latencies, host, far),
        )
    return HostShare(host, mine, cross, homes, lan_ends)


def _one_way(latencies: Mapping[frozenset[str], "UnderlayLatency"], host: str, far: str) -> float:
    measured = latencies.get(frozenset((host, far)))
    return measured.one_way if measured is not None else 0.0


@dataclass(frozen=True)
class UnderlayLatency:
    """The round trip between two hosts over their own network, measured at build
    (ICMP echo between their underlay addresses); milliseconds."""

    hosts: tuple[str, str]
    sent: int
    received: int
    rtt_min: float | None = None
    rtt_median: float | None = None
    rtt_max: float | None = None

    @classmethod
    def of(cls, hosts: tuple[str, str], sent: int, rtts: Sequence[float]) -> "UnderlayLatency":
        if not rtts:
            return cls(hosts, sent, 0)
        return cls(hosts, sent, len(rtts), round(min(rtts), 3), round(statistics.median(rtts), 3), round(max(rtts), 3))

    @property
    def one_way(self) -> float:
        """Seconds one way: half the quickest round trip (0 when nothing came back). The
        minimum, not the median: it is what the path itself takes, where a busy machine
        (or a queue) only ever adds, and a loaded build must not take off more than that."""
        return self.rtt_min / 2000 if self.rtt_min is not None else 0.0

    def describe(self) -> str:
        if not self.received:
            return f"{self.hosts[0]} ↔ {self.hosts[1]}: no echo reply over the hosts' network ({self.sent} sent): its latency is unknown, nothing is subtracted"
        return (
            f"{self.hosts[0]} ↔ {self.hosts[1]}: the hosts' network adds {self.one_way * 1000:.3g} ms one way "
            f"(round trip min/median/max {self.rtt_min:g}/{self.rtt_median:g}/{self.rtt_max:g} ms, {self.received}/{self.sent} replies)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "hosts": list(self.hosts), "sent": self.sent, "received": self.received,
            "rtt_min": self.rtt_min, "rtt_median": self.rtt_median, "rtt_max": self.rtt_max, "one_way": round(self.one_way * 1000, 4),
        }


@dataclass(frozen=True)
class Spread:
    """Where a network spread over several hosts ran: each node's host, the latency
    between hosts a link crosses, and how the links' delays take it in."""

    placement: Mapping[str, str]
    underlay: tuple[UnderlayLatency, ...] = ()
    notes: tuple[str, ...] = ()


def compensated(conditions: Conditions | None, underlay_delay: float) -> Conditions | None:
    """What netem sets on a tunnel end so that the link's one-way delay is the file's:
    the configured delay less what the hosts' network adds, never below 0 (a link
    with no delay configured carries the hosts' latency as it is)."""
    if conditions is None or conditions.delay is None or underlay_delay <= 0:
        return conditions
    return replace(conditions, delay=max(conditions.delay - underlay_delay, 0.0))


def compensation_notes(plan: NetworkPlan, placement: Placement, latencies: Mapping[frozenset[str], UnderlayLatency]) -> list[str]:
    """How well each crossing link's configured delay holds: what netem sets, or why
    the hosts' own latency cannot be taken off (pure)."""
    notes: list[str] = []
    for index in placement.crossing(plan):
        veth = plan.veths[index]
        hosts = frozenset((placement.host_of[veth.a.node], placement.host_of[veth.b.node]))
        measured = latencies.get(hosts)
        if measured is None or not measured.received:
            continue
        one_way = measured.one_way * 1000
        for port in (veth.a, veth.b):
            configured = veth.egress(port.node)
            if configured is None or configured.delay is None:
                continue
            wanted = configured.delay * 1000
            label = f"link {veth.name} from {port.node}"
            if wanted >= one_way:
                notes.append(f"{label}: delay {wanted:g} ms = {wanted - one_way:.3g} ms by netem + {one_way:.3g} ms of the hosts' network")
            else:
                notes.append(f"{label}: delay {wanted:g} ms is less than the hosts' network alone adds ({one_way:.3g} ms): it is {one_way:.3g} ms")
    return notes

