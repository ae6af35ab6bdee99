"""The netns engine: one named network namespace per node (/run/netns/<run prefix>-<node>),
veth pairs for links, tc for conditions, nftables for NAT and firewalls (the last three,
and the timeline, shared with every namespace engine: harness.engine.underlay)."""

from __future__ import annotations

from harness.cleanup import RunRegistry
from harness.engine.underlay import NamespaceNode, UnderlayEngine, add_veth, prepare_node
from harness.net import nsexec
from harness.plan.naming import namespace_name
from harness.plan.network import NetworkPlan

NetnsNode = NamespaceNode  # a node of this engine: a named namespace


class NetnsEngine(UnderlayEngine):
    name = "netns"

    def _create(self, plan: NetworkPlan, registry: RunRegistry) -> None:
        from pyroute2 import IPRoute

        # the engine's own names: the run id makes them host-unique and tells the reaper whose they are
        names = {node: namespace_name(plan.run_id, node) for node in plan.nodes}
        registry.add_namespaces(list(names.values()))
        for node in plan.nodes.values():
            built = NamespaceNode(node.name, names[node.name], IPRoute(fileno=nsexec.create_namespace(names[node.name])))
            self._nodes[node.name] = built
            prepare_node(built, node)
        for veth in plan.veths:
            add_veth(self._nodes[veth.a.node], self._nodes[veth.b.node], veth)
