"""The netns engine: one named network namespace per node (/run/netns/<run prefix>-<node>),
veth pairs for links, a bridge in a namespace of its own per LAN
(/run/netns/<run prefix>-lan-<N>), tc for conditions, nftables for NAT and firewalls (the last three,
and the timeline, shared with every namespace engine: harness.engine.underlay)."""

from __future__ import annotations

from harness.cleanup import RunRegistry
from harness.engine.underlay import NamespaceNode, UnderlayEngine, add_tunnel_end, add_veth, prepare_node
from harness.net import nsexec
from harness.plan.naming import lan_namespace_name, namespace_name
from harness.plan.network import NetworkPlan

NetnsNode = NamespaceNode  # a node of this engine: a named namespace


class NetnsEngine(UnderlayEngine):
    name = "netns"

    def _create(self, plan: NetworkPlan, registry: RunRegistry) -> None:
        from pyroute2 import IPRoute

        # the engine's own names: the run id makes them host-unique and tells the reaper whose they are
        names = {node: namespace_name(plan.run_id, node) for node in plan.nodes if self._here(node)}
        bridges = {lan.index: lan_namespace_name(plan.run_id, lan.position) for lan in self._lans(plan)}
        registry.add_namespaces(list(names.values()) + list(bridges.values()))
        for node in plan.nodes.values():
            if node.name not in names:
                continue
            built = NamespaceNode(node.name, names[node.name], IPRoute(fileno=nsexec.create_namespace(names[node.name])))
            self._nodes[node.name] = built
            prepare_node(built, node)
        cross = self.share.cross if self.share is not None else {}
        if cross:
            with IPRoute() as here:  # this process's namespace: the host's, where the tunnels' sockets live
                for link in cross.values():
                    add_tunnel_end(here, self._nodes[link.node], link)
        for veth in plan.veths:
            if veth.index not in cross and self._here(veth.a.node):
                add_veth(self._nodes[veth.a.node], self._nodes[veth.b.node], veth)
        self._create_lans(plan, {index: (name, IPRoute(fileno=nsexec.create_namespace(name))) for index, name in bridges.items()})
