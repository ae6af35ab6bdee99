"""The network plan: everything the builder will create, computed from the model.

Pure and deterministic except for the run id, which is an input: the plan holds no
keys (they are generated when the network is built) and performs no I/O.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_network
from typing import Mapping

from harness.backends import AUTO, USERSPACE, UserspaceCommand
from harness.dnsnames import is_dns_name
from harness.endpoint import split_host_port, valid_port
from harness.plan import addressing, naming
from harness.plan.conditions import conditions_of, egress
from harness.plan.dns import dns_endpoint
from harness.plan.routing import Interface, Network, Port, Routing, RoutingRole, link_networks, ports_by_link
from harness.plan.types import (
    FULL_TUNNEL_TABLE,
    MAIN_TABLE,
    EndpointPlan,
    FirewallPlan,
    LanPlan,
    NatPlan,
    NetworkPlan,
    NodePlan,
    PeerPlan,
    PlanError,
    PlanErrors,
    VethPlan,
    WgPlan,
)
from harness.scenario.model import LanSpec, LinkSpec, ScenarioSpec, WireGuardSpec

# the plan's types, importable from here as before
__all__ = [
    "EndpointPlan", "FirewallPlan", "FULL_TUNNEL_TABLE", "MAIN_TABLE", "NatPlan", "NetworkPlan", "NodePlan", "PeerPlan",
    "PlanError", "PlanErrors", "Port", "VethPlan", "WgPlan", "build_plan", "lan_name", "link_name", "plan_wireguard", "resolve_endpoint",
]


def build_plan(spec: ScenarioSpec, run_id: str, default_backend: str = AUTO, userspace: UserspaceCommand | None = None) -> NetworkPlan:
    """The plan of `spec` for run `run_id`. Nodes that pick no backend get
    `default_backend`; nodes on the userspace backend are started with `userspace`."""
    try:
        ports, pairs, lan_members = _ports(spec)
    except addressing.AddressesExhausted as exc:
        raise PlanErrors([PlanError((exc.section,), str(exc))]) from None
    veths = tuple(
        VethPlan(
            i,
            a,
            b,
            link.mtu,
            link_name(link),
            egress(link, link.ends[1]),
            egress(link, link.ends[0]),
        )
        for i, (link, (a, b)) in enumerate(zip(spec.links, pairs))
    )
    lans = tuple(
        LanPlan(
            len(spec.links) + j,
            j + 1,
            lan_name(lan, j),
            members,
            lan.mtu,
            {p.node: c for p in members if (c := egress(lan, p.node)) is not None},
            {p.node: c for p in members if (c := conditions_of(lan.from_.get(p.node))) and not c.empty},
        )
        for j, (lan, members) in enumerate(zip(spec.lans, lan_members))
    )
    link_ends = tuple(link.ends for link in spec.links) + tuple(tuple(lan.members) for lan in spec.lans)
    routing = Routing(_routing_roles(spec), link_ends, ports)
    nodes = {}
    for name, node in spec.nodes.items():
        nat = None
        if node.nat is not None:
            outside = next(p for p in ports[name] if node.nat.outside in link_ends[p.link_index])
            nat = NatPlan(
                outside.ifname,
                node.nat.udp_timeout,
                node.nat.type,
                node.nat.hairpin,
                outside.addresses,
                tuple(p.ifname for p in ports[name] if p is not outside),
                node.nat.outside,
            )
        firewall = tuple(
            FirewallPlan(
                rule.drop,
                rule.allow,
                rule.port,
                next((p.ifname for p in ports[name] if rule.from_ in link_ends[p.link_index]), None)
                if rule.from_
                else None,
            )
            for rule in node.firewall
        )
        nodes[name] = NodePlan(
            name=name,
            forwards=node.forwards,
            sysctls={k: str(v) for k, v in node.sysctls.items()},
            routes=tuple(routing.routes_for(name)),
            nat=nat,
            firewall=firewall,
            gateway=node.gateway,
            dns=dict(node.dns),
        )
    problems = _overlapping_subnets(spec, ports)
    placement = {node: host for host, names in spec.placement.items() for node in names}
    plan = NetworkPlan(run_id, nodes, veths, {}, ports, lans, placement)
    _wireguard(spec.wireguard, plan, run_id, default_backend, userspace, problems)
    if problems:
        raise PlanErrors(problems)
    return plan


def _routing_roles(spec: ScenarioSpec) -> dict[str, RoutingRole]:
    return {
        name: RoutingRole(node.forwards, node.nat.outside if node.nat is not None else None, node.gateway)
        for name, node in spec.nodes.items()
    }


def link_name(link: LinkSpec) -> str:
    return link.name or f"{link.ends[0]}-{link.ends[1]}"


def lan_name(lan: LanSpec, position: int) -> str:
    """A LAN's name: its own, or 'lan<N>' from 1 in file order."""
    return lan.name or f"lan{position + 1}"


def _link_path(spec: ScenarioSpec, index: int) -> tuple:
    """Where link index `index` is written: a link's or a LAN's entry."""
    return ("links", index) if index < len(spec.links) else ("lans", index - len(spec.links))


def _overlapping_subnets(spec: ScenarioSpec, ports: dict[str, tuple[Port, ...]]) -> list[PlanError]:
    """Two links in one subnet cannot be routed (and netlink would refuse the routes).
    Subnets either nest or are disjoint, so a clash is an earlier subnet among this one's
    supernets, or this one among an earlier one's: a lookup per prefix length, not a scan."""
    by_link = ports_by_link(ports)
    seen: dict[tuple[int, int, int], int] = {}  # (version, prefix, network >> host bits) → link
    covered: dict[tuple[int, int, int], int] = {}  # the same for every supernet of a seen subnet
    problems = []
    for index in range(len(spec.links) + len(spec.lans)):
        for network, _ in link_networks(by_link.get(index, [])):
            version, prefix = network.version, network.prefixlen
            value = int(network.network_address) >> (network.max_prefixlen - prefix)
            keys = [(version, k, value >> (prefix - k)) for k in range(prefix + 1)]
            clash = next((seen[key] for key in keys if key in seen), covered.get(keys[-1]))
            if clash is not None:
                path = _link_path(spec, index)
                field = "addresses" if path[0] == "links" else ("subnet" if version == 4 else "subnet6")
                other = "links[{}]".format(clash) if clash < len(spec.links) else "lans[{}]".format(clash - len(spec.links))
                problems.append(PlanError(path + (field,), f"{network} overlaps {other}'s subnet: each link and LAN needs its own"))
            seen.setdefault(keys[-1], index)
            for key in keys:
                covered.setdefault(key, index)
    return problems


# --- underlay ---------------------------------------------------------------------


def _ports(spec: ScenarioSpec) -> tuple[dict[str, tuple[Port, ...]], list[tuple[Port, Port]], list[tuple[Port, ...]]]:
    """Each node's underlay interfaces, each link's two ends in the order of `ends`, and
    each LAN's members' ends in the order of `members` (a node's links come first)."""
    by_node: dict[str, list[Port]] = {name: [] for name in spec.nodes}
    lan_v4 = addressing.lan_subnets([None if lan.subnet is not None and lan.subnet.version == 4 else len(lan.members) for lan in spec.lans])
    top = addressing.pool_top(lan_v4)
    pairs: list[tuple[Port, Port]] = []
    for index, link in enumerate(spec.links):
        addresses: list[list[Interface]] = [[], []]
        if link.addresses is not None:
            addresses[0].append(link.addresses[0])
            addresses[1].append(link.addresses[1])
        else:
            a, b = addressing.underlay_pair(index, len(spec.links), top)
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
    lans: list[tuple[Port, ...]] = []
    for j, lan in enumerate(spec.lans):
        index = len(spec.links) + j
        subnets = [lan.subnet if lan.subnet is not None else lan_v4[j]]
        if lan.ipv6 or lan.subnet6 is not None:
            subnets.append(lan.subnet6 if lan.subnet6 is not None else addressing.lan_subnet_v6(index))
        members = []
        for position, node in enumerate(lan.members):
            addresses = tuple(addressing.member_address(subnet, position) for subnet in subnets)
            port = Port(node, naming.veth_name(len(by_node[node])), addresses, index)
            by_node[node].append(port)
            members.append(port)
        lans.append(tuple(members))
    return {name: tuple(ports) for name, ports in by_node.items()}, pairs, lans


# --- WireGuard ---------------------------------------------------------------------


def plan_wireguard(
    wireguard: Mapping[str, WireGuardSpec], plan: NetworkPlan, run_id: str, default_backend: str = AUTO,
    userspace: UserspaceCommand | None = None,
) -> None:
    """Fills in `plan.wireguard` from a `wireguard:` section over an underlay planned or
    found (a Mininet network of a user's own); PlanErrors lists every problem."""
    problems: list[PlanError] = []
    _wireguard(wireguard, plan, run_id, default_backend, userspace, problems)
    if problems:
        raise PlanErrors(problems)


def _wireguard(
    wireguard: Mapping[str, WireGuardSpec], plan: NetworkPlan, run_id: str, default_backend: str,
    userspace: UserspaceCommand | None, problems: list[PlanError],
) -> None:
    """Fills in `plan.wireguard`: every interface with its peers, then the peers'
    endpoints (one given by node name needs the other node's interface planned)."""
    numbers = {name: i + 1 for i, name in enumerate(wireguard)}
    addresses = _tunnel_addresses(wireguard, numbers, problems)
    # each node's tunnel addresses as host networks, made once: a mesh of 1 000 names
    # every node as 999 others' allowed_ips
    host_networks = {name: tuple(ip_network(f"{a.ip}/{a.max_prefixlen}") for a in found) for name, found in addresses.items()}
    # peering is symmetric: a peer listed on one side only is added to the other
    peer_specs: dict[str, dict[str, object]] = {name: dict(wg.peers) for name, wg in wireguard.items()}
    for name, wg in wireguard.items():
        for other in wg.peers:
            peer_specs[other].setdefault(name, None)

    peer_problems: dict[tuple[str, str], list[PlanError]] = {}  # each peer's, in file order
    for name, wg in wireguard.items():
        peers = []
        for other, peer in peer_specs[name].items():
            path = ("wireguard", name, "peers", other)
            peer_problems[(name, other)] = []
            try:
                allowed = _allowed_ips(getattr(peer, "allowed_ips", None), host_networks, other, path)
            except PlanError as exc:
                peer_problems[(name, other)].append(exc)
                allowed = ()
            keepalive = getattr(peer, "persistent_keepalive", 0)
            # a preshared key named on one end only is the other end's too; false: none on this end
            psk = getattr(peer, "preshared_key", None)
            if psk is None:
                psk = getattr(peer_specs[other].get(name), "preshared_key", None)
            peers.append(PeerPlan(other, allowed, None, keepalive, psk or None))
        own = {a.network for a in addresses[name]}
        routes = tuple(dict.fromkeys(net for p in peers for net in p.allowed_ips if net not in own))
        backend = wg.backend or default_backend
        plan.wireguard[name] = WgPlan(
            node=name,
            ifname=naming.wg_ifname(run_id, numbers[name]),
            backend=backend,
            listen_port=wg.listen_port,
            addresses=addresses[name],
            mtu=wg.mtu,
            peers=tuple(peers),
            routes=routes,
            socket_in=wg.socket_in,
            table=wg.table,
            userspace=userspace if backend == USERSPACE else None,
            fwmark_setting=getattr(wg, "fwmark", None),
        )
    for name in wireguard:
        peers = []
        for peer in plan.wireguard[name].peers:
            path = ("wireguard", name, "peers", peer.node, "endpoint")
            try:
                endpoint = resolve_endpoint(getattr(peer_specs[name][peer.node], "endpoint", None), plan, name, path)
            except PlanError as exc:
                peer_problems[(name, peer.node)].append(exc)
                endpoint = None
            peers.append(PeerPlan(peer.node, peer.allowed_ips, endpoint, peer.persistent_keepalive, peer.preshared_key))  # not replace(): far slower, and a mesh of 1 000 has a million
        plan.wireguard[name] = replace(plan.wireguard[name], peers=tuple(peers))
    problems += [problem for found in peer_problems.values() for problem in found]


def _tunnel_addresses(wireguard: Mapping[str, WireGuardSpec], numbers: dict[str, int], problems: list[PlanError]) -> dict[str, tuple[Interface, ...]]:
    """Given addresses as written; the others allocated, skipping any address in use."""
    taken: dict[str, str] = {}
    for name, wg in wireguard.items():
        for i, address in enumerate(wg.address or ()):
            owner = taken.setdefault(str(address.ip), name)
            if owner != name:
                problems.append(PlanError(("wireguard", name, "address", i), f"{address.ip} is also the tunnel address of '{owner}'"))
    result: dict[str, tuple[Interface, ...]] = {}
    number = 0
    for name, wg in wireguard.items():
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


def _allowed_ips(tokens: list[str] | None, host_networks: dict[str, tuple[Network, ...]], peer: str, path: tuple) -> tuple[Network, ...]:
    if tokens is None:
        return host_networks[peer]
    out: list[Network] = []
    for i, token in enumerate(tokens):
        if token in host_networks:
            out += host_networks[token]
            continue
        try:
            out.append(ip_network(token, strict=False))
        except ValueError:
            raise PlanError(path + ("allowed_ips", i), f"{token!r} is neither a CIDR nor a WireGuard node") from None
    return tuple(dict.fromkeys(out))


def resolve_endpoint(text: str | None, plan: NetworkPlan, node: str, path: tuple) -> EndpointPlan | None:
    """The plan of an endpoint as written (a peer's `endpoint:`, an `endpoint` step's
    `to:`) for node `node`: a node name, 'node:port', 'address:port' or 'dns.name:port'."""
    if text is None:
        return None
    host, port_text = split_host_port(text)
    port = valid_port(port_text)
    if port_text is not None and port is None:
        raise PlanError(path, f"bad port in {text!r}")
    if host in plan.nodes:
        if host == node:
            raise PlanError(path, "a node cannot be its own endpoint")
        # WireGuard talks from the namespace that holds its socket (socket_in), to the peer's
        src, dst = _socket_node(plan, node), _socket_node(plan, host)
        if src == dst:  # both sockets in one namespace: over its loopback, as in netns.sh
            address = ip_address("127.0.0.1")
        else:
            address = plan.underlay_address(src, dst, 4) or plan.underlay_address(src, dst, 6)
        if address is None:
            where = f" (sockets in '{src}' and '{dst}')" if (src, dst) != (node, host) else ""
            raise PlanError(path, f"node '{host}' is not reachable from '{node}' on the underlay{where} (no route, or it is behind a NAT)")
        if port is None:
            peer_wg = plan.wireguard.get(host)
            port = peer_wg.listen_port if peer_wg else 51820
        return EndpointPlan(address, port, host)
    if is_dns_name(host):
        return dns_endpoint(host, port, plan, node, path)
    try:
        address = ip_address(host)
    except ValueError:
        raise PlanError(path, f"{text!r} is neither a node name, 'node:port', 'address:port' nor 'dns.name:port'") from None
    if port is None:
        raise PlanError(path, f"an address endpoint needs a port: '{text}:51820'")
    return EndpointPlan(address, port, None)


def _socket_node(plan: NetworkPlan, node: str) -> str:
    wg = plan.wireguard.get(node)
    return wg.socket_node if wg is not None else node
