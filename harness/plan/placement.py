"""Which host each node of a plan runs on, when a topology spans several machines (pure).

What must share a host: a WireGuard device with the node whose namespace holds its
socket (`socket_in`: the interface is moved from one to the other). What should,
where the hosts' balance allows: a NAT router and the nodes behind it, a WireGuard
peer pair, the two ends of a link, a LAN's members with its first (each link between
hosts becomes a tunnel between them, and so does each LAN member's port on another
host than the LAN's bridge, which is on its first member's host).

Nodes placed by hand (`fixed`) stay where they are put. Then each host in turn grows
a region up to an even share of the nodes (rounded up): next comes the unplaced
group most tied to what is already there (a hub's spokes after the hub, a NAT's
inside after the NAT), else a new seed, the most tied group left. The result is the
same for the same plan and hosts.
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from harness.errors import HarnessError
from harness.plan.network import NetworkPlan
from harness.plan.types import LanPlan

# how strongly a tie wants its two nodes on one host
LINK_WEIGHT = 1  # an underlay link (across hosts: a VXLAN tunnel)
PEER_WEIGHT = 2  # a WireGuard peer pair (across hosts: its handshakes cross the physical network)
NAT_WEIGHT = 3  # a NAT router and a node on its inside


class PlacementError(HarnessError):
    """The hosts cannot take the plan as placed by hand (the message says why)."""


@dataclass(frozen=True)
class Placement:
    hosts: tuple[str, ...]
    host_of: Mapping[str, str] = field(default_factory=dict)  # node → host

    def nodes_on(self, host: str) -> list[str]:
        return [node for node, where in self.host_of.items() if where == host]

    def crossing(self, plan: NetworkPlan) -> list[int]:
        """The indexes of the links whose two ends are on different hosts."""
        return [veth.index for veth in plan.veths if self.host_of[veth.a.node] != self.host_of[veth.b.node]]

    def lan_home(self, lan: LanPlan) -> str:
        """The host of a LAN's bridge: its first member's."""
        return self.host_of[lan.members[0].node]

    def crossing_lan_ports(self, plan: NetworkPlan) -> list[tuple[int, int]]:
        """(LAN index, member position) of the LAN members on another host than their
        LAN's bridge: each port is a tunnel between the two."""
        return [(lan.index, k) for lan in plan.lans for k, port in enumerate(lan.members) if self.host_of[port.node] != self.lan_home(lan)]

    def describe(self) -> list[str]:
        """One line per host: 'alpha: hub, peer1…peer333 (334 nodes)'."""
        return [f"{host}: {_ranges(self.nodes_on(host))} ({_count(len(self.nodes_on(host)))})" if self.nodes_on(host) else f"{host}: no nodes" for host in self.hosts]


def place(plan: NetworkPlan, hosts: Sequence[str], fixed: Mapping[str, str] | None = None) -> Placement:
    """A host for every node of `plan`; `fixed` places some by hand."""
    if not hosts:
        raise PlacementError("no hosts to place the nodes on")
    fixed = dict(fixed or {})
    for node, host in fixed.items():
        if node not in plan.nodes:
            raise PlacementError(f"placement names a node the topology does not have: {node}")
        if host not in hosts:
            raise PlacementError(f"{node} is placed on {host}, which is not among the hosts ({', '.join(hosts)})")
    units = _units(plan)
    ties = _ties(plan)
    unit_of = {node: i for i, unit in enumerate(units) for node in unit}
    order = {node: i for i, node in enumerate(plan.nodes)}
    capacity = math.ceil(len(plan.nodes) / len(hosts))
    load = {host: 0 for host in hosts}
    host_of: dict[str, str] = {}
    unplaced: set[int] = set()

    def put(index: int, host: str) -> None:
        for node in units[index]:
            host_of[node] = host
        load[host] += len(units[index])
        unplaced.discard(index)

    for index, unit in enumerate(units):
        wanted = {fixed[node] for node in unit if node in fixed}
        if len(wanted) > 1:
            by_host = ", ".join(f"{n} on {fixed[n]}" for n in unit if n in fixed)
            raise PlacementError(f"{', '.join(unit)} must share a host (a device and its socket_in), but are placed apart: {by_host}")
        if wanted:
            put(index, wanted.pop())
        else:
            unplaced.add(index)

    def first(index: int) -> int:
        return min(order[n] for n in units[index])

    def degree(index: int) -> int:
        return sum(len(ties.get(n, ())) for n in units[index])

    # new seeds, most tied first (a group's ties do not change as others are placed)
    seeds = sorted(unplaced, key=lambda i: (-degree(i), first(i)))

    # each host in turn grows a region: the unplaced group most tied to what is
    # already there next (a hub's spokes after the hub), else a new seed (the most
    # tied group left), until the host has its share
    for host in hosts:
        affinity: dict[int, int] = {}
        heap: list[tuple[int, int, int]] = []
        next_seed = 0  # seeds before it are placed or too large for this host: each is passed once per host

        def attract(node: str) -> None:
            for other, weight in ties.get(node, {}).items():
                index = unit_of[other]
                if index in unplaced:
                    affinity[index] = affinity.get(index, 0) + weight
                    heapq.heappush(heap, (-affinity[index], first(index), index))

        for node, where in list(host_of.items()):
            if where == host:
                attract(node)
        skipped: set[int] = set()  # too large for what room is left here
        while unplaced and load[host] < capacity:
            chosen = None
            while heap:
                score, _, index = heapq.heappop(heap)
                if index in unplaced and -score == affinity.get(index) and index not in skipped:
                    chosen = index
                    break
            if chosen is None:  # nothing tied to this host is left: a new seed
                while next_seed < len(seeds) and (seeds[next_seed] not in unplaced or seeds[next_seed] in skipped):
                    next_seed += 1
                if next_seed == len(seeds):
                    break
                chosen = seeds[next_seed]
            if load[host] + len(units[chosen]) > capacity and load[host] > 0:
                skipped.add(chosen)
                continue
            put(chosen, host)
            for node in units[chosen]:
                attract(node)
    for index in sorted(unplaced, key=first):  # groups larger than any host's room
        put(index, min(hosts, key=lambda h: (load[h], hosts.index(h))))
    return Placement(tuple(hosts), {node: host_of[node] for node in plan.nodes})


def _units(plan: NetworkPlan) -> list[list[str]]:
    """The groups of nodes that must share a host (a device and its socket_in node),
    in the file's order (union-find)."""
    parent = {node: node for node in plan.nodes}

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def join(a: str, b: str) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[rb] = ra

    for wg in plan.wireguard.values():
        if wg.socket_node != wg.node:
            join(wg.node, wg.socket_node)
    groups: dict[str, list[str]] = {}
    for node in plan.nodes:
        groups.setdefault(root(node), []).append(node)
    return list(groups.values())


def _ties(plan: NetworkPlan) -> dict[str, dict[str, int]]:
    """node → {node it is tied to: weight}, both ways."""
    ties: dict[str, dict[str, int]] = {}

    def tie(a: str, b: str, weight: int) -> None:
        if a != b:
            ties.setdefault(a, {})[b] = ties.get(a, {}).get(b, 0) + weight
            ties.setdefault(b, {})[a] = ties.get(b, {}).get(a, 0) + weight

    for veth in plan.veths:
        tie(veth.a.node, veth.b.node, LINK_WEIGHT)
        for router, other in ((veth.a, veth.b), (veth.b, veth.a)):
            nat = plan.nodes[router.node].nat
            if nat is not None and router.ifname in nat.inside_devs:
                tie(router.node, other.node, NAT_WEIGHT)
    for lan in plan.lans:  # a member away from the bridge's host is a tunnel to it
        for port in lan.members[1:]:
            tie(lan.members[0].node, port.node, LINK_WEIGHT)
    for wg in plan.wireguard.values():
        for peer in wg.peers:
            tie(wg.node, peer.node, PEER_WEIGHT)
    return ties


def _ranges(nodes: list[str]) -> str:
    """'hub, peer1…peer333': runs of one prefix with consecutive numbers shortened."""
    parts: list[str] = []
    run: list[tuple[str, int, str]] = []

    def flush() -> None:
        if len(run) > 2:
            parts.append(f"{run[0][2]}…{run[-1][2]}")
        else:
            parts.extend(name for _, _, name in run)
        run.clear()

    for name in nodes:
        match = re.fullmatch(r"(.*?)(\d+)", name)
        if match and run and run[-1][0] == match.group(1) and run[-1][1] + 1 == int(match.group(2)):
            run.append((match.group(1), int(match.group(2)), name))
            continue
        flush()
        if match:
            run.append((match.group(1), int(match.group(2)), name))
        else:
            parts.append(name)
    flush()
    return ", ".join(parts)


def _count(nodes: int) -> str:
    return f"{nodes} node" if nodes == 1 else f"{nodes} nodes"
