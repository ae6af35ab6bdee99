"""The Mininet engine's declaration of a plan (no root: a Topo is only a graph)."""

from __future__ import annotations

import textwrap

import pytest
import yaml

pytest.importorskip("mininet", reason="the mininet module is not installed (scripts/install.sh)")

from harness.engine.mininet import HarnessHost, PlanTopo, VethLink  # noqa: E402
from harness.plan.naming import namespace_name  # noqa: E402
from harness.plan.network import build_plan  # noqa: E402
from harness.scenario.model import ScenarioSpec  # noqa: E402

SCENARIO = textwrap.dedent(
    """
    name: topo
    nodes:
      client: {}
      home: {nat: {outside: isp}}
      isp: {router: true}
      server: {}
      lonely: {}
    links:
      - {ends: [client, home]}
      - {ends: [home, isp], mtu: 1400}
      - {ends: [isp, server]}
    """
)


def test_a_plan_becomes_a_host_per_node_and_a_link_per_veth_pair_with_the_plans_names():
    plan = build_plan(ScenarioSpec.model_validate(yaml.safe_load(SCENARIO)), "abc123")
    names = {node: namespace_name(plan.run_id, node) for node in plan.nodes}
    topo = PlanTopo(plan, names)
    assert sorted(topo.hosts()) == sorted(names.values()), "every node, a link-less one too, is a host named with the run prefix"
    assert all(name.startswith("wgh-abc123-") for name in topo.hosts())
    for name in topo.hosts():
        info = topo.nodeInfo(name)
        assert info["cls"] is HarnessHost and info["ip"] is None, "no address from Mininet's 10.0.0.0/8 pool"
        assert info["plan_node"] is plan.nodes[name.removeprefix("wgh-abc123-")]
    links = topo.links(sort=False, withKeys=False, withInfo=True)
    assert len(links) == len(plan.veths) == 3
    for (a, b, info), veth in zip(links, plan.veths):
        assert (a, b) == (names[veth.a.node], names[veth.b.node])
        assert info["cls"] is VethLink and info["veth"] is veth
        assert (info["intfName1"], info["intfName2"]) == (veth.a.ifname, veth.b.ifname)
