"""Scale on the netns engine: a 300-node hub (299 spokes, each on its own link or all on
one LAN, one WireGuard peer each) builds, converges on a sampled `reach` in which every
spoke sends and answers through the hub, and tears down leaving nothing. Figures per size (100 to
1 000 and beyond) are benchmarks/bench_scale.py's."""

from __future__ import annotations

from collections import Counter

import pytest

from harness import caps, hostlimits
from harness.errors import MissingCapability
from harness.plan.network import build_plan
from harness.scenario.load import load_data
from harness.scenario.steps.mesh import SAMPLED_PER_NODE
from harness.steps.checks import check

from .leftovers import harness_objects
from .placement import host_only

pytestmark = [pytest.mark.requires("root", "wireguard"), host_only]  # 300 daemons: too slow for the emulated VM

SPOKES = 299


def hub(spokes: int, shared: bool = False) -> dict:
    if shared:  # one LAN: a bridge with a port per node, one subnet, no routes
        return {
            "name": f"lan-{spokes + 1}",
            "nodes": {"hub": {"router": True}, "spoke": {"count": spokes}},
            "lans": [{"name": "office", "members": ["hub", "spoke"]}],
            "wireguard": {
                "hub": {"peers": {"spoke": {"allowed_ips": ["spoke"]}}},
                "spoke": {"peers": {"hub": {"endpoint": "hub", "allowed_ips": ["100.64.0.0/16"]}}},
            },
        }
    return {
        "name": f"hub-{spokes + 1}",
        "nodes": {"hub": {"router": True}, "spoke": {"count": spokes, "gateway": "hub"}},
        "links": [{"ends": ["spoke", "hub"]}],
        "wireguard": {
            "hub": {"peers": {"spoke": {"allowed_ips": ["spoke"]}}},
            "spoke": {"peers": {"hub": {"endpoint": "hub", "allowed_ips": ["100.64.0.0/16"]}}},
        },
    }


@pytest.mark.parametrize("shared", [False, True], ids=["links", "lan"])
def test_a_300_node_hub_converges_on_a_sample_that_covers_every_spoke(wgh_network, wgh_backend, wgh_engine, shared):
    if shared and wgh_engine == "mininet":
        pytest.skip("a LAN at 300 is the netns engine's here (CI time); the Mininet engine's LAN switch is tested at small size (test_lan) and by the library's parity run")
    if caps.resolve_backend(wgh_backend) != "kernel":
        try:  # one inotify instance per wireguard-go; Debian allows 128 per user
            hostlimits.ensure_inotify_instances(SPOKES + 1)
        except MissingCapability as exc:
            pytest.skip(str(exc))
    try:  # each spoke's neighbour entry and the hub's for it (the LAN's: ARP of the hub's replies too)
        hostlimits.ensure_neighbour_tables(build_plan(load_data(hub(SPOKES, shared))[0].spec, "check0").neighbour_entries())
    except MissingCapability as exc:
        pytest.skip(str(exc))
    net = wgh_network(hub(SPOKES, shared))
    assert len(net.plan.nodes) == SPOKES + 1 and len(net.plan.wireguard["hub"].peers) == SPOKES
    spokes = [f"spoke{i}" for i in range(1, SPOKES + 1)]
    result = check(net, {"reach": {"among": spokes, "within": "120s"}})
    assert result.ok, result.message
    assert f"{SAMPLED_PER_NODE * SPOKES} of {SPOKES * (SPOKES - 1)} pairs (sampled" in result.title
    # every spoke answered and was answered: each has a session with the hub
    answered = result.measurements["convergence.pairs_answered"].value
    assert answered == SAMPLED_PER_NODE * SPOKES
    hub_status = net.wireguard.devices["hub"].status()
    sessions = Counter(p.latest_handshake > 0 for p in hub_status.peers)
    assert sessions[True] == SPOKES, f"{sessions[False]} spokes have no session with the hub"
    run_id = net.plan.run_id
    assert not net.teardown()
    assert not any(harness_objects({run_id}).values())
