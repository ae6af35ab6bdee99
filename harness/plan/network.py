"""The network plan: everything the builder will create, computed from the model.

Pure and deterministic except for the run id, which is an input: the plan holds no
keys (they are generated when the network is built) and performs no I/O.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface, ip_address, ip_network
from typing import Union

from harness.net.dnswire import is_dns_name
from harness.plan import addressing, naming
from harness.plan.dns import dns_endpoint
from harness.scenario.model import Impairment, LinkSpec, ScenarioSpec

Interface = Union[IPv4Interface, IPv6Interface]
Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class PlanError(ValueError):
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
class Port:
    """One end of an underlay link, inside a node."""

    node: str
    ifname: str
    addresses: tuple[Interface, ...]
    link_index: int


@dataclass(frozen=True)
class VethPlan:
    index: int
    a: Port
    b: Port
    mtu: int | None
    name: str = ""
    egress_a: Impairment | None = None  # conditions on traffic a → b (a's egress)
    egress_b: Impairment | None = None  # conditions on traffic b → a

    def egress(self, node: str) -> Impairment | None:
        return self.egress_a if node == self.a.node else self.egress_b


@dataclass(frozen=True)
class RoutePlan:
    destination: Network
    gateway: Address | None
    dev: str


@dataclass(frozen=True)
class NatPlan:
    outside_dev: str
    udp_timeout: float | None
    type: str = "port-restricted"
    hairpin: bool = False
    outside_addresses: tuple[Interface, ...] = ()
    inside_devs: tuple[str, ...] = ()


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
    namespace: str
    forwards: bool
    sysctls: dict[str, str]
    routes: tuple[RoutePlan, ...] = ()
    nat: NatPlan | None = None
    firewall: tuple[FirewallPlan, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    address: Address | None  # None: a DNS name, resolved inside the node when the network is built
    port: int
    node: str | None  # the node it names, when given by node name (or the node its DNS record names)
    name: str | None = None  # the DNS name it was given as, e.g. server.wgh.test

    def __str__(self) -> str:
        if self.address is None:
            return f"{self.name}:{self.port}"
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class PeerPlan:
    node: str
    allowed_ips: tuple[Network, ...]
    endpoint: Endpoint | None
    persistent_keepalive: int


FULL_TUNNEL_TABLE = 51820  # wg-quick's routing table and fwmark for a default route through the tunnel
MAIN_TABLE = 254


@dataclass(frozen=True)
class WgPlan:
    node: str
    ifname: str
    backend: str  # 'auto' | 'kernel' | 'wireguard-go' as asked; resolved at build time
    listen_port: int
    addresses: tuple[Interface, ...]
    mtu: int | None
    peers: tuple[PeerPlan, ...]
    routes: tuple[Network, ...]
    socket_in: str | None = None  # created there and moved here: its UDP socket stays there
    table: str = "auto"  # as wg-quick's Table: auto | main | off

    @property
    def fwmark(self) -> int | None:
        """The device's fwmark: set, as wg-quick does, when a default route goes through
        the tunnel with table auto, so policy routing can send WireGuard's own
        (marked) packets by the underlay and everything else into the tunnel."""
        if self.table == "auto" and any(net.prefixlen == 0 for net in self.routes):
            return FULL_TUNNEL_TABLE
        return None

    def routes_by_table(self) -> tuple[tuple[Network, int], ...]:
        """(destination, routing table) for every route through the interface."""
        if self.table == "off":
            return ()
        full_tunnel = self.fwmark is not None
        return tuple(
            (net, FULL_TUNNEL_TABLE if full_tunnel and net.prefixlen == 0 else MAIN_TABLE) for net in self.routes
        )

    def policy_families(self) -> tuple[int, ...]:
        """The IP versions that need wg-quick's fwmark rules (those with a default route here)."""
        if self.fwmark is None:
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
        matches = [(net.prefixlen, p) for p in self.peers for net in p.allowed_ips if address in net]
        return max(matches, key=lambda m: m[0])[1] if matches else None


@dataclass(frozen=True)
class NetworkPlan:
    run_id: str
    nodes: dict[str, NodePlan]
    veths: tuple[VethPlan, ...]
    wireguard: dict[str, WgPlan]
    ports: dict[str, tuple[Port, ...]] = field(repr=False)
    spec: ScenarioSpec | None = field(default=None, repr=False, compare=False)

    def routes_avoiding(self, down_links: set[int]) -> dict[str, tuple[RoutePlan, ...]]:
        """Every node's routes when these links are down (roaming: routes follow)."""
        routing = _Routing(self.spec, self.ports, excluded=down_links)
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
        found = _reachable_address(self, src, dst, family)
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


def build_plan(spec: ScenarioSpec, run_id: str, default_backend: str = "auto") -> NetworkPlan:
    ports, pairs = _ports(spec)
    veths = tuple(
        VethPlan(
            i,
            a,
            b,
            link.mtu,
            link_name(link),
            _egress(link, link.ends[1]),
            _egress(link, link.ends[0]),
        )
        for i, (link, (a, b)) in enumerate(zip(spec.links, pairs))
    )
    routing = _Routing(spec, ports)
    nodes = {}
    for name, node in spec.nodes.items():
        nat = None
        if node.nat is not None:
            outside = next(p for p in ports[name] if _other_end(spec, p.link_index, name) == node.nat.outside)
            nat = NatPlan(
                outside.ifname,
                node.nat.udp_timeout,
                node.nat.type,
                node.nat.hairpin,
                outside.addresses,
                tuple(p.ifname for p in ports[name] if p is not outside),
            )
        firewall = tuple(
            FirewallPlan(
                rule.drop,
                rule.allow,
                rule.port,
                next((p.ifname for p in ports[name] if _other_end(spec, p.link_index, name) == rule.from_), None)
                if rule.from_
                else None,
            )
            for rule in node.firewall
        )
        nodes[name] = NodePlan(
            name=name,
            namespace=naming.namespace_name(run_id, name),
            forwards=node.forwards,
            sysctls={k: str(v) for k, v in node.sysctls.items()},
            routes=tuple(routing.routes_for(name)),
            nat=nat,
            firewall=firewall,
        )
    problems = _overlapping_subnets(spec, ports)
    plan = NetworkPlan(run_id, nodes, veths, {}, ports, spec)
    plan.wireguard.update(_wireguard(spec, plan, run_id, default_backend, problems))
    if problems:
        raise PlanErrors(problems)
    return plan


def link_name(link: LinkSpec) -> str:
    return link.name or f"{link.ends[0]}-{link.ends[1]}"


def _egress(link: LinkSpec, towards: str) -> Impairment | None:
    """Conditions for traffic going to `towards`: the link's, with `towards:` on top."""
    conditions = link.overridden(link.towards.get(towards))
    return None if conditions.empty else conditions


def _overlapping_subnets(spec: ScenarioSpec, ports: dict[str, tuple[Port, ...]]) -> list[PlanError]:
    """Two links in one subnet cannot be routed (and netlink would refuse the routes)."""
    seen: dict[Network, int] = {}
    problems = []
    for index in range(len(spec.links)):
        for network, _ in _link_networks(ports, index):
            clash = next((i for net, i in seen.items() if net.version == network.version and net.overlaps(network)), None)
            if clash is not None:
                problems.append(PlanError(("links", index, "addresses"), f"{network} overlaps links[{clash}]'s subnet: each link needs its own"))
            seen.setdefault(network, index)
    return problems


# --- underlay ---------------------------------------------------------------------


def _ports(spec: ScenarioSpec) -> tuple[dict[str, tuple[Port, ...]], list[tuple[Port, Port]]]:
    """Each node's underlay interfaces, and each link's two ends in the order of `ends`."""
    by_node: dict[str, list[Port]] = {name: [] for name in spec.nodes}
    pairs: list[tuple[Port, Port]] = []
    for index, link in enumerate(spec.links):
        addresses: list[list[Interface]] = [[], []]
        if link.addresses is not None:
            addresses[0].append(link.addresses[0])
            addresses[1].append(link.addresses[1])
        else:
            a, b = addressing.underlay_pair(index)
            addresses[0].append(a)
            addresses[1].append(b)
        if link.ipv6 and not any(a.version == 6 for a in addresses[0]):
            a6, b6 = addressing.underlay_pair_v6(index)
            addresses[0].append(a6)
            addresses[1].append(b6)
        pair = []
        for end, node in enumerate(link.ends):
            port = Port(node, naming.veth_name(len(by_node[node])), tuple(addresses[end]), index)
            by_node[node].append(port)
            pair.append(port)
        pairs.append((pair[0], pair[1]))
    return {name: tuple(ports) for name, ports in by_node.items()}, pairs


def _other_end(spec: ScenarioSpec, link_index: int, node: str) -> str:
    a, b = spec.links[link_index].ends
    return b if a == node else a


class _Routing:
    """Shortest-path routes over the underlay.

    Only forwarding nodes (routers, NATs) carry transit traffic. A NAT hides its
    inside: nothing that arrives from its outside neighbour is routed inward, just as
    the public side of a real NAT has no route to private addresses.
    """

    def __init__(self, spec: ScenarioSpec, ports: dict[str, tuple[Port, ...]], excluded: set[int] = frozenset()):
        self.spec = spec
        self.ports = ports
        self.excluded = excluded

    def _can_forward(self, node: str, came_from: str | None, going_to: str) -> bool:
        spec = self.spec.nodes[node]
        if not spec.forwards:
            return False
        if spec.nat is not None and came_from == spec.nat.outside and going_to != spec.nat.outside:
            return False
        return True

    def _has_family(self, link_index: int, family: int) -> bool:
        return all(
            any(a.version == family for a in port.addresses)
            for node_ports in self.ports.values()
            for port in node_ports
            if port.link_index == link_index
        )

    def search(self, source: str, family: int) -> dict[str, tuple[int, Port | None, str | None]]:
        """BFS over links that carry `family`: node → (distance, first port used, previous node)."""
        found: dict[str, tuple[int, Port | None, str | None]] = {source: (0, None, None)}
        queue = deque([source])
        while queue:
            node = queue.popleft()
            distance, first, previous = found[node]
            for port in self.ports[node]:
                if port.link_index in self.excluded or not self._has_family(port.link_index, family):
                    continue
                neighbour = _other_end(self.spec, port.link_index, node)
                if neighbour in found:
                    continue
                if node != source and not self._can_forward(node, previous, neighbour):
                    continue
                found[neighbour] = (distance + 1, first or port, node)
                queue.append(neighbour)
        return found

    def routes_for(self, source: str, *, collapse: bool = True) -> list[RoutePlan]:
        """Routes per subnet; a node with a `gateway` gets one default route per family
        through it instead (collapse=False gives the per-subnet view for reachability)."""
        routes = self._subnet_routes(source)
        gateway = self.spec.nodes[source].gateway
        if not collapse or gateway is None:
            return routes
        port = next((p for p in self.ports[source] if _other_end(self.spec, p.link_index, source) == gateway), None)
        if port is None or port.link_index in self.excluded:
            return routes  # the gateway's link is down (roaming): what else is reachable stays routed
        defaults = []
        for family, default in ((4, "0.0.0.0/0"), (6, "::/0")):
            if self._has_family(port.link_index, family):
                defaults.append(self._route(ip_network(default), port))
        return defaults

    def _subnet_routes(self, source: str) -> list[RoutePlan]:
        attached = {p.link_index for p in self.ports[source]}
        routes = []
        for family in (4, 6):
            reach = self.search(source, family)
            for index, link in enumerate(self.spec.links):
                if index in attached or index in self.excluded or not self._has_family(index, family):
                    continue
                best: tuple[int, Port] | None = None
                for end in link.ends:
                    if end not in reach:
                        continue
                    distance, first, previous = reach[end]
                    if not self._can_forward(end, previous, _other_end(self.spec, index, end)):
                        continue
                    if best is None or distance < best[0]:
                        best = (distance, first)
                has_forwarder = any(self.spec.nodes[end].forwards for end in link.ends)
                for network, members in _link_networks(self.ports, index):
                    if network.version != family:
                        continue
                    if best is not None:
                        routes.append(self._route(network, best[1]))
                    elif not has_forwarder:
                        # no forwarder on that link: host routes to the ends we can reach
                        for end, address in members:
                            if end in reach and end != source:
                                host = ip_network(f"{address.ip}/{address.max_prefixlen}")
                                routes.append(self._route(host, reach[end][1]))
        return routes

    def _route(self, network: Network, first: Port) -> RoutePlan:
        neighbour = _other_end(self.spec, first.link_index, first.node)
        gateway = next(
            (a.ip for p in self.ports[neighbour] if p.link_index == first.link_index for a in p.addresses if a.version == network.version),
            None,
        )
        return RoutePlan(network, gateway, first.ifname)


def _link_networks(ports: dict[str, tuple[Port, ...]], link_index: int) -> list[tuple[Network, list[tuple[str, Interface]]]]:
    """The subnets of one link, each with its members (node, address)."""
    networks: dict[Network, list[tuple[str, Interface]]] = {}
    for node_ports in ports.values():
        for port in node_ports:
            if port.link_index == link_index:
                for address in port.addresses:
                    networks.setdefault(address.network, []).append((port.node, address))
    return list(networks.items())


def _reachable_address(plan: NetworkPlan, src: str, dst: str, family: int) -> Address | None:
    if src == dst:
        return None
    src_networks = {a.network for p in plan.ports[src] for a in p.addresses}
    routed = [r.destination for r in plan.nodes[src].routes]
    if any(net.prefixlen == 0 for net in routed):
        # a default route covers every address: judge by what its gateway really reaches
        routed = [r.destination for r in _Routing(plan.spec, plan.ports).routes_for(src, collapse=False)]
    for port in plan.ports[dst]:
        for address in port.addresses:
            if address.version != family:
                continue
            if address.network in src_networks or any(address.ip in net for net in routed):
                return address.ip
    return None


# --- WireGuard ---------------------------------------------------------------------


def _wireguard(spec: ScenarioSpec, plan: NetworkPlan, run_id: str, default_backend: str, problems: list[PlanError]) -> dict[str, WgPlan]:
    numbers = {name: i + 1 for i, name in enumerate(spec.wireguard)}
    addresses = _tunnel_addresses(spec, numbers, problems)
    # peering is symmetric: a peer listed on one side only is added to the other
    peer_specs: dict[str, dict[str, object]] = {name: dict(wg.peers) for name, wg in spec.wireguard.items()}
    for name, wg in spec.wireguard.items():
        for other in wg.peers:
            peer_specs[other].setdefault(name, None)

    result = {}
    for name, wg in spec.wireguard.items():
        peers = []
        for other, peer in peer_specs[name].items():
            path = ("wireguard", name, "peers", other)
            try:
                allowed = _allowed_ips(getattr(peer, "allowed_ips", None), addresses, other, path)
            except PlanError as exc:
                problems.append(exc)
                allowed = ()
            try:
                endpoint = resolve_endpoint(getattr(peer, "endpoint", None), plan, spec, name, path + ("endpoint",))
            except PlanError as exc:
                problems.append(exc)
                endpoint = None
            keepalive = getattr(peer, "persistent_keepalive", 0)
            peers.append(PeerPlan(other, allowed, endpoint, keepalive))
        own = {a.network for a in addresses[name]}
        routes = tuple(dict.fromkeys(net for p in peers for net in p.allowed_ips if net not in own))
        result[name] = WgPlan(
            node=name,
            ifname=naming.wg_ifname(run_id, numbers[name]),
            backend=wg.backend or default_backend,
            listen_port=wg.listen_port,
            addresses=addresses[name],
            mtu=wg.mtu,
            peers=tuple(peers),
            routes=routes,
            socket_in=wg.socket_in,
            table=wg.table,
        )
    return result


def _tunnel_addresses(spec: ScenarioSpec, numbers: dict[str, int], problems: list[PlanError]) -> dict[str, tuple[Interface, ...]]:
    """Given addresses as written; the others allocated, skipping any address in use."""
    taken: dict[str, str] = {}
    for name, wg in spec.wireguard.items():
        for i, address in enumerate(wg.address or ()):
            owner = taken.setdefault(str(address.ip), name)
            if owner != name:
                problems.append(PlanError(("wireguard", name, "address", i), f"{address.ip} is also the tunnel address of '{owner}'"))
    result: dict[str, tuple[Interface, ...]] = {}
    number = 0
    for name, wg in spec.wireguard.items():
        if wg.address:
            result[name] = tuple(wg.address)
            continue
        while True:
            number += 1
            candidates = addressing.tunnel_addresses(number)
            if not any(str(a.ip) in taken for a in candidates):
                break
        result[name] = tuple(candidates)
        for address in candidates:
            taken[str(address.ip)] = name
    return result


def _allowed_ips(tokens: list[str] | None, addresses: dict[str, tuple[Interface, ...]], peer: str, path: tuple) -> tuple[Network, ...]:
    if tokens is None:
        return tuple(ip_network(f"{a.ip}/{a.max_prefixlen}") for a in addresses[peer])
    out: list[Network] = []
    for i, token in enumerate(tokens):
        if token in addresses:
            out += [ip_network(f"{a.ip}/{a.max_prefixlen}") for a in addresses[token]]
            continue
        try:
            out.append(ip_network(token, strict=False))
        except ValueError:
            raise PlanError(path + ("allowed_ips", i), f"{token!r} is neither a CIDR nor a WireGuard node") from None
    return tuple(dict.fromkeys(out))


def resolve_endpoint(text: str | None, plan: NetworkPlan, spec: ScenarioSpec, node: str, path: tuple) -> Endpoint | None:
    if text is None:
        return None
    host, port_text = _split_host_port(text)
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise PlanError(path, f"bad port in {text!r}")
        port = int(port_text)
    if host in spec.nodes:
        if host == node:
            raise PlanError(path, "a node cannot be its own endpoint")
        # WireGuard talks from the namespace that holds its socket (socket_in), to the peer's
        src, dst = _socket_node(spec, node), _socket_node(spec, host)
        if src == dst:  # both sockets in one namespace: over its loopback, as in netns.sh
            address = ip_address("127.0.0.1")
        else:
            address = plan.underlay_address(src, dst, 4) or plan.underlay_address(src, dst, 6)
        if address is None:
            where = f" (sockets in '{src}' and '{dst}')" if (src, dst) != (node, host) else ""
            raise PlanError(path, f"node '{host}' is not reachable from '{node}' on the underlay{where} (no route, or it is behind a NAT)")
        if port is None:
            peer_wg = spec.wireguard.get(host)
            port = peer_wg.listen_port if peer_wg else 51820
        return Endpoint(address, port, host)
    if is_dns_name(host):
        return dns_endpoint(host, port, plan, spec, node, path)
    try:
        address = ip_address(host)
    except ValueError:
        raise PlanError(path, f"{text!r} is neither a node name, 'node:port', 'address:port' nor 'dns.name:port'") from None
    if port is None:
        raise PlanError(path, f"an address endpoint needs a port: '{text}:51820'")
    return Endpoint(address, port, None)


def _socket_node(spec: ScenarioSpec, node: str) -> str:
    wg = spec.wireguard.get(node)
    return wg.socket_in if wg is not None and wg.socket_in else node


def _split_host_port(text: str) -> tuple[str, str | None]:
    if text.startswith("["):  # [2001:2::1]:51820
        host, _, rest = text[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return text, None
