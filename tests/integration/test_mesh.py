"""A node group built for real: a small full mesh, the `reach` step passing, and
failing (with the pair named and diagnosed) once one side forgets a peer. Needs root."""

from __future__ import annotations

import json

import pytest

from harness.net import nlbatch
from harness.scenario.steps.mesh import ReachArgs, reach_pairs
from harness.steps.checks import check

pytestmark = pytest.mark.requires("root", "wireguard")

MESH = {
    "name": "mesh-test",
    "nodes": {"switch": {"router": True}, "m": {"count": 4}},
    "links": [{"ends": ["m", "switch"]}],
    "wireguard": {"m": {"peers": {"m": {"endpoint": "m"}}}},
}


def test_every_pair_reaches_the_other_and_convergence_is_recorded(wgh_network):
    net = wgh_network(MESH)
    # the batched underlay routes: m1 reaches the other members' subnets through the switch
    routes = json.loads(net.run("m1", ["ip", "-j", "route", "show", "198.18.3.0/24"]).stdout)
    assert routes and routes[0]["gateway"] == "198.18.1.2" and routes[0]["protocol"] == "static"
    # the batched tunnel routes: one per other member and family, through the WireGuard interface
    tunnel = json.loads(net.run("m1", ["ip", "-j", "route", "show", "dev", net.plan.wireguard["m1"].ifname]).stdout)
    assert {"100.64.0.2", "100.64.0.3", "100.64.0.4"} <= {r["dst"] for r in tunnel}

    result = check(net, {"reach": {"among": ["m1", "m2", "m3", "m4"], "within": "20s", "record": "mesh"}})
    assert result.ok, result.message
    time_ = result.measurements["mesh.time"]
    assert len(time_.samples) == 12 and result.measurements["mesh.pairs_answered"].value == 12
    assert 0 < max(time_.samples) == time_.value < 20
    # every pair really has a session now, on both sides
    for a in ("m1", "m4"):
        status = net.wireguard.devices[a].status()
        assert len(status.peers) == 3 and all(p.latest_handshake > 0 for p in status.peers)


def test_a_pair_that_cannot_answer_is_named_and_diagnosed(wgh_network):
    net = wgh_network(MESH)
    # m3 forgets m2: m2 → m3 and m3 → m2 can never answer, every other pair can
    net.wireguard.devices["m3"].remove_peer(net.wireguard.public_key("m2"))
    result = check(net, {"reach": {"within": "2s", "interval": "200ms"}})
    assert not result.ok and result.outcome == "fail"
    assert result.measurements["convergence.pairs_answered"].value == 10
    assert result.measurements["convergence.time"].value is None
    assert result.message.startswith("2/12 pairs never answered within 2s (m2 → m3, m3 → m2)")
    assert "pairs that never answered: m2 → m3, m3 → m2" in result.diagnosis
    assert "[unknown-peer-key]" in result.message


def test_a_sampled_reach_probes_only_its_pairs_and_says_so(wgh_network):
    net = wgh_network(MESH)
    nodes = ["m1", "m2", "m3", "m4"]
    expected = reach_pairs(nodes, ReachArgs(pairs=4, seed=3))
    result = check(net, {"reach": {"among": nodes, "pairs": 4, "seed": 3, "within": "20s"}})
    assert result.ok, result.message
    assert "4 of 12 pairs (sampled, seed 3)" in result.title
    # the 4 sampled pairs, each answered through a session (12 would answer were all probed)
    assert result.measurements["convergence.pairs_answered"].value == 4
    for a, b in expected:
        assert net.wireguard.devices[a].status().peer(net.wireguard.public_key(b)).latest_handshake > 0, f"{a} → {b}"


def test_batched_routes_report_the_route_the_kernel_refused(wgh_network):
    net = wgh_network(MESH)
    index = net.node("m1").netlink.link_lookup(ifname="eth0")[0]
    with pytest.raises(nlbatch.BatchError) as exc:
        # the second one exists already: plain `add` refuses it, and says which
        nlbatch.install_routes(net.node("m1"), [{"dst": "198.18.200.0/24", "oif": index}, {"dst": "198.18.2.0/24", "gateway": "198.18.1.2", "oif": index}])
    assert "198.18.2.0/24" in str(exc.value) and "File exists" in str(exc.value)


def test_batched_routes_are_each_checked_though_only_the_last_of_a_sendmsg_is_acknowledged(wgh_network):
    """Only the last request of each sendmsg asks for an acknowledgement: a refused one in
    the middle of a chunk is still reported (the kernel answers failures anyway), and a
    batch of several chunks lands whole."""
    net = wgh_network(MESH)
    node = net.node("m1")
    index = node.netlink.link_lookup(ifname="eth0")[0]
    many = [{"dst": f"10.{i // 256}.{i % 256}.0/24", "oif": index} for i in range(600)]  # ~40 KiB: several chunks
    nlbatch.install_routes(node, many)
    installed = {r["dst"] for r in json.loads(net.run("m1", ["ip", "-j", "route", "show", "root", "10.0.0.0/8"]).stdout)}
    assert installed == {r["dst"] for r in many}
    # the refused one in the middle (an existing route), followed by one that succeeds
    refused = [{"dst": "198.18.201.0/24", "oif": index}, {"dst": "10.0.5.0/24", "oif": index}, {"dst": "198.18.202.0/24", "oif": index}]
    with pytest.raises(nlbatch.BatchError) as exc:
        nlbatch.install_routes(node, refused)
    assert "10.0.5.0/24" in str(exc.value) and "File exists" in str(exc.value)
    # ...and the requests after a refused one are made (as `ip -batch` without -force would not)
    after = json.loads(net.run("m1", ["ip", "-j", "route", "show", "198.18.202.0/24"]).stdout)
    assert after, "the request after the refused one was not made"
