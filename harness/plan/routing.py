"""Shortest-path routes over the underlay, from the plan's own topology (pure).

Only forwarding nodes (routers, NATs) carry transit traffic. A NAT hides its inside:
nothing that arrives from its outside neighbour is routed inward, just as the public
side of a real NAT has no route to private addresses.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface, ip_network
from typing import Iterable, Iterator, Mapping, Sequence, Union

Interface = Union[IPv4Interface, IPv6Interface]
Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclass(frozen=True)
class Port:
    """One end of an underlay link, inside a node."""

    node: str
    ifname: str
    addresses: tuple[Interface, ...]
    link_index: int


@dataclass(frozen=True)
class RoutePlan:
    destination: Network
    gateway: Address | None
    dev: str


@dataclass(frozen=True)
class RoutingRole:
    """What routing needs to know of a node."""

    forwards: bool
    nat_outside: str | None = None  # the neighbour on a NAT's public side
    gateway: str | None = None  # the neighbour its default routes go through


class PrefixSet:
    """Networks asked "does one of you hold this address?" by a lookup per prefix length,
    not a scan: a node of a 300-member mesh has 300 routes, asked for every peer."""

    def __init__(self, networks: Iterable[Network]):
        self._starts: dict[tuple[int, int], set[int]] = {}
        for net in networks:
            self._starts.setdefault((net.version, net.prefixlen), set()).add(int(net.network_address))

    @property
    def has_default(self) -> bool:
        return any(prefixlen == 0 for _, prefixlen in self._starts)

    def covers(self, address: Address) -> bool:
        value, width = int(address), address.max_prefixlen
        for (version, prefixlen), starts in self._starts.items():
            if version == address.version and (value >> (width - prefixlen)) << (width - prefixlen) in starts:
                return True
        return False


class Routing:
    """Routes over `link_ends` (each link's two nodes, by link index), skipping the
    links in `excluded` (down, or left by a roaming node)."""

    def __init__(
        self,
        roles: Mapping[str, RoutingRole],
        link_ends: Sequence[tuple[str, str]],
        ports: Mapping[str, tuple[Port, ...]],
        excluded: frozenset[int] | set[int] = frozenset(),
    ):
        self.roles = roles
        self.link_ends = link_ends
        self.ports = ports
        self.excluded = excluded
        # indexes over the ports, made once: a search visits every link per source, and a
        # topology of hundreds of nodes made each lookup a scan of every port (N³ to plan)
        self._by_link = ports_by_link(ports)
        self._families = {
            index: set.intersection(*({a.version for a in port.addresses} for port in members))
            for index, members in self._by_link.items()
        }
        self._networks = {index: link_networks(members) for index, members in self._by_link.items()}
        self._adjacency: dict[int, dict[str, list[tuple[Port, str]]]] = {}
        self._searches: dict[tuple[str, int], dict[str, tuple[int, Port | None, str | None]]] = {}
        self._own_subnets: dict[str, PrefixSet] = {}
        self._routed: dict[str, tuple[Sequence[RoutePlan], PrefixSet]] = {}

    def own_subnets(self, node: str) -> PrefixSet:
        """The subnets of the node's own ports (made once)."""
        if node not in self._own_subnets:
            self._own_subnets[node] = PrefixSet(a.network for p in self.ports[node] for a in p.addresses)
        return self._own_subnets[node]

    def routed(self, node: str, routes: Sequence[RoutePlan]) -> PrefixSet:
        """The destinations of `routes` (the node's planned routes), made once per list."""
        cached = self._routed.get(node)
        if cached is None or cached[0] is not routes:
            cached = self._routed[node] = (routes, PrefixSet(r.destination for r in routes))
        return cached[1]

    def other_end(self, link_index: int, node: str) -> str:
        a, b = self.link_ends[link_index]
        return b if a == node else a

    def _can_forward(self, node: str, came_from: str | None, going_to: str) -> bool:
        role = self.roles[node]
        if not role.forwards:
            return False
        if role.nat_outside is not None and came_from == role.nat_outside and going_to != role.nat_outside:
            return False
        return True

    def _has_family(self, link_index: int, family: int) -> bool:
        """Every end of the link has an address of `family` (a link without ends: vacuously)."""
        families = self._families.get(link_index)
        return families is None or family in families

    def networks(self, link_index: int) -> list[tuple[Network, list[tuple[str, Interface]]]]:
        """The link's subnets, each with its members (node, address)."""
        return self._networks.get(link_index, [])

    def _adjacent(self, family: int) -> dict[str, list[tuple[Port, str]]]:
        """node → (port, neighbour) over the links that carry `family` (made once)."""
        if family not in self._adjacency:
            self._adjacency[family] = {
                node: [
                    (port, self.other_end(port.link_index, node))
                    for port in node_ports
                    if port.link_index not in self.excluded and self._has_family(port.link_index, family)
                ]
                for node, node_ports in self.ports.items()
            }
        return self._adjacency[family]

    def search(self, source: str, family: int) -> dict[str, tuple[int, Port | None, str | None]]:
        """BFS over links that carry `family`: node → (distance, first port used, previous
        node); made once per source and family."""
        if (source, family) in self._searches:
            return self._searches[(source, family)]
        adjacent = self._adjacent(family)
        through = self._only_way_out(source, adjacent[source])
        if through is not None:
            # a host on one link to a plain router sees the world as that router does, one
            # hop further: its search is the router's, seen through its port, not a BFS of
            # its own (a thousand spokes of a hub: one search, not a thousand)
            port, gateway = through
            shifted = _SeenThrough(self.search(gateway, family), source, port, gateway)
            self._searches[(source, family)] = shifted  # type: ignore[assignment]
            return shifted  # type: ignore[return-value]
        found: dict[str, tuple[int, Port | None, str | None]] = {source: (0, None, None)}
        queue = deque([source])
        while queue:
            node = queue.popleft()
            if node != source and not self.roles[node].forwards:
                continue  # a host carries no transit traffic
            distance, first, previous = found[node]
            nat = node != source and self.roles[node].nat_outside is not None
            for port, neighbour in adjacent[node]:
                if neighbour in found:
                    continue
                if nat and not self._can_forward(node, previous, neighbour):
                    continue
                found[neighbour] = (distance + 1, first or port, node)
                queue.append(neighbour)
        self._searches[(source, family)] = found
        return found

    def _only_way_out(self, source: str, ports: list[tuple[Port, str]]) -> tuple[Port, str] | None:
        """(port, neighbour) if `source` is a host with one link, to a router that is not a
        NAT (a NAT's view depends on which side one comes from)."""
        if self.roles[source].forwards or len(ports) != 1:
            return None
        port, neighbour = ports[0]
        role = self.roles[neighbour]
        return (port, neighbour) if role.forwards and role.nat_outside is None else None

    def routes_for(self, source: str, *, collapse: bool = True) -> list[RoutePlan]:
        """Routes per subnet; a node with a `gateway` gets one default route per family
        through it instead (collapse=False gives the per-subnet view for reachability)."""
        gateway = self.roles[source].gateway
        if not collapse or gateway is None:
            return self._subnet_routes(source)
        port = next((p for p in self.ports[source] if self.other_end(p.link_index, source) == gateway), None)
        if port is None or port.link_index in self.excluded:
            # the gateway's link is down (roaming): what else is reachable stays routed
            return self._subnet_routes(source)
        defaults = []
        for family, default in ((4, "0.0.0.0/0"), (6, "::/0")):
            if self._has_family(port.link_index, family):
                defaults.append(self._route(ip_network(default), port))
        return defaults

    def _subnet_routes(self, source: str, links: Sequence[int] | None = None) -> list[RoutePlan]:
        """The routes per subnet of every link (or of `links` only) not attached to `source`."""
        attached = {p.link_index for p in self.ports[source]}
        routes = []
        for family in (4, 6):
            reach = self.search(source, family)
            for index in range(len(self.link_ends)) if links is None else links:
                if index in attached or index in self.excluded or not self._has_family(index, family):
                    continue
                ends = self.link_ends[index]
                best: tuple[int, Port] | None = None
                for end in ends:
                    if end not in reach:
                        continue
                    distance, first, previous = reach[end]
                    if not self._can_forward(end, previous, self.other_end(index, end)):
                        continue
                    if best is None or distance < best[0]:
                        best = (distance, first)
                has_forwarder = any(self.roles[end].forwards for end in ends)
                for network, members in self.networks(index):
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

    def routes_towards_link(self, source: str, link_index: int) -> list[RoutePlan]:
        """The per-subnet routes of `source` to one link only (what a default route's
        gateway would carry there): one link's worth, not the whole table."""
        return self._subnet_routes(source, [link_index])

    def _route(self, network: Network, first: Port) -> RoutePlan:
        neighbour = self.other_end(first.link_index, first.node)
        gateway = next(
            (a.ip for p in self._by_link.get(first.link_index, ()) if p.node == neighbour for a in p.addresses if a.version == network.version),
            None,
        )
        return RoutePlan(network, gateway, first.ifname)


class _SeenThrough(Mapping[str, tuple[int, "Port | None", "str | None"]]):
    """A host's search made from its gateway's: every node one hop further, reached
    through the host's one port; the host itself at 0. A view, not a copy: a thousand
    spokes do not hold a thousand copies of the hub's table."""

    def __init__(self, gateway_search: Mapping[str, tuple[int, Port | None, str | None]], source: str, port: Port, gateway: str):
        self._base = gateway_search
        self._source = source
        self._port = port
        self._gateway = gateway

    def __getitem__(self, node: str) -> tuple[int, Port | None, str | None]:
        if node == self._source:
            return (0, None, None)
        distance, _, previous = self._base[node]
        return (distance + 1, self._port, previous if previous is not None else self._source)

    def __contains__(self, node: object) -> bool:
        return node == self._source or node in self._base

    def __iter__(self) -> Iterator[str]:
        yield self._source
        yield from (node for node in self._base if node != self._source)

    def __len__(self) -> int:
        return len(self._base) + (0 if self._source in self._base else 1)


def ports_by_link(ports: Mapping[str, tuple[Port, ...]]) -> dict[int, list[Port]]:
    """Every link's ports (its ends), by link index."""
    found: dict[int, list[Port]] = {}
    for node_ports in ports.values():
        for port in node_ports:
            found.setdefault(port.link_index, []).append(port)
    return found


def link_networks(link_ports: Sequence[Port]) -> list[tuple[Network, list[tuple[str, Interface]]]]:
    """The subnets of one link (given its ports), each with its members (node, address)."""
    networks: dict[Network, list[tuple[str, Interface]]] = {}
    for port in link_ports:
        for address in port.addresses:
            networks.setdefault(address.network, []).append((port.node, address))
    return list(networks.items())


def reachable_address(routing: Routing, routes: Sequence[RoutePlan], src: str, dst: str, family: int) -> Address | None:
    """The address of `dst` that `src` reaches with `routes` (its planned routes), or None:
    the first of dst's addresses, in the order of its ports, that is on one of src's
    subnets or inside a route."""
    if src == dst:
        return None
    own = routing.own_subnets(src)
    planned = routing.routed(src, routes)
    default = planned.has_default
    for port in routing.ports[dst]:
        candidates = [a.ip for a in port.addresses if a.version == family]
        if not candidates:
            continue
        # a default route covers every address: judge by what its gateway really reaches
        # there (the routes to this one link: a hub's thousand links are not all asked)
        routed = PrefixSet(r.destination for r in routing.routes_towards_link(src, port.link_index)) if default else planned
        for address in candidates:
            if own.covers(address) or routed.covers(address):
                return address
    return None
