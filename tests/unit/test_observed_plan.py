"""WireGuard planned over a network found rather than planned (a user's Mininet): which
address of a host its peer reaches by its own routes, the NAT read from nftables'
JSON, and the `wireguard:` section checked on its own. Pure: no root."""

from __future__ import annotations

from ipaddress import ip_address, ip_interface, ip_network

import pytest

from harness.engine.observe import masquerading_interface
from harness.plan.observed import FoundNode, plan_over
from harness.plan.types import NatPlan, PlanError, PlanErrors, RoutePlan
from harness.scenario.wireguard_section import SectionError, validate_wireguard


def _routes(*entries: tuple[str, str | None, str]) -> tuple[RoutePlan, ...]:
    return tuple(RoutePlan(ip_network(dst), ip_address(gw) if gw else None, dev) for dst, gw, dev in entries)


# the two-site WAN of examples/topos.py, as found
FOUND = {
    "hq": FoundNode("hq", (("hq-eth0", (ip_interface("198.51.100.10/24"),)),), _routes(("198.51.100.0/24", None, "hq-eth0"), ("0.0.0.0/0", "198.51.100.1", "hq-eth0"))),
    "gw": FoundNode(
        "gw",
        (("gw-eth0", (ip_interface("203.0.113.2/24"),)), ("gw-eth1", (ip_interface("192.168.1.1/24"),))),
        _routes(("203.0.113.0/24", None, "gw-eth0"), ("192.168.1.0/24", None, "gw-eth1"), ("0.0.0.0/0", "203.0.113.1", "gw-eth0")),
        forwards=True,
        nat=NatPlan("gw-eth0", 30.0, outside_addresses=(ip_interface("203.0.113.2/24"),), inside_devs=("gw-eth1",)),
    ),
    "branch": FoundNode("branch", (("branch-eth0", (ip_interface("192.168.1.10/24"), ip_interface("2001:db8::10/64"))),), _routes(("192.168.1.0/24", None, "branch-eth0"), ("0.0.0.0/0", "192.168.1.1", "branch-eth0"))),
    "lonely": FoundNode("lonely", (("lonely-eth0", (ip_interface("10.9.9.9/24"),)),), _routes(("10.9.9.0/24", None, "lonely-eth0"))),
}


def _plan(wireguard: dict):
    return plan_over(FOUND, validate_wireguard(wireguard, FOUND), "abcd")


def test_endpoint_by_host_name_is_the_address_its_peer_routes_to():
    plan = _plan({"branch": {"peers": {"hq": {"endpoint": "hq"}}}, "hq": {}})
    assert str(plan.wireguard["branch"].peers[0].endpoint) == "198.51.100.10:51820"  # by branch's default route
    assert plan.underlay_address("gw", "branch") == ip_address("192.168.1.10")  # on a shared subnet
    assert plan.underlay_address("lonely", "hq") is None  # no route at all
    assert plan.underlay_address("lonely", "hq", reachable=False) == ip_address("198.51.100.10")
    assert plan.underlay_address("hq", "branch", 6) is None
    assert plan.veths == () and plan.nodes["gw"].nat.outside_dev == "gw-eth0"


def test_a_host_without_a_route_to_its_endpoint_is_a_plan_error_with_its_path():
    with pytest.raises(PlanErrors) as caught:
        _plan({"lonely": {"peers": {"hq": {"endpoint": "hq"}}}, "hq": {}})
    assert caught.value.errors[0].path == ("wireguard", "lonely", "peers", "hq", "endpoint")


def test_the_routing_of_a_found_network_is_not_recomputed():
    plan = _plan({"branch": {"peers": {"hq": {"endpoint": "hq"}}}, "hq": {}})
    with pytest.raises(PlanError, match="built outside the harness"):
        plan.routes_avoiding({0})


def test_masquerading_interface_from_nft_json():
    iptables_nft = {"nftables": [{"metainfo": {}}, {"rule": {"family": "ip", "table": "nat", "chain": "POSTROUTING", "expr": [
        {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "gw-eth0"}}, {"counter": {}}, {"xt": {"type": "target", "name": "MASQUERADE"}}]}}]}
    native = {"nftables": [{"rule": {"expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "wan0"}}, {"masquerade": None}]}}]}
    filtering = {"nftables": [{"rule": {"expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "x"}}, {"drop": None}]}}]}
    assert masquerading_interface(iptables_nft) == "gw-eth0"
    assert masquerading_interface(native) == "wan0"
    assert masquerading_interface(filtering) is None
    assert masquerading_interface({}) is None


def test_section_problems_name_host_and_field_all_at_once():
    with pytest.raises(SectionError) as caught:
        validate_wireguard({"hq": {"listen_port": 70000, "peers": {"brnch": {}}}, "h7": {}}, ["hq", "branch"])
    problems = caught.value.problems
    assert any(p.startswith("wireguard.hq.listen_port:") for p in problems)
    assert "wireguard.h7: no host 'h7' in this network (known nodes: branch, hq)" in problems
    assert any(p.startswith("wireguard.hq.peers.brnch: 'brnch' has no WireGuard settings") for p in problems)
    with pytest.raises(SectionError, match="no host has WireGuard settings"):
        validate_wireguard({}, ["hq"])
