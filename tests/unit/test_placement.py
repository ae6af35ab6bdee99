"""Placing a topology's nodes on several hosts (pure)."""

from __future__ import annotations

import pytest

from harness.errors import ScenarioError
from harness.plan.network import build_plan
from harness.plan.placement import PlacementError, place
from harness.scenario.load import load_data

HOSTS = ["alpha", "beta", "gamma"]


def plan_of(spec: dict):
    (case,) = load_data(spec)
    return build_plan(case.spec, "t00001", "wireguard-go", None)


def hub(spokes: int) -> dict:
    return {
        "nodes": {"hub": {"router": True}, "peer": {"count": spokes}},
        "links": [{"ends": ["peer", "hub"]}],
        "wireguard": {"hub": {"peers": {"peer": {}}}, "peer": {"peers": {"hub": {"endpoint": "hub"}}}},
    }


def test_a_hub_is_balanced_and_keeps_a_full_share_of_its_spokes():
    plan = plan_of(hub(300))
    placement = place(plan, HOSTS)
    sizes = [len(placement.nodes_on(h)) for h in HOSTS]
    assert sizes == [101, 101, 99]  # none above an even share, rounded up
    assert placement.host_of["hub"] == "alpha"
    assert len(placement.crossing(plan)) == 200  # the spokes on beta and gamma reach the hub by tunnel
    assert placement.describe()[0] == "alpha: hub, peer1…peer100 (101 nodes)"
    assert placement.describe()[1] == "beta: peer101…peer201 (101 nodes)"


def test_peer_pairs_and_their_links_stay_together_when_the_balance_allows():
    nodes = {f"{side}{i}": {} for i in range(1, 7) for side in "xy"}
    spec = {
        "nodes": nodes,
        "links": [{"ends": [f"x{i}", f"y{i}"]} for i in range(1, 7)],
        "wireguard": {
            **{f"x{i}": {"peers": {f"y{i}": {"endpoint": f"y{i}"}}} for i in range(1, 7)},
            **{f"y{i}": {} for i in range(1, 7)},
        },
    }
    plan = plan_of(spec)
    placement = place(plan, HOSTS)
    assert all(placement.host_of[f"x{i}"] == placement.host_of[f"y{i}"] for i in range(1, 7))
    assert placement.crossing(plan) == [] and sorted(len(placement.nodes_on(h)) for h in HOSTS) == [4, 4, 4]


def test_a_nat_keeps_the_nodes_behind_it():
    spec = {
        "nodes": {"server": {}, "home": {"nat": {"outside": "server"}}, "client": {}, "other": {}, "far": {}, "r": {"router": True}},
        "links": [{"ends": ["client", "home"]}, {"ends": ["home", "server"]}, {"ends": ["other", "r"]}, {"ends": ["r", "far"]}],
    }
    placement = place(plan_of(spec), ["alpha", "beta"])
    assert placement.host_of["client"] == placement.host_of["home"]


def test_a_lan_stays_on_one_host_where_balance_allows_and_may_be_split_by_hand():
    spec = {
        "nodes": {"a": {}, "b": {}, "c": {}, "d": {}},
        "lans": [{"name": "office", "members": ["a", "b", "c"]}],
        "links": [{"ends": ["c", "d"]}],
    }
    plan = plan_of(spec)
    placement = place(plan, ["alpha", "beta"])
    assert len({placement.host_of[n] for n in "abc"}) == 1 or len(placement.crossing_lan_ports(plan)) == 1
    split = place(plan, ["alpha", "beta"], {"a": "alpha", "b": "beta"})
    (lan,) = plan.lans
    assert split.lan_home(lan) == "alpha", "the bridge is on its first member's host"
    assert (lan.index, 1) in split.crossing_lan_ports(plan)


def test_a_lan_split_over_hosts_is_a_tunnel_per_member_away_from_its_bridge():
    from harness.plan.share import share_of, vni_of

    spec = {"nodes": {"a": {}, "b": {}, "c": {}}, "lans": [{"name": "office", "members": ["a", "b", "c"]}]}
    plan = plan_of(spec)
    placement = place(plan, ["alpha", "beta"], {"a": "alpha", "b": "beta", "c": "alpha"})
    underlays = {"alpha": "10.0.0.1", "beta": "10.0.0.2"}
    (lan,) = plan.lans
    home, away = share_of(plan, placement, "alpha", underlays), share_of(plan, placement, "beta", underlays)
    assert home.bridge_here(lan.index) and not away.bridge_here(lan.index)
    (bridge_end,) = home.lan_ends.values()
    (member_end,) = away.lan_ends.values()
    assert (bridge_end.node, bridge_end.ifname, bridge_end.remote) == ("", "p1", "10.0.0.2"), "the bridge's port towards b"
    assert (member_end.node, member_end.ifname, member_end.remote) == ("b", lan.member("b").ifname, "10.0.0.1")
    assert bridge_end.vni == member_end.vni == vni_of(plan.run_id, lan.index, 1)
    assert len({vni_of(plan.run_id, i) for i in range(100)} | {vni_of(plan.run_id, lan.index, k) for k in range(1024)}) == 1124


def test_nodes_placed_by_hand_stay_and_bad_names_are_refused():
    plan = plan_of(hub(8))
    placement = place(plan, HOSTS, {"hub": "gamma", "peer1": "beta"})
    assert placement.host_of["hub"] == "gamma" and placement.host_of["peer1"] == "beta"
    assert sorted(len(placement.nodes_on(h)) for h in HOSTS) == [3, 3, 3]
    with pytest.raises(PlacementError, match="not among the hosts"):
        place(plan, HOSTS, {"hub": "delta"})
    with pytest.raises(PlacementError, match="does not have: nobody"):
        place(plan, HOSTS, {"nobody": "alpha"})
    with pytest.raises(PlacementError, match="no hosts"):
        place(plan, [])


def test_the_same_plan_and_hosts_give_the_same_placement():
    plan = plan_of(hub(50))
    assert place(plan, HOSTS) == place(plan, HOSTS)


def test_a_files_placement_puts_nodes_and_whole_groups_on_named_hosts():
    spec = {**hub(6), "placement": {"gamma": ["hub"], "beta": ["peer"]}}
    plan = plan_of(spec)
    assert plan.placement == {"hub": "gamma", **{f"peer{i}": "beta" for i in range(1, 7)}}
    placement = place(plan, HOSTS, plan.placement)
    assert placement.host_of["hub"] == "gamma" and {placement.host_of[f"peer{i}"] for i in range(1, 7)} == {"beta"}


def _problems(spec: dict) -> list[str]:
    with pytest.raises(ScenarioError) as raised:
        load_data(spec)
    return [f"{p.field}: {p.message}" for p in raised.value.problems]


def test_a_files_placement_is_checked_against_its_nodes_and_what_must_share_a_host():
    lan = {
        "nodes": {"a": {}, "b": {}, "c": {}},
        "links": [{"ends": ["a", "c"]}, {"ends": ["b", "c"]}],
        "wireguard": {"a": {"socket_in": "c", "peers": {"b": {}}}, "b": {"peers": {"a": {}}}},
    }
    assert _problems({**lan, "placement": {"alpha": ["a", "nobody"], "beta": ["c", "a"]}}) == [
        "placement.alpha[1]: unknown node 'nobody' (known nodes: a, b, c)",
        "placement.beta[1]: 'a' is placed twice (on alpha too)",
        "wireguard.a.socket_in: 'a''s device has its socket in 'c', so they run on one host, but `placement` puts a on alpha, c on beta",
    ]
    assert _problems({**lan, "placement": {"Alpha!": ["a"]}}) == [
        "placement.Alpha!: 'Alpha!' is not a host name of an inventory: lowercase letters, digits and '-', at most 31 characters, starting with a letter"
    ]


def test_placing_many_unconnected_nodes_takes_each_seed_once():
    """10 000 nodes with no links: every one is a new seed (a scan of all the
    unplaced for each would be 10⁸ steps)."""
    plan = plan_of({"nodes": {"n": {"count": 10_000}}})
    placement = place(plan, HOSTS)
    assert [len(placement.nodes_on(h)) for h in HOSTS] == [3334, 3334, 3332]
    assert placement.host_of["n1"] == "alpha" and placement.host_of["n10000"] == "gamma"


def test_the_hosts_latency_comes_off_a_crossing_links_configured_delay_and_is_said():
    from harness.plan.share import UnderlayLatency, compensated, compensation_notes, share_of

    spec = {
        "nodes": {"a": {}, "b": {}, "c": {}},
        "links": [{"ends": ["a", "b"], "delay": "10ms"}, {"ends": ["b", "c"], "delay": "1ms", "towards": {"b": {"delay": "0.5ms"}}}],
        "placement": {"alpha": ["a"], "beta": ["b"], "gamma": ["c"]},
    }
    plan = plan_of(spec)
    placement = place(plan, HOSTS, plan.placement)
    latencies = {
        frozenset(("alpha", "beta")): UnderlayLatency.of(("alpha", "beta"), 20, [2.3, 2.4, 2.6, 9.0]),  # quickest 2.3: 1.15 ms one way
        frozenset(("beta", "gamma")): UnderlayLatency.of(("beta", "gamma"), 20, [1.6] * 20),  # 0.8 ms one way
    }
    share = share_of(plan, placement, "beta", {"alpha": "10.0.0.1", "beta": "10.0.0.2", "gamma": "10.0.0.3"}, latencies)
    assert share.cross[0].underlay_delay == pytest.approx(0.00115) and share.cross[1].underlay_delay == pytest.approx(0.0008)
    # netem sets the rest; never below 0; nothing configured, nothing changed
    assert compensated(plan.veths[0].egress("a"), 0.00115).delay == pytest.approx(0.00885)
    assert compensated(plan.veths[1].egress("c"), 0.0008).delay == 0.0
    assert compensated(None, 0.001) is None
    assert compensation_notes(plan, placement, latencies) == [
        "link a-b from a: delay 10 ms = 8.85 ms by netem + 1.15 ms of the hosts' network",
        "link a-b from b: delay 10 ms = 8.85 ms by netem + 1.15 ms of the hosts' network",
        "link b-c from b: delay 1 ms = 0.2 ms by netem + 0.8 ms of the hosts' network",
        "link b-c from c: delay 0.5 ms is less than the hosts' network alone adds (0.8 ms): it is 0.8 ms",
    ]
    silent = UnderlayLatency.of(("alpha", "beta"), 20, [])
    assert silent.one_way == 0.0 and "no echo reply" in silent.describe()
