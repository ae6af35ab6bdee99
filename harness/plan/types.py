"""The network plan's types: everything the builder will create, as frozen data.

`network.py` computes a plan from the model; engines build it. Pure: no I/O, no keys.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field, fields, replace
from typing import AbstractSet, Any

from harness import allowedips
from harness.backends import UserspaceCommand
from harness.endpoint import format_endpoint
from harness.errors import HarnessError
from harness.plan.routing import Address, Interface, Network, Port, RoutePlan, Routing, RoutingRole, reachable_address

__all__ = [
    "Address", "Conditions", "EndpointPlan", "FirewallPlan", "FULL_TUNNEL_TABLE", "GilbertElliottLoss", "Interface",
    "LanPlan", "MAIN_TABLE", "NatPlan", "Network", "NetworkPlan", "NodePlan", "PeerPlan", "PlanError", "PlanErrors", "Port",
    "RoutePlan", "VethPlan", "WgPlan",
]


class PlanError(HarnessError, ValueError):
    """A scenario that validates field by field but cannot be built; `path` locates it."""

    def __init__(self, path: tuple, message: str):
        self.path = path
        super().__init__(message)


class PlanErrors(PlanError):
    """Every problem the planner found, so a user fixes them in one round."""

    def __init__(self, errors: list[PlanError]):
        self.errors = errors
        super().__init__(errors[0].path, "; ".join(str(e) for e in errors))


@dataclass(frozen=True)
class GilbertElliottLoss:
    """Bursty loss (netem 'loss gemodel p r 1-h 1-k'), in percent."""

    p: float
    r: float
    bad_loss: float = 100.0
    good_loss: float = 0.0


@dataclass(frozen=True)
class Conditions:
    """Network conditions on one direction of a link (netem, tbf); None: not set. The
    scenario's `Impairment` after parsing, in the same order: seconds, percent (the
    correlations, losses, reorder, duplicate, corrupt), bit/s and packets."""

    delay: float | None = None  # one way
    jitter: float | None = None
    distribution: str | None = None  # of the jitter: uniform, normal, pareto, paretonormal
    delay_correlation: float | None = None

    loss: float | None = None
    loss_correlation: float | None = None
    gilbert_elliott: GilbertElliottLoss | None = None  # bursty loss instead of `loss`

    reorder: float | None = None
    duplicate: float | None = None
    corrupt: float | None = None

    rate: float | None = None  # netem above, the token bucket here
    queue: int | None = None  # packets

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def settings(self) -> dict[str, Any]:
        """The settings that are set, by name (nested ones as dicts)."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    def overridden(self, other: "Conditions | None") -> "Conditions":
        """These conditions with `other`'s settings on top."""
        if other is None:
            return self
        return replace(self, **{f.name: getattr(other, f.name) for f in fields(other) if getattr(other, f.name) is not None})


@dataclass(frozen=True)
class VethPlan:
    index: int
    a: Port
    b: Port
    mtu: int | None
    name: str = ""
    egress_a: Conditions | None = None  # conditions on traffic a → b (a's egress)
    egress_b: Conditions | None = None  # conditions on traffic b → a

    def egress(self, node: str) -> Conditions | None:
        return self.egress_a if node == self.a.node else self.egress_b


@dataclass(frozen=True)
class LanPlan:
    """A shared segment: a bridge in a namespace of its own (`position`, from 1, names
    it), a port of it per member, each joined to the member's own port by a veth pair."""

    index: int  # its link index: after every veth pair's
    position: int
    name: str
    members: tuple[Port, ...]  # the members' own ends, in the file's order
    mtu: int | None
    arriving: dict[str, Conditions] = field(default_factory=dict)  # member → on what reaches it (the bridge's port)
    sending: dict[str, Conditions] = field(default_factory=dict)  # member → on what it sends (its own port)

    def member(self, node: str) -> Port:
        return next(p for p in self.members if p.node == node)

    def bridge_port(self, member_position: int) -> str:
        """The bridge's port towards member N (from 0), in the bridge's namespace."""
        return f"p{member_position}"


@dataclass(frozen=True)
class NatPlan:
    outside_dev: str
    udp_timeout: float | None
    type: str = "port-restricted"
    hairpin: bool = False
    outside_addresses: tuple[Interface, ...] = ()
    inside_devs: tuple[str, ...] = ()
    outside_neighbour: str | None = None  # the node on its public side


@dataclass(frozen=True)
class FirewallPlan:
    """A firewall rule with its `from` neighbour resolved to this node's interface."""

    drop: str | None
    allow: str | None
    port: int | None
    in_dev: str | None


@dataclass(frozen=True)
class NodePlan:
    name: str
    forwards: bool
    sysctls: dict[str, str]
    routes: tuple[RoutePlan, ...] = ()
    nat: NatPlan | None = None
    firewall: tuple[FirewallPlan, ...] = ()
    gateway: str | None = None  # the neighbour its default routes go through
    dns: dict[str, str] = field(default_factory=dict)  # its DNS server's records: name → the node it names


@dataclass(frozen=True)
class EndpointPlan:
    address: Address | None  # None: a DNS name, resolved inside the node when the network is built
    port: int
    node: str | None  # the node it names, when given by node name (or the node its DNS record names)
    name: str | None = None  # the DNS name it was given as, e.g. server.wgh.test

    def __str__(self) -> str:
        return format_endpoint(self.name if self.address is None else self.address, self.port)


@dataclass(frozen=True)
class PeerPlan:
    node: str
    allowed_ips: tuple[Network, ...]
    endpoint: EndpointPlan | None
    persistent_keepalive: int
    preshared_key: str | None = None  # the name of the preshared key this end uses with the peer (the key is made at build)


FULL_TUNNEL_TABLE = 51820  # wg-quick's routing table and fwmark for a default route through the tunnel
MAIN_TABLE = 254


@dataclass(frozen=True)
class WgPlan:
    node: str
    ifname: str
    backend: str  # one of harness.backends.CHOICES as asked; 'auto' is resolved at build time
    listen_port: int
    addresses: tuple[Interface, ...]
    mtu: int | None
    peers: tuple[PeerPlan, ...]
    routes: tuple[Network, ...]
    socket_in: str | None = None  # created there and moved here: its UDP socket stays there
    table: str | int = "auto"  # as wg-quick's Table: auto | main | off | a table number
    userspace: UserspaceCommand | None = None  # the command that starts it, for the userspace backend
    fwmark_setting: int | None = None  # the fwmark the file gives (wg-quick's FwMark)

    @property
    def full_tunnel(self) -> bool:
        """wg-quick's policy routing applies: table auto and a default route through the tunnel."""
        return self.table == "auto" and any(net.prefixlen == 0 for net in self.routes)

    @property
    def fwmark(self) -> int | None:
        """The device's fwmark: the one given, else, as wg-quick sets it, 51820 when a
        default route goes through the tunnel with table auto, so policy routing can
        send WireGuard's own (marked) packets by the underlay and everything else into
        the tunnel."""
        if self.fwmark_setting is not None:
            return self.fwmark_setting
        return FULL_TUNNEL_TABLE if self.full_tunnel else None

    def routes_by_table(self) -> tuple[tuple[Network, int], ...]:
        """(destination, routing table) for every route through the interface."""
        if self.table == "off":
            return ()
        if isinstance(self.table, int):
            return tuple((net, self.table) for net in self.routes)
        full_tunnel = self.full_tunnel
        return tuple(
            (net, self.fwmark if full_tunnel and net.prefixlen == 0 else MAIN_TABLE) for net in self.routes
        )

    def policy_families(self) -> tuple[int, ...]:
        """The IP versions that need wg-quick's fwmark rules (those with a default route here)."""
        if not self.full_tunnel:
            return ()
        return tuple(sorted({net.version for net in self.routes if net.prefixlen == 0}))

    @property
    def socket_node(self) -> str:
        """The node whose namespace holds this interface's UDP socket (its underlay)."""
        return self.socket_in or self.node

    def peer(self, node: str) -> PeerPlan | None:
        return next((p for p in self.peers if p.node == node), None)

    def peer_for(self, address: Address) -> PeerPlan | None:
        """The peer whose AllowedIPs carry `address` (most specific match), as planned."""
        return allowedips.peer_for(self.peers, address, lambda p: p.allowed_ips)


@dataclass(frozen=True)
class NetworkPlan:
    run_id: str
    nodes: dict[str, NodePlan]
    veths: tuple[VethPlan, ...]
    wireguard: dict[str, WgPlan]
    ports: dict[str, tuple[Port, ...]] = field(repr=False)
    lans: tuple[LanPlan, ...] = ()
    placement: dict[str, str] = field(default_factory=dict)  # node → host, from the file's `placement:`

    def neighbour_entries(self, nodes: AbstractSet[str] | None = None) -> dict[int, int]:
        """Per IP version, the neighbour entries the underlay resolves: on a link, one per
        end with an address of that version (each end learns the other's); on a LAN, per
        member, the members it talks to: every other one for a router, else one per
        WireGuard peer and one more (its router), at most every other member."""
        counts = {4: 0, 6: 0}
        on_lan = {lan.index: len(lan.members) for lan in self.lans}
        peers: dict[str, int] = {}
        for wg in self.wireguard.values():
            peers[wg.socket_node] = peers.get(wg.socket_node, 0) + len(wg.peers)
        for node, ports in self.ports.items():
            if nodes is not None and node not in nodes:  # another host's (a run over several)
                continue
            for port in ports:
                members = on_lan.get(port.link_index)
                learnt = 1
                if members is not None:
                    others = members - 1
                    learnt = others if self.nodes[node].forwards else min(others, peers.get(node, 0) + 1)
                for family in {a.version for a in port.addresses}:
                    counts[family] += learnt
        return counts

    def link_ends(self) -> tuple[tuple[str, ...], ...]:
        """Every link's nodes by link index: each veth pair's two, then each LAN's members."""
        return tuple((v.a.node, v.b.node) for v in self.veths) + tuple(tuple(p.node for p in lan.members) for lan in self.lans)

    def lan(self, link_index: int) -> "LanPlan | None":
        """The LAN with this link index (None: a veth pair's)."""
        position = link_index - len(self.veths)
        return self.lans[position] if 0 <= position < len(self.lans) else None

    def routing(self, down_links: frozenset[int] | set[int] = frozenset()) -> Routing:
        """Route computation over this plan's underlay, without the links in `down_links`
        (the one without any is made once per plan: planning asks it once per endpoint)."""
        if not down_links and "_routing" in self.__dict__:
            return self.__dict__["_routing"]
        roles = {
            name: RoutingRole(node.forwards, node.nat.outside_neighbour if node.nat else None, node.gateway)
            for name, node in self.nodes.items()
        }
        routing = Routing(roles, self.link_ends(), self.ports, down_links)
        if not down_links:
            object.__setattr__(self, "_routing", routing)  # a cache, not a field: equality and replace() ignore it
        return routing

    def routes_avoiding(self, down_links: set[int]) -> dict[str, tuple[RoutePlan, ...]]:
        """Every node's routes when these links are down (roaming: routes follow)."""
        routing = self.routing(down_links)
        return {name: tuple(routing.routes_for(name)) for name in self.nodes}

    def link_index(self, name: str) -> int | None:
        return next((v.index for v in self.veths if v.name == name), None)

    def tunnel_address(self, node: str, family: int = 4) -> Address | None:
        wg = self.wireguard.get(node)
        if wg is None:
            return None
        return next((a.ip for a in wg.addresses if a.version == family), None)

    def underlay_address(self, src: str, dst: str, family: int = 4, *, reachable: bool = True) -> Address | None:
        """The address of `dst` that `src` reaches on the underlay (None if none).
        With reachable=False, fall back to dst's first address (for expected failures)."""
        found = reachable_address(self.routing(), self.nodes[src].routes, src, dst, family)
        if found is None and not reachable:
            found = next((a.ip for p in self.ports[dst] for a in p.addresses if a.version == family), None)
        return found

    def target_address(self, src: str, to: str, via: str = "tunnel", family: int = 4) -> Address | None:
        """What a check from `src` aims at: a node's tunnel or underlay address, or a literal IP."""
        if to not in self.nodes:
            return ipaddress.ip_address(to)
        if via == "tunnel" and to in self.wireguard:
            return self.tunnel_address(to, family)
        # a node without WireGuard reached through the tunnel (a host beyond a full-tunnel
        # peer) is aimed at by its underlay address, as on the underlay
        return self.underlay_address(src, to, family, reachable=False)

    def initiators(self) -> list[tuple[str, str]]:
        """(node, peer) pairs that send first: those that know an endpoint."""
        return [(n, p.node) for n, wg in self.wireguard.items() for p in wg.peers if p.endpoint]
