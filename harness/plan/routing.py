"""Shortest-path routes over the underlay, from the plan's own topology (pure).

A link has two ends (a veth pair) or more (a LAN: one segment, one subnet, every
member the others' neighbour). Only forwarding nodes (routers, NATs) carry transit traffic. A NAT hides its inside:
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


_NOTHING = PrefixSet(())

# what a search knows of a node: its distance, the source's port towards it, the
# neighbour that port reaches first (on a LAN the port alone does not say which), and
# the node before it on the path
Reached = tuple[int, "Port | None", "str | None", "str | None"]


class Routing:
    """Routes over `link_ends` (each link's two nodes, by link index), skipping the
    links in `excluded` (down, or left by a roaming node)."""

    def __init__(
        self,
        roles: Mapping[str, RoutingRole],
        link_ends: Sequence[tuple[str, ...]],
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
        self._adjacency: dict[int, dict[str, list[Port]]] = {}
        self._searches: dict[tuple[str, int], Mapping[str, Reached]] = {}
        self._nat_on_link: dict[int, bool] = {}
        self._own_subnets: dict[str, PrefixSet] = {}
        self._routed: dict[str, tuple[Sequence[RoutePlan], PrefixSet]] = {}
        self._outside: dict[str, frozenset[str]] = {}
        self._towards_link: dict[tuple, PrefixSet] = {}
        self._views: dict[str, tuple] = {}
        self._addresses: dict[tuple[str, int], list[tuple[int, list[Address]]]] = {}

    def addresses_by_port(self, node: str, family: int) -> list[tuple[int, list[Address]]]:
        """(link index, the addresses of `family` there) for each of the node's ports that
        has one, in port order (made once: a mesh asks it of every node N-1 times)."""
        key = (node, family)
        if key not in self._addresses:
            found = [(p.link_index, [a.ip for a in p.addresses if a.version == family]) for p in self.ports[node]]
            self._addresses[key] = [(index, addresses) for index, addresses in found if addresses]
        return self._addresses[key]

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

    def other_end(self, link_index: int, node: str) -> str | None:
        """The node at the other end of a two-ended link (None on a LAN: there are many)."""
        ends = self.link_ends[link_index]
        if len(ends) != 2:
            return None
        a, b = ends
        return b if a == node else a

    def _on_link(self, link_index: int, node: str) -> bool:
        return node in self.link_ends[link_index]

    def _can_forward(self, node: str, came_from: str | None, going_to: str | None) -> bool:
        role = self.roles[node]
        if not role.forwards:
            return False
        if role.nat_outside is not None:
            outside = self._outside_side(node)
            if came_from in outside and going_to not in outside:
                return False
        return True

    def _outside_side(self, nat: str) -> frozenset[str]:
        """The nodes on a NAT's public side: those on the link it shares with its outside
        neighbour (on a LAN every member is; on a veth pair, that neighbour)."""
        if nat not in self._outside:
            outside = self.roles[nat].nat_outside
            ends = next((self.link_ends[p.link_index] for p in self.ports[nat] if outside in self.link_ends[p.link_index]), (outside,))
            self._outside[nat] = frozenset(end for end in ends if end != nat)
        return self._outside[nat]

    def _has_family(self, link_index: int, family: int) -> bool:
        """Every end of the link has an address of `family` (a link without ends: vacuously)."""
        families = self._families.get(link_index)
        return families is None or family in families

    def networks(self, link_index: int) -> list[tuple[Network, list[tuple[str, Interface]]]]:
        """The link's subnets, each with its members (node, address)."""
        return self._networks.get(link_index, [])

    def _adjacent(self, family: int) -> dict[str, list[Port]]:
        """node → its ports on the links that carry `family` (made once). Neighbours are
        found from the link's ends when a search uses it: a LAN of M members would make
        M² pairs."""
        if family not in self._adjacency:
            self._adjacency[family] = {
                node: [port for port in node_ports if port.link_index not in self.excluded and self._has_family(port.link_index, family)]
                for node, node_ports in self.ports.items()
            }
        return self._adjacency[family]

    def search(self, source: str, family: int) -> Mapping[str, Reached]:
        """BFS over links that carry `family`: node → (distance, first port used, first
        neighbour, previous node); made once per source and family."""
        if (source, family) in self._searches:
            return self._searches[(source, family)]
        adjacent = self._adjacent(family)
        through = self._only_way_out(source, adjacent[source])
        if through is not None:
            # a host on one link to a plain router sees the world as that router does, one
            # hop further: its search is the router's, seen through its port, not a BFS of
            # its own (a thousand spokes of a hub: one search, not a thousand)
            port, gateway = through
            shifted = _SeenThrough(self.search(gateway, family), source, port, gateway, 1)
            self._searches[(source, family)] = shifted
            return shifted
        lan = self._only_lan(source, adjacent[source])
        if lan is not None:
            # a host on one LAN sees what the LAN sees: its members next door, the rest
            # through their routers; one search per LAN, not one per member (M² on a LAN of M)
            shared = _SeenThrough(self._lan_search(lan, family), source, adjacent[source][0], None, 0)
            self._searches[(source, family)] = shared
            return shared
        found = self._bfs({source: (0, None, None, None)}, deque([source]), source, family)
        self._searches[(source, family)] = found
        return found

    def _lan_search(self, link_index: int, family: int) -> Mapping[str, Reached]:
        """A search from the LAN itself: its members at 1 (each its own first
        neighbour), the rest through the routers among them; made once."""
        key = (f"lan {link_index}", family)
        if key not in self._searches:
            members = self.link_ends[link_index]
            found: dict[str, Reached] = {m: (1, None, m, None) for m in members}
            self._searches[key] = self._bfs(found, deque(members), None, family, crossed={link_index})
        return self._searches[key]

    def _bfs(self, found: dict[str, Reached], queue: deque, source: str | None, family: int, crossed: set[int] | None = None) -> dict[str, Reached]:
        adjacent = self._adjacent(family)
        lans_crossed: set[int] = crossed or set()  # a LAN's members are all reached the first time it is
        while queue:
            node = queue.popleft()
            if node != source and not self.roles[node].forwards:
                continue  # a host carries no transit traffic
            distance, first, hop, previous = found[node]
            nat = node != source and self.roles[node].nat_outside is not None
            for port in adjacent[node]:
                ends = self.link_ends[port.link_index]
                if len(ends) > 2:
                    if port.link_index in lans_crossed:
                        continue
                    lans_crossed.add(port.link_index)
                for neighbour in ends:
                    if neighbour == node or neighbour in found:
                        continue
                    if nat and not self._can_forward(node, previous, neighbour):
                        continue
                    found[neighbour] = (distance + 1, first or port, hop or neighbour, node)
                    queue.append(neighbour)
        return found

    def _only_lan(self, source: str, ports: list[Port]) -> int | None:
        """The LAN if `source` is a host whose one link is a LAN without NATs on it (a
        NAT's view depends on which side one comes from)."""
        if self.roles[source].forwards or len(ports) != 1:
            return None
        index = ports[0].link_index
        if len(self.link_ends[index]) <= 2 or self._has_nat(index):
            return None
        return index

    def _has_nat(self, link_index: int) -> bool:
        """A NAT among the link's ends (once per link: a LAN of M is asked M times)."""
        if link_index not in self._nat_on_link:
            self._nat_on_link[link_index] = any(self.roles[m].nat_outside is not None for m in self.link_ends[link_index])
        return self._nat_on_link[link_index]

    def _only_way_out(self, source: str, ports: list[Port]) -> tuple[Port, str] | None:
        """(port, neighbour) if `source` is a host with one two-ended link, to a router that
        is not a NAT (a NAT's view depends on which side one comes from)."""
        if self.roles[source].forwards or len(ports) != 1:
            return None
        neighbour = self.other_end(ports[0].link_index, source)
        if neighbour is None:
            return None  # on a LAN: its members are its neighbours too
        role = self.roles[neighbour]
        return (ports[0], neighbour) if role.forwards and role.nat_outside is None else None

    def routes_for(self, source: str, *, collapse: bool = True) -> list[RoutePlan]:
        """Routes per subnet; a node with a `gateway` gets one default route per family
        through it instead (collapse=False gives the per-subnet view for reachability)."""
        gateway = self.roles[source].gateway
        if not collapse or gateway is None:
            return self._subnet_routes(source)
        port = next((p for p in self.ports[source] if self._on_link(p.link_index, gateway)), None)
        if port is None or port.link_index in self.excluded:
            # the gateway's link is down (roaming): what else is reachable stays routed
            return self._subnet_routes(source)
        defaults = []
        for family, default in ((4, "0.0.0.0/0"), (6, "::/0")):
            if self._has_family(port.link_index, family):
                defaults.append(self._route(ip_network(default), port, gateway))
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
                best: tuple[int, Port, str] | None = None
                for end in ends:
                    if end not in reach:
                        continue
                    distance, first, hop, previous = reach[end]
                    if not self._can_forward(end, previous, self.other_end(index, end)):
                        continue
                    if best is None or distance < best[0]:
                        best = (distance, first, hop)
                has_forwarder = any(self.roles[end].forwards for end in ends)
                for network, members in self.networks(index):
                    if network.version != family:
                        continue
                    if best is not None:
                        routes.append(self._route(network, best[1], best[2]))
                    elif not has_forwarder:
                        # no forwarder on that link: host routes to the ends we can reach
                        for end, address in members:
                            if end in reach and end != source:
                                host = ip_network(f"{address.ip}/{address.max_prefixlen}")
                                routes.append(self._route(host, reach[end][1], reach[end][2]))
        return routes

    def destinations_towards_link(self, source: str, link_index: int) -> PrefixSet:
        """The destinations of `source`'s per-subnet routes to one link (what a default
        route's gateway would carry there): one link's worth, not the whole table. Hosts
        that see the world through one shared search (spokes of one router, members of one
        LAN) have the same answer, made once: a mesh of 1 000 behind one router asks it
        999 000 times."""
        if any(port.link_index == link_index for port in self.ports[source]):
            return _NOTHING  # its own link: its own subnets cover it
        views = self._views.get(source)
        if views is None:
            views = self._views[source] = tuple(self._shared_view(source, family) for family in (4, 6))
        if None in views:
            return PrefixSet(r.destination for r in self._subnet_routes(source, [link_index]))
        key = (views, link_index)
        found = self._towards_link.get(key)
        if found is None:
            found = self._towards_link[key] = PrefixSet(r.destination for r in self._subnet_routes(source, [link_index]))
        return found

    def _shared_view(self, source: str, family: int) -> tuple[int, str | None] | tuple[()] | None:
        """What identifies a host's search when it is another's seen through its one port
        (whose routes then depend only on that search and the gateway), () when it reaches
        nothing in that family, else None."""
        search = self.search(source, family)
        if isinstance(search, _SeenThrough):
            return search.shared_key
        return () if len(search) == 1 else None

    def _route(self, network: Network, first: Port, neighbour: str) -> RoutePlan:
        """A route through `first` (a port of the source) to `neighbour` on its link."""
        gateway = next(
            (a.ip for p in self._by_link.get(first.link_index, ()) if p.node == neighbour for a in p.addresses if a.version == network.version),
            None,
        )
        return RoutePlan(network, gateway, first.ifname)


class _SeenThrough(Mapping[str, Reached]):
    """A host's search made from another: its gateway's (every node one hop further,
    first reached through the gateway) or its LAN's (the same distances, first reached
    through the member the LAN's search names); always through the host's one port, the
    host itself at 0. A view, not a copy: a thousand spokes do not hold a thousand copies
    of the hub's table."""

    def __init__(self, base: Mapping[str, Reached], source: str, port: Port, gateway: str | None, shift: int):
        self._base = base
        self._source = source
        self._port = port
        self._gateway = gateway
        self._shift = shift

    @property
    def shared_key(self) -> tuple[int, str | None]:
        """The search it shows and the gateway it goes through (its own port aside)."""
        return (id(self._base), self._gateway)

    def __getitem__(self, node: str) -> Reached:
        if node == self._source:
            return (0, None, None, None)
        distance, _, hop, previous = self._base[node]
        return (distance + self._shift, self._port, self._gateway or hop, previous if previous is not None else self._source)

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
    for link_index, candidates in routing.addresses_by_port(dst, family):
        # a default route covers every address: judge by what its gateway really reaches
        # there (the routes to this one link: a hub's thousand links are not all asked)
        routed = routing.destinations_towards_link(src, link_index) if default else planned
        for address in candidates:
            if own.covers(address) or routed.covers(address):
                return address
    return None
