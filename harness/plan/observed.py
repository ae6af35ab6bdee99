"""The plan of a network the harness found rather than planned: a Mininet network of a
user's own (built from any `Topo`), with WireGuard planned on top of it (pure).

Its underlay is what each host has (interfaces, addresses, main-table routes, whether it
forwards, a masquerading NAT), read by harness.engine.observe. WireGuard is planned on
it exactly as on a planned underlay (harness.plan.network.plan_wireguard), so the
`wireguard:` vocabulary, the fleet, the steps and the diagnosis are the same. What
differs is reachability: there is no planned topology to route over, so the address of
a node another node reaches is judged by that node's own routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from harness.backends import AUTO, UserspaceCommand
from harness.plan.network import plan_wireguard
from harness.plan.routing import Address, Routing
from harness.plan.types import NatPlan, NetworkPlan, NodePlan, PlanError, Port, RoutePlan
from harness.scenario.model import WireGuardSpec

NOT_PLANNED_LINK = -1  # a found interface belongs to no planned link


@dataclass(frozen=True)
class FoundNode:
    """One host as it was found: its underlay interfaces (by name, with addresses),
    its main-table routes, whether it forwards, and its NAT if it masquerades."""

    name: str
    interfaces: tuple[tuple[str, tuple], ...]  # (ifname, addresses as ip_interface)
    routes: tuple[RoutePlan, ...] = ()
    forwards: bool = False
    nat: NatPlan | None = None


@dataclass(frozen=True)
class ObservedPlan(NetworkPlan):
    """A NetworkPlan over a found underlay: no planned links (`veths` is empty), so the
    timeline's link, roaming and rerouting steps have nothing to act on; routes are the
    hosts' own."""

    def routing(self, down_links: frozenset[int] | set[int] = frozenset()) -> Routing:
        raise PlanError((), "this network's underlay was built outside the harness: its routes are not recomputed")

    def underlay_address(self, src: str, dst: str, family: int = 4, *, reachable: bool = True) -> Address | None:
        """The address of `dst` that `src` reaches by its own routes: one on a subnet
        `src` is on, else one a specific route covers, else (a default route) the first
        one `dst` has; with reachable=False, dst's first address whatever the routes."""
        if src == dst or dst not in self.ports:
            return None
        candidates = [a for p in self.ports[dst] for a in p.addresses if a.version == family and not a.ip.is_link_local]
        own = {a.network for p in self.ports.get(src, ()) for a in p.addresses}
        routes = [r.destination for r in self.nodes[src].routes if r.destination.version == family] if src in self.nodes else []
        for covered in (
            lambda a: a.network in own,
            lambda a: any(a.ip in net for net in routes if net.prefixlen),
            lambda a: any(net.prefixlen == 0 for net in routes),
        ):
            found = next((a.ip for a in candidates if covered(a)), None)
            if found is not None:
                return found
        return candidates[0].ip if candidates and not reachable else None


def plan_over(
    found: Mapping[str, FoundNode],
    wireguard: Mapping[str, WireGuardSpec],
    run_id: str,
    default_backend: str = AUTO,
    userspace: UserspaceCommand | None = None,
) -> ObservedPlan:
    """WireGuard (a `wireguard:` section, validated) planned over found hosts."""
    nodes = {
        name: NodePlan(name=name, forwards=node.forwards, sysctls={}, routes=node.routes, nat=node.nat)
        for name, node in found.items()
    }
    ports = {
        name: tuple(Port(name, ifname, tuple(addresses), NOT_PLANNED_LINK) for ifname, addresses in node.interfaces)
        for name, node in found.items()
    }
    plan = ObservedPlan(run_id, nodes, (), {}, ports)
    plan_wireguard(wireguard, plan, run_id, default_backend, userspace)
    return plan
