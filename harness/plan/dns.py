"""Planning for DNS names (pure): which node's DNS server answers a name, at which
address a node reaches it, and what an endpoint given by name plans to.

A node with `dns: {server.wgh.test: server}` runs a DNS server (dnsmasq) that
answers the name with the current underlay address of node `server`. A WireGuard
node whose peer endpoint is `server.wgh.test:51820` resolves it through the first
such server it can reach on the underlay, the way a host uses the resolver its
network gives it.
"""

from __future__ import annotations

from harness.plan.types import Address, EndpointPlan, NetworkPlan, PlanError


def dns_servers(plan: NetworkPlan) -> list[str]:
    """The nodes that run a DNS server, in file order."""
    return [node for node, node_plan in plan.nodes.items() if node_plan.dns]


def servers_of(plan: NetworkPlan, name: str) -> list[str]:
    """The nodes whose DNS server has a record for `name`, in file order."""
    return [node for node, node_plan in plan.nodes.items() if name in node_plan.dns]


def resolver_for(plan: NetworkPlan, node: str, name: str) -> tuple[str, Address] | None:
    """(server node, its address) that `node` asks for `name`: the first server with
    a record for it that `node` reaches on the underlay (IPv4 first)."""
    for server in servers_of(plan, name):
        if server == node:  # its own server: ask it on one of its own addresses
            address = next((a.ip for p in plan.ports[node] for a in p.addresses), None)
        else:
            address = plan.underlay_address(node, server, 4) or plan.underlay_address(node, server, 6)
        if address is not None:
            return server, address
    return None


def dns_endpoint(name: str, port: int | None, plan: NetworkPlan, node: str, path: tuple) -> EndpointPlan:
    """The plan of an endpoint given as 'dns.name:port': no address yet (it is
    resolved inside `node` when the network is built), but checked now: the name
    needs a server that `node` can reach, and the endpoint needs a port, as in wg(8)."""
    if port is None:
        raise PlanError(path, f"an endpoint given by DNS name needs a port, as in wg(8): '{name}:51820'")
    servers = servers_of(plan, name)
    if not servers:
        raise PlanError(path, f"no node serves the DNS name '{name}': add `dns: {{{name}: <node>}}` to the node that runs the DNS server")
    found = resolver_for(plan, node, name)
    if found is None:
        raise PlanError(
            path,
            f"'{node}' cannot reach a DNS server for '{name}' on the underlay (served by {', '.join(servers)}; no route, or behind a NAT)",
        )
    server, _ = found
    return EndpointPlan(None, port, plan.nodes[server].dns[name], name)
