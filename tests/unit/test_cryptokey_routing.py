"""Cryptokey routing support, without root: full-tunnel policy routing in the plan
(wg-quick's table 51820 / fwmark rules), `gateway` default routes, ping `source`,
targets beyond a full-tunnel peer, and their validation errors."""

from __future__ import annotations

import socket
import textwrap
from ipaddress import ip_address, ip_network

import pytest
import yaml

from harness.errors import ScenarioError
from harness.net.policy import FIB_RULE_INVERT, policy_rules
from harness.plan.network import FULL_TUNNEL_TABLE, MAIN_TABLE, build_plan
from harness.scenario.load import load_text
from harness.scenario.model import ScenarioSpec
from harness.diagnosis.causes import CAUSES

FILE = "scenarios/x.yaml"

FULL_TUNNEL = """\
nodes:
  laptop: {gateway: isp}
  isp: {router: true}
  vpn: {nat: {outside: web}}
  web: {}
links:
  - {ends: [laptop, isp], ipv6: true}
  - {ends: [isp, vpn], ipv6: true}
  - {ends: [vpn, web], ipv6: true}
wireguard:
  vpn: {}
  laptop:
    peers:
      vpn: {endpoint: vpn, allowed_ips: [0.0.0.0/0, "::/0", 10.8.0.0/16]}
"""


def plan_of(text: str, **changes):
    data = yaml.safe_load(textwrap.dedent(text))
    for path, value in changes.items():
        node, key = path.split(".")
        data["wireguard"][node][key] = value
    return build_plan(ScenarioSpec.model_validate(data), "abc123")


def errors(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as exc:
        load_text(textwrap.dedent(text), FILE)
    return [str(p) for p in exc.value.problems]


# --- full tunnel: routes and rules ------------------------------------------------------


def test_default_route_with_table_auto_gets_fwmark_and_its_own_table():
    wg = plan_of(FULL_TUNNEL).wireguard["laptop"]
    assert wg.fwmark == FULL_TUNNEL_TABLE == 51820
    assert dict((str(net), table) for net, table in wg.routes_by_table()) == {
        "0.0.0.0/0": FULL_TUNNEL_TABLE,
        "::/0": FULL_TUNNEL_TABLE,
        "10.8.0.0/16": MAIN_TABLE,  # specific routes stay in main, as with wg-quick
    }
    assert wg.policy_families() == (4, 6)


def test_the_other_side_of_a_full_tunnel_is_unchanged():
    vpn = plan_of(FULL_TUNNEL).wireguard["vpn"]
    assert vpn.fwmark is None
    assert {table for _, table in vpn.routes_by_table()} == {MAIN_TABLE}


def test_ipv4_only_full_tunnel_sets_rules_for_ipv4_only():
    text = FULL_TUNNEL.replace('[0.0.0.0/0, "::/0", 10.8.0.0/16]', "[0.0.0.0/0]")
    assert plan_of(text).wireguard["laptop"].policy_families() == (4,)


def test_table_main_puts_the_default_route_in_main_without_fwmark():
    wg = plan_of(FULL_TUNNEL, **{"laptop.table": "main"}).wireguard["laptop"]
    assert wg.fwmark is None and wg.policy_families() == ()
    assert {table for _, table in wg.routes_by_table()} == {MAIN_TABLE}
    assert ip_network("0.0.0.0/0") in dict(wg.routes_by_table())


def test_table_off_adds_no_routes():
    wg = plan_of(FULL_TUNNEL, **{"laptop.table": "off"}).wireguard["laptop"]
    assert wg.routes_by_table() == () and wg.fwmark is None


def test_policy_rules_are_wg_quicks():
    rules = policy_rules(plan_of(FULL_TUNNEL).wireguard["laptop"])
    assert rules == [
        {"family": socket.AF_INET, "priority": 32765, "fwmark": 51820, "flags": FIB_RULE_INVERT, "table": 51820},
        {"family": socket.AF_INET, "priority": 32764, "table": 254, "suppress_prefixlen": 0},
        {"family": socket.AF_INET6, "priority": 32765, "fwmark": 51820, "flags": FIB_RULE_INVERT, "table": 51820},
        {"family": socket.AF_INET6, "priority": 32764, "table": 254, "suppress_prefixlen": 0},
    ]
    # the suppress rule must be consulted first, or main's default route would win
    assert rules[1]["priority"] < rules[0]["priority"]
    assert policy_rules(plan_of(FULL_TUNNEL, **{"laptop.table": "main"}).wireguard["laptop"]) == []


# --- gateway: one default route ---------------------------------------------------------


def test_gateway_node_gets_one_default_route_per_family():
    plan = plan_of(FULL_TUNNEL)
    routes = {(str(r.destination), str(r.gateway), r.dev) for r in plan.nodes["laptop"].routes}
    assert routes == {("0.0.0.0/0", "198.18.1.2", "eth0"), ("::/0", "2001:2:0:1::2", "eth0")}
    # the others keep per-subnet routes
    assert all(r.destination.prefixlen for r in plan.nodes["isp"].routes)


def test_gateway_node_reachability_follows_what_the_gateway_reaches():
    plan = plan_of(FULL_TUNNEL)
    # the endpoint resolves to the VPN server's address on the ISP side
    assert str(plan.wireguard["laptop"].peer("vpn").endpoint) == "198.18.2.2:51820"
    # web, beyond the server, is reachable by its own address
    assert plan.underlay_address("laptop", "web") == ip_address("198.18.3.2")


def test_gateway_does_not_make_a_nat_hidden_node_reachable():
    text = """\
    nodes:
      a: {gateway: r}
      r: {router: true}
      home: {nat: {outside: r}}
      inside: {}
    links:
      - {ends: [a, r]}
      - {ends: [r, home]}
      - {ends: [home, inside]}
    """
    plan = build_plan(ScenarioSpec.model_validate(yaml.safe_load(textwrap.dedent(text))), "abc123")
    assert plan.underlay_address("a", "home") == ip_address("198.18.2.2")
    assert plan.underlay_address("a", "inside") is None  # a default route does not cross a NAT inwards


def test_target_beyond_a_full_tunnel_is_its_underlay_address():
    plan = plan_of(FULL_TUNNEL)
    assert plan.target_address("laptop", "web", "tunnel", 4) == ip_address("198.18.3.2")
    assert plan.target_address("laptop", "web", "tunnel", 6) == ip_address("2001:2:0:3::2")
    assert plan.target_address("laptop", "vpn", "tunnel", 4) == ip_address("100.64.0.1")
    assert plan.wireguard["laptop"].peer_for(ip_address("198.18.3.2")).node == "vpn"


def test_routing_loop_is_a_known_cause():
    assert "routing-loop" in CAUSES


# --- validation -------------------------------------------------------------------------


def test_full_tunnel_scenario_validates():
    text = FULL_TUNNEL + """\
steps:
  - ping: {from: laptop, to: web}
  - capture: {name: c, link: laptop-isp}
  - stop: {capture: c, no_cleartext: {from: laptop, to: web}}
"""
    (case,) = load_text(text, FILE)
    assert case.spec.nodes["laptop"].gateway == "isp"


def test_gateway_must_be_a_neighbour():
    assert errors(
        """\
        nodes:
          a: {gateway: c}
          b: {}
          c: {}
        links: [{ends: [a, b]}, {ends: [b, c]}]
        """
    ) == [f"{FILE}:2: nodes.a.gateway: 'c' is not a neighbour of 'a' (neighbours: b)"]


def test_ping_to_a_node_without_wireguard_needs_a_peer_carrying_it():
    assert errors(
        """\
        nodes: {a: {}, b: {}, c: {}}
        links: [{ends: [a, b]}]
        wireguard: {a: {peers: {b: {endpoint: b}}}, b: {}}
        steps:
          - ping: {from: a, to: c}
        """
    ) == [f"{FILE}:5: steps[0].ping.family: 'c' has no IPv4 address"]
    assert errors(
        """\
        nodes: {a: {}, b: {router: true}, c: {}}
        links: [{ends: [a, b]}, {ends: [b, c]}]
        wireguard: {a: {peers: {b: {endpoint: b}}}, b: {}}
        steps:
          - ping: {from: a, to: c}
        """
    ) == [
        f"{FILE}:5: steps[0].ping.to: no peer of 'a' has 198.18.2.2 ('c') in its allowed_ips, so this ping cannot pass "
        "(peer them, add 'c' to a peer's allowed_ips, or add `expect: fail`)"
    ]


SOURCE = """\
nodes: {a: {}, b: {}}
links: [{ends: [a, b]}]
wireguard:
  a: {address: [100.64.0.1/32, 100.64.0.9/32], peers: {b: {endpoint: b}}}
  b: {}
steps:
"""


def test_ping_source_must_be_an_address_of_the_sender():
    assert errors(SOURCE + "  - ping: {from: a, to: b, source: 100.64.0.7}\n") == [
        f"{FILE}:7: steps[0].ping.source: 100.64.0.7 is not one of a's tunnel addresses (100.64.0.1, 100.64.0.9): "
        "ping can only send from its own address"
    ]
    assert errors(SOURCE + "  - ping: {from: a, to: b, via: underlay, source: 100.64.0.9}\n") == [
        f"{FILE}:7: steps[0].ping.source: 100.64.0.9 is not one of a's underlay addresses (198.18.1.1): "
        "ping can only send from its own address"
    ]


def test_ping_source_must_be_an_address_of_the_right_family():
    assert errors(SOURCE + "  - ping: {from: a, to: b, source: not-an-ip}\n") == [
        f"{FILE}:7: steps[0].ping.source: 'not-an-ip' is not an IP address"
    ]
    assert errors(SOURCE + "  - ping: {from: a, to: 100.64.0.2, source: '::1'}\n") == [
        f"{FILE}:7: steps[0].ping.source: ::1 is not one of a's tunnel addresses (100.64.0.1, 100.64.0.9): "
        "ping can only send from its own address"
    ]


def test_ping_source_of_a_second_tunnel_address_validates():
    (case,) = load_text(SOURCE + "  - ping: {from: a, to: b, source: 100.64.0.9, expect: fail, cause: allowed-ips-receiver}\n", FILE)
    assert case.spec.steps[0].ping.source == "100.64.0.9"


def test_table_must_be_known():
    assert errors(FULL_TUNNEL.replace("  laptop:\n", "  laptop:\n    table: fifty\n")) == [
        f"{FILE}:13: wireguard.laptop.table: expected auto, main, off or a routing table number (1 to 4294967295), got 'fifty'"
    ]
    assert errors(FULL_TUNNEL.replace("  laptop:\n", "  laptop:\n    table: 254\n")) == [
        f"{FILE}:13: wireguard.laptop.table: table 254 is the kernel's main table: say main, or use another number"
    ]


def test_a_numbered_table_takes_every_route_and_no_rules():
    (case,) = load_text(FULL_TUNNEL.replace("  laptop:\n", "  laptop:\n    table: 1234\n"), FILE)
    wg = build_plan(case.spec, "t00001", "kernel").wireguard["laptop"]
    assert wg.routes_by_table() and {table for _, table in wg.routes_by_table()} == {1234}
    assert wg.fwmark is None and wg.policy_families() == ()


def test_a_given_fwmark_marks_the_device_and_names_the_full_tunnel_table():
    (case,) = load_text(FULL_TUNNEL.replace("  laptop:\n", "  laptop:\n    fwmark: 4242\n"), FILE)
    wg = build_plan(case.spec, "t00001", "kernel").wireguard["laptop"]
    assert wg.fwmark == 4242
    assert {table for net, table in wg.routes_by_table() if net.prefixlen == 0} == {4242}
    assert policy_rules(wg)[0]["table"] == policy_rules(wg)[0]["fwmark"] == 4242
