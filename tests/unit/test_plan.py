"""harness.plan: the pure network plan (addresses, names, routes, peers)."""

import textwrap
from dataclasses import fields
from ipaddress import ip_address, ip_interface, ip_network

import pytest
import yaml

from harness.plan import addressing, naming
from harness.plan.conditions import conditions_of, egress
from harness.plan.network import EndpointPlan, PlanError, PlanErrors, build_plan, resolve_endpoint
from harness.plan.types import Conditions, GilbertElliottLoss
from harness.scenario.conditions import Impairment
from harness.scenario.model import LinkSpec, ScenarioSpec
from harness.scenario.steps.timeline import LinkArgs

RUN = "abc123"


def spec(text):
    return ScenarioSpec.model_validate(yaml.safe_load(textwrap.dedent(text)))


def plan_of(text, run_id=RUN):
    return build_plan(spec(text), run_id)


def routes(plan, node):
    return {(str(r.destination), str(r.gateway) if r.gateway else None, r.dev) for r in plan.nodes[node].routes}


DIRECT = """\
nodes: {alpha: {}, beta: {}}
links:
  - {ends: [alpha, beta]}
wireguard:
  alpha:
    peers:
      beta: {endpoint: beta, persistent_keepalive: 5}
  beta: {listen_port: 51999}
"""


# --- direct two nodes -----------------------------------------------------------------


def test_direct_underlay_addresses_and_interfaces():
    plan = plan_of(DIRECT)
    (veth,) = plan.veths
    assert veth.a.node == "alpha" and veth.b.node == "beta"
    assert veth.a.addresses == (ip_interface("198.18.1.1/24"),)
    assert veth.b.addresses == (ip_interface("198.18.1.2/24"),)
    assert veth.a.ifname == "eth0" and veth.b.ifname == "eth0"
    assert veth.mtu is None
    # one shared subnet: nothing to route
    assert plan.nodes["alpha"].routes == ()
    assert plan.nodes["beta"].routes == ()


def test_direct_tunnel_addresses():
    plan = plan_of(DIRECT)
    assert plan.wireguard["alpha"].addresses == (ip_interface("100.64.0.1/32"), ip_interface("fd00:64::1/128"))
    assert plan.wireguard["beta"].addresses == (ip_interface("100.64.0.2/32"), ip_interface("fd00:64::2/128"))
    assert plan.tunnel_address("alpha") == ip_address("100.64.0.1")
    assert plan.tunnel_address("beta", 6) == ip_address("fd00:64::2")
    assert plan.tunnel_address("nobody") is None


def test_names_carry_the_run_id():
    plan = plan_of(DIRECT)
    assert plan.run_id == RUN
    # the netns engine's namespace names (the plan holds no engine's names)
    assert naming.namespace_name(plan.run_id, "alpha") == "wgh-abc123-alpha"
    assert plan.wireguard["alpha"].ifname == "wghabc1231"
    assert plan.wireguard["beta"].ifname == "wghabc1232"
    for wg in plan.wireguard.values():
        assert len(wg.ifname) <= 15
        assert naming.run_of(wg.ifname) == RUN
    assert naming.run_of(naming.namespace_name(plan.run_id, "alpha")) == RUN
    assert "namespace" not in {f.name for f in fields(plan.nodes["alpha"])}


def test_the_container_entrypoints_probe_namespace_is_not_taken_for_a_runs():
    # a concurrent run's reaper ends what runs in a namespace named like a dead run's:
    # it once killed the entry point's `ip link add` in "wghprobe<PID>" ("wgh" + 6 + digits)
    import re
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / "scripts" / "container-entrypoint.sh").read_text()
    probes = re.findall(r'^\s*probe\w*="([^"]+)"', script, re.MULTILINE)
    assert probes
    for pid in ("7", "12345", "4194304"):
        for probe in probes:
            assert naming.run_of(probe.replace("$$", pid)) is None, probe
    assert naming.run_of("wghprobe12345") == "probe1"  # the pattern that caught it


def test_different_runs_never_share_names():
    one, two = plan_of(DIRECT, "aaaaaa"), plan_of(DIRECT, "bbbbbb")
    names_one = {naming.namespace_name(one.run_id, n) for n in one.nodes} | {w.ifname for w in one.wireguard.values()}
    names_two = {naming.namespace_name(two.run_id, n) for n in two.nodes} | {w.ifname for w in two.wireguard.values()}
    assert not names_one & names_two


def test_ifname_stays_within_15_chars_with_many_nodes():
    nodes = {f"n{i}": {} for i in range(120)}
    data = {"nodes": nodes, "wireguard": {name: {} for name in nodes}}
    plan = build_plan(ScenarioSpec.model_validate(data), "zz99zz")
    assert all(len(w.ifname) <= 15 for w in plan.wireguard.values())
    assert len({w.ifname for w in plan.wireguard.values()}) == 120
    assert plan.wireguard["n119"].addresses[0] == ip_interface("100.64.0.120/32")


def test_direct_endpoint_and_keepalive():
    plan = plan_of(DIRECT)
    peer = plan.wireguard["alpha"].peer("beta")
    assert peer.endpoint == EndpointPlan(ip_address("198.18.1.2"), 51999, "beta")
    assert str(peer.endpoint) == "198.18.1.2:51999"
    assert peer.persistent_keepalive == 5
    assert peer.allowed_ips == (ip_network("100.64.0.2/32"), ip_network("fd00:64::2/128"))
    assert plan.wireguard["alpha"].listen_port == 51820
    assert plan.wireguard["beta"].listen_port == 51999


def test_symmetric_peering():
    plan = plan_of(DIRECT)
    back = plan.wireguard["beta"].peer("alpha")
    assert back is not None
    assert back.endpoint is None  # the listed side initiates; this side only answers
    assert back.persistent_keepalive == 0
    assert back.allowed_ips == (ip_network("100.64.0.1/32"), ip_network("fd00:64::1/128"))
    assert [p.node for p in plan.wireguard["beta"].peers] == ["alpha"]


def test_initiators_are_the_sides_that_know_an_endpoint():
    assert plan_of(DIRECT).initiators() == [("alpha", "beta")]


def test_wg_routes_cover_peer_allowed_ips():
    plan = plan_of(DIRECT)
    assert plan.wireguard["alpha"].routes == (ip_network("100.64.0.2/32"), ip_network("fd00:64::2/128"))


def test_backend_default_and_override():
    plan = build_plan(
        spec(
            """\
            nodes: {a: {}, b: {}}
            links: [{ends: [a, b]}]
            wireguard:
              a: {backend: kernel, peers: {b: {endpoint: b}}}
              b: {}
            """
        ),
        RUN,
        default_backend="wireguard-go",
    )
    assert plan.wireguard["a"].backend == "kernel"
    assert plan.wireguard["b"].backend == "wireguard-go"


# --- allowed_ips tokens -----------------------------------------------------------------


def test_allowed_ips_by_node_name_and_cidr():
    plan = plan_of(
        """\
        nodes: {a: {}, b: {}, c: {}}
        links: [{ends: [a, b]}]
        wireguard:
          a:
            peers:
              b: {endpoint: b, allowed_ips: [b, c, 10.50.1.7/16, "fd99::/64", b]}
          b: {}
          c: {address: [10.99.0.3/24]}
        """
    )
    assert plan.wireguard["a"].peer("b").allowed_ips == (
        ip_network("100.64.0.2/32"),
        ip_network("fd00:64::2/128"),
        ip_network("10.99.0.3/32"),  # a node's tunnel address as a host route
        ip_network("10.50.0.0/16"),  # host bits dropped
        ip_network("fd99::/64"),
    )


def test_allowed_ips_bad_token_raises_plan_error_with_path():
    with pytest.raises(PlanError) as exc:
        plan_of(
            """\
            nodes: {a: {}, b: {}}
            links: [{ends: [a, b]}]
            wireguard:
              a: {peers: {b: {allowed_ips: [b, nowhere]}}}
              b: {}
            """
        )
    assert exc.value.path == ("wireguard", "a", "peers", "b", "allowed_ips", 1)
    assert str(exc.value) == "'nowhere' is neither a CIDR nor a WireGuard node"


# --- endpoint forms -----------------------------------------------------------------------

ENDPOINTS = """\
nodes: {a: {}, b: {}}
links: [{ends: [a, b], ipv6: true}]
wireguard:
  a: {peers: {b: {endpoint: "%s"}}}
  b: {listen_port: 40000}
"""


@pytest.mark.parametrize(
    ("text", "address", "port", "node"),
    [
        ("b", "198.18.1.2", 40000, "b"),
        ("b:51000", "198.18.1.2", 51000, "b"),
        ("198.18.1.2:7000", "198.18.1.2", 7000, None),
        ("[2001:2:0:1::2]:7001", "2001:2:0:1::2", 7001, None),
    ],
)
def test_endpoint_forms(text, address, port, node):
    endpoint = plan_of(ENDPOINTS % text).wireguard["a"].peer("b").endpoint
    assert endpoint == EndpointPlan(ip_address(address), port, node)


def test_an_endpoint_step_resolves_against_the_plan_alone():
    plan = plan_of(ENDPOINTS % "b")
    path = ("steps", 0, "endpoint", "to")
    assert resolve_endpoint("b", plan, "a", path) == EndpointPlan(ip_address("198.18.1.2"), 40000, "b")  # b's listen port
    assert resolve_endpoint("a", plan, "b", path) == EndpointPlan(ip_address("198.18.1.1"), 51820, "a")
    with pytest.raises(PlanError) as exc:
        resolve_endpoint("b:http", plan, "a", path)
    assert exc.value.path == path


def test_every_peers_problems_come_in_file_order():
    with pytest.raises(PlanErrors) as exc:
        plan_of(
            """\
            nodes: {a: {}, b: {}, c: {}}
            links: [{ends: [a, b]}, {ends: [b, c]}]
            wireguard:
              a:
                peers:
                  b: {endpoint: "b:0", allowed_ips: [nowhere]}
                  c: {endpoint: a, allowed_ips: [elsewhere]}
              b: {}
              c: {}
            """
        )
    assert [e.path for e in exc.value.errors] == [
        ("wireguard", "a", "peers", "b", "allowed_ips", 0),
        ("wireguard", "a", "peers", "b", "endpoint"),
        ("wireguard", "a", "peers", "c", "allowed_ips", 0),
        ("wireguard", "a", "peers", "c", "endpoint"),
    ]


def test_ipv6_endpoint_is_bracketed():
    endpoint = plan_of(ENDPOINTS % "[2001:2:0:1::2]:7001").wireguard["a"].peer("b").endpoint
    assert str(endpoint) == "[2001:2:0:1::2]:7001"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("198.18.1.2", "an address endpoint needs a port: '198.18.1.2:51820'"),
        ("2001:2:0:1::2", "an address endpoint needs a port: '2001:2:0:1::2:51820'"),
        ("b:0", "bad port in 'b:0'"),
        ("b:70000", "bad port in 'b:70000'"),
        ("b:http", "bad port in 'b:http'"),
        ("nowhere:1", "'nowhere:1' is neither a node name, 'node:port', 'address:port' nor 'dns.name:port'"),
        ("a", "a node cannot be its own endpoint"),
    ],
)
def test_bad_endpoints(text, message):
    with pytest.raises(PlanError) as exc:
        plan_of(ENDPOINTS % text)
    assert str(exc.value) == message
    assert exc.value.path == ("wireguard", "a", "peers", "b", "endpoint")


# --- routing ------------------------------------------------------------------------------

CHAIN = """\
nodes:
  left: {}
  r1: {router: true}
  r2: {router: true}
  right: {}
links:
  - {ends: [left, r1]}
  - {ends: [r1, r2]}
  - {ends: [r2, right]}
wireguard:
  left: {peers: {right: {endpoint: right}}}
  right: {}
"""


def test_routes_across_two_routers_both_ways():
    plan = plan_of(CHAIN)
    # links: 0 = 198.18.1.0/24 (left .1, r1 .2), 1 = 198.18.2.0/24 (r1 .1, r2 .2), 2 = 198.18.3.0/24 (r2 .1, right .2)
    assert routes(plan, "left") == {
        ("198.18.2.0/24", "198.18.1.2", "eth0"),
        ("198.18.3.0/24", "198.18.1.2", "eth0"),
    }
    assert routes(plan, "right") == {
        ("198.18.1.0/24", "198.18.3.1", "eth0"),
        ("198.18.2.0/24", "198.18.3.1", "eth0"),
    }
    assert routes(plan, "r1") == {("198.18.3.0/24", "198.18.2.2", "eth1")}
    assert routes(plan, "r2") == {("198.18.1.0/24", "198.18.2.1", "eth0")}
    assert plan.nodes["r1"].forwards and plan.nodes["r2"].forwards
    assert not plan.nodes["left"].forwards


def test_endpoint_across_routers_and_underlay_reachability():
    plan = plan_of(CHAIN)
    assert plan.wireguard["left"].peer("right").endpoint.address == ip_address("198.18.3.2")
    assert plan.underlay_address("left", "right") == ip_address("198.18.3.2")
    assert plan.underlay_address("right", "left") == ip_address("198.18.1.1")
    assert plan.underlay_address("left", "left") is None


def test_hosts_do_not_forward():
    # r is a plain host in the middle: nothing routes through it
    plan = plan_of(
        """\
        nodes: {a: {}, r: {}, b: {}}
        links:
          - {ends: [a, r]}
          - {ends: [r, b]}
        """
    )
    assert plan.underlay_address("a", "b") is None
    # only r's own address on the far link is reachable from a (a host route via r)
    assert routes(plan, "a") == {("198.18.2.1/32", "198.18.1.2", "eth0")}


def test_ipv6_routes_use_ipv6_gateways():
    plan = plan_of(
        """\
        nodes: {a: {}, r: {router: true}, b: {}}
        links:
          - {ends: [a, r], ipv6: true}
          - {ends: [r, b], ipv6: true}
        """
    )
    assert routes(plan, "a") == {
        ("198.18.2.0/24", "198.18.1.2", "eth0"),
        ("2001:2:0:2::/64", "2001:2:0:1::2", "eth0"),
    }
    assert plan.underlay_address("a", "b", 6) == ip_address("2001:2:0:2::2")


NAT = """\
nodes:
  server: {}
  home: {nat: {outside: server, udp_timeout: 5s}}
  client: {}
links:
  - {ends: [client, home]}
  - {ends: [home, server]}
wireguard:
  server: {}
  client: {peers: {server: {endpoint: server, persistent_keepalive: 25}}}
"""


def test_nat_hides_its_inside():
    plan = plan_of(NAT)
    # link 0 = 198.18.1.0/24 (client .1, home .2); link 1 = 198.18.2.0/24 (home .1, server .2)
    assert routes(plan, "client") == {("198.18.2.0/24", "198.18.1.2", "eth0")}
    assert routes(plan, "server") == set()
    assert not any(r.destination.overlaps(ip_network("198.18.1.0/24")) for r in plan.nodes["server"].routes)
    assert plan.underlay_address("client", "server") == ip_address("198.18.2.2")
    assert plan.underlay_address("server", "client") is None
    # for an expected failure the test still needs an address to aim at
    assert plan.underlay_address("server", "client", reachable=False) == ip_address("198.18.1.1")


def test_nat_plan_names_outside_device_and_timeout():
    plan = plan_of(NAT)
    home = plan.nodes["home"]
    assert home.forwards
    assert home.nat is not None
    assert home.nat.outside_dev == "eth1"  # home's second interface: the link towards server
    assert home.nat.udp_timeout == 5.0
    assert plan.nodes["client"].nat is None


def test_nat_behind_a_router_hides_inside_from_everyone_outside():
    plan = plan_of(
        """\
        nodes:
          client: {}
          home: {nat: {outside: isp}}
          isp: {router: true}
          server: {}
        links:
          - {ends: [client, home]}
          - {ends: [home, isp]}
          - {ends: [isp, server]}
        """
    )
    inside = ip_network("198.18.1.0/24")
    for outside in ("isp", "server"):
        assert not any(r.destination.overlaps(inside) for r in plan.nodes[outside].routes), outside
    assert routes(plan, "client") == {
        ("198.18.2.0/24", "198.18.1.2", "eth0"),
        ("198.18.3.0/24", "198.18.1.2", "eth0"),
    }
    assert ("198.18.1.0/24", "198.18.2.1", "eth0") not in routes(plan, "isp")


def test_endpoint_behind_nat_is_a_plan_error():
    with pytest.raises(PlanError) as exc:
        plan_of(
            """\
            nodes:
              server: {}
              home: {nat: {outside: server}}
              client: {}
            links:
              - {ends: [client, home]}
              - {ends: [home, server]}
            wireguard:
              client: {}
              server: {peers: {client: {endpoint: client}}}
            """
        )
    assert exc.value.path == ("wireguard", "server", "peers", "client", "endpoint")
    assert "not reachable from 'server'" in str(exc.value)


# --- hub and spoke ---------------------------------------------------------------------------

HUB = """\
nodes:
  internet: {router: true}
  hub: {}
  spoke1: {}
  spoke2: {}
links:
  - {ends: [hub, internet]}
  - {ends: [spoke1, internet]}
  - {ends: [spoke2, internet]}
wireguard:
  hub: {}
  spoke1: {peers: {hub: {endpoint: hub, allowed_ips: [hub, spoke2]}}}
  spoke2: {peers: {hub: {endpoint: hub, allowed_ips: [hub, spoke1]}}}
"""


def test_hub_and_spoke_peer_for():
    plan = plan_of(HUB)
    hub, spoke1 = plan.wireguard["hub"], plan.wireguard["spoke1"]
    spoke2_addr = plan.tunnel_address("spoke2")
    assert spoke2_addr == ip_address("100.64.0.3")
    # spoke1 sends spoke2's traffic to the hub, the hub hands it to spoke2
    assert spoke1.peer_for(spoke2_addr).node == "hub"
    assert spoke1.peer_for(ip_address("fd00:64::3")).node == "hub"
    assert hub.peer_for(spoke2_addr).node == "spoke2"
    assert hub.peer_for(plan.tunnel_address("spoke1")).node == "spoke1"
    assert hub.peer_for(ip_address("10.1.2.3")) is None
    assert [p.node for p in hub.peers] == ["spoke1", "spoke2"]
    assert all(p.endpoint is None for p in hub.peers)
    assert plan.initiators() == [("spoke1", "hub"), ("spoke2", "hub")]
    assert ip_network("100.64.0.3/32") in spoke1.routes


def test_peer_for_prefers_most_specific():
    plan = plan_of(
        """\
        nodes: {a: {}, b: {}, c: {}}
        wireguard:
          a:
            peers:
              b: {allowed_ips: [0.0.0.0/0]}
              c: {allowed_ips: [10.1.0.0/16]}
          b: {}
          c: {}
        """
    )
    a = plan.wireguard["a"]
    assert a.peer_for(ip_address("10.1.2.3")).node == "c"
    assert a.peer_for(ip_address("10.2.0.1")).node == "b"
    assert a.peer_for(ip_address("fd00::1")) is None


# --- explicit addresses and IPv6 underlay ------------------------------------------------------


def test_explicit_link_addresses():
    plan = plan_of(
        """\
        nodes: {a: {}, r: {router: true}, b: {}}
        links:
          - {ends: [a, r], addresses: [10.1.0.1/30, 10.1.0.2/30]}
          - {ends: [r, b]}
        wireguard:
          a: {}
          b: {peers: {a: {endpoint: a}}}
        """
    )
    assert plan.veths[0].a.addresses == (ip_interface("10.1.0.1/30"),)
    assert plan.veths[0].b.addresses == (ip_interface("10.1.0.2/30"),)
    # automatic allocation is by link index: link 1 still gets 198.18.2.0/24
    assert plan.veths[1].a.addresses == (ip_interface("198.18.2.1/24"),)
    assert routes(plan, "b") == {("10.1.0.0/30", "198.18.2.1", "eth0")}
    assert routes(plan, "a") == {("198.18.2.0/24", "10.1.0.2", "eth0")}
    assert plan.wireguard["b"].peer("a").endpoint.address == ip_address("10.1.0.1")


def test_ipv6_underlay_flag():
    plan = plan_of(
        """\
        nodes: {a: {}, b: {}, c: {}}
        links:
          - {ends: [a, b], ipv6: true}
          - {ends: [b, c]}
          - {ends: [a, c], ipv6: true}
        """
    )
    assert plan.veths[0].a.addresses == (ip_interface("198.18.1.1/24"), ip_interface("2001:2:0:1::1/64"))
    assert plan.veths[0].b.addresses == (ip_interface("198.18.1.2/24"), ip_interface("2001:2:0:1::2/64"))
    assert plan.veths[1].a.addresses == (ip_interface("198.18.2.1/24"),)
    assert plan.veths[2].b.addresses == (ip_interface("198.18.3.2/24"), ip_interface("2001:2:0:3::2/64"))
    assert plan.underlay_address("a", "b", 6) == ip_address("2001:2:0:1::2")
    assert plan.underlay_address("a", "c", 6) == ip_address("2001:2:0:3::2")


def test_no_ipv6_route_through_a_hop_without_ipv6():
    # a—r has IPv4 only, r—b has IPv6 too: a has no IPv6 next hop towards b, so a must not get an
    # IPv6 route (a gateway-less route would make the kernel try neighbour discovery on a—r)
    plan = plan_of(
        """\
        nodes: {a: {}, r: {router: true}, b: {}}
        links:
          - {ends: [a, r]}
          - {ends: [r, b], ipv6: true}
        """
    )
    assert all(r.gateway is not None for r in plan.nodes["a"].routes)
    assert not any(r.destination.version == 6 for r in plan.nodes["a"].routes)
    assert plan.underlay_address("a", "b", 6) is None


def test_explicit_ipv6_addresses_are_not_doubled_by_ipv6_flag():
    plan = plan_of(
        """\
        nodes: {a: {}, b: {}}
        links:
          - {ends: [a, b], ipv6: true, addresses: ["2001:db8::1/64", "2001:db8::2/64"]}
        """
    )
    assert plan.veths[0].a.addresses == (ip_interface("2001:db8::1/64"),)


def test_interfaces_are_numbered_per_node():
    plan = plan_of(HUB)
    assert [p.ifname for p in plan.ports["internet"]] == ["eth0", "eth1", "eth2"]
    assert [p.ifname for p in plan.ports["spoke2"]] == ["eth0"]


def test_sysctls_and_mtu_pass_through():
    plan = plan_of(
        """\
        nodes:
          a: {sysctls: {net.ipv4.conf.all.rp_filter: 2}}
          b: {}
        links: [{ends: [a, b], mtu: 1400}]
        """
    )
    assert plan.nodes["a"].sysctls == {"net.ipv4.conf.all.rp_filter": "2"}
    assert plan.veths[0].mtu == 1400


def test_build_plan_is_deterministic():
    assert plan_of(HUB) == plan_of(HUB)


# --- addressing helpers ---------------------------------------------------------------------------


def test_addressing_limits():
    readable = addressing.MAX_READABLE_LINKS
    assert readable == 511
    assert addressing.underlay_pair(0, 1) == (ip_interface("198.18.1.1/24"), ip_interface("198.18.1.2/24"))
    assert addressing.underlay_pair(254, readable)[0] == ip_interface("198.18.255.1/24")
    assert addressing.underlay_pair(255, readable)[0] == ip_interface("198.19.0.1/24")
    assert addressing.underlay_pair(readable - 1, readable)[1] == ip_interface("198.19.255.2/24")
    # one link more: every link gets a /29, and the /15 holds 16 383 of them
    assert addressing.underlay_pair(0, readable + 1) == (ip_interface("198.18.0.9/29"), ip_interface("198.18.0.10/29"))
    last = addressing.underlay_pair(addressing.MAX_LINKS - 1, addressing.MAX_LINKS)
    assert last == (ip_interface("198.19.255.249/29"), ip_interface("198.19.255.250/29"))
    assert addressing.MAX_LINKS == 16383
    with pytest.raises(addressing.AddressesExhausted, match="at most 16383"):
        addressing.underlay_pair(0, addressing.MAX_LINKS + 1)
    with pytest.raises(ValueError):
        addressing.tunnel_addresses(0)
    assert addressing.tunnel_addresses(10_000)[0] == ip_interface("100.64.39.16/32")
    assert addressing.underlay_pair_v6(0)[0] == ip_interface("2001:2:0:1::1/64")
    assert addressing.underlay_pair_v6(addressing.MAX_LINKS_V6 - 1)[1] == ip_interface("2001:2:0:ffff::2/64")
    with pytest.raises(addressing.AddressesExhausted):
        addressing.underlay_pair_v6(addressing.MAX_LINKS_V6)


def test_every_automatic_link_subnet_is_its_own_at_either_size():
    for count in (addressing.MAX_READABLE_LINKS, addressing.MAX_LINKS):
        subnets = [addressing.link_subnet(i, count) for i in range(count)]
        assert len(set(subnets)) == count
        assert all(s.subnet_of(addressing.UNDERLAY_V4) for s in (subnets[0], subnets[-1]))
        ordered = sorted(subnets)
        assert all(a.broadcast_address < b.network_address for a, b in zip(ordered, ordered[1:]))


def test_more_links_than_automatic_addresses_is_a_plan_error_on_links_not_a_traceback():
    count = addressing.MAX_LINKS + 1
    data = {
        "name": "too-many-links",
        "nodes": {"hub": {"router": True}, **{f"n{i}": {} for i in range(count)}},
        "links": [{"ends": [f"n{i}", "hub"]} for i in range(count)],
    }
    with pytest.raises(PlanErrors) as caught:
        build_plan(ScenarioSpec.model_validate(data), RUN)
    (error,) = caught.value.errors
    assert error.path == ("links",)
    assert "16384 links" in str(error) and "at most 16383" in str(error) and "addresses:" in str(error)


def test_a_topology_of_more_than_511_links_gets_a_29_per_link():
    count = addressing.MAX_READABLE_LINKS + 1
    data = {
        "name": "many-links",
        "nodes": {"hub": {"router": True}, **{f"n{i}": {"gateway": "hub"} for i in range(count)}},
        "links": [{"ends": [f"n{i}", "hub"]} for i in range(count)],
    }
    plan = build_plan(ScenarioSpec.model_validate(data), RUN)
    first, last = plan.veths[0], plan.veths[-1]
    assert first.a.addresses == (ip_interface("198.18.0.9/29"),) and first.b.addresses == (ip_interface("198.18.0.10/29"),)
    assert last.a.addresses == (ip_interface(f"198.18.16.1/29"),)
    assert plan.nodes["n0"].routes[0].destination == ip_network("0.0.0.0/0")


def test_a_renumbered_end_takes_a_spare_address_of_its_subnet():
    from ipaddress import ip_address, ip_network

    used = {ip_address("198.18.1.1"), ip_address("198.18.1.2")}
    assert addressing.spare_address(ip_network("198.18.1.0/24"), used) == ip_address("198.18.1.100")
    used |= {ip_address("198.18.1.100")}
    assert addressing.spare_address(ip_network("198.18.1.0/24"), used) == ip_address("198.18.1.101")
    # a /29 of a large topology: below .100, so the highest free host
    small = ip_network("198.18.0.8/29")
    assert addressing.spare_address(small, {ip_address("198.18.0.9"), ip_address("198.18.0.10")}) == ip_address("198.18.0.14")
    assert addressing.spare_address(ip_network("198.18.0.8/30"), {ip_address("198.18.0.9"), ip_address("198.18.0.10")}) is None
    assert addressing.spare_address(ip_network("127.0.0.0/8"), {ip_address("127.0.0.1")}) == ip_address("127.0.0.100")


# --- link conditions ------------------------------------------------------------------------------


def test_conditions_are_the_plans_own_data():
    settings = Impairment.model_validate(
        {"delay": "20ms", "jitter": "2ms", "loss": "1%", "rate": "10mbit", "queue": 30, "gilbert_elliott": {"p": 1, "r": 10}}
    )
    assert conditions_of(settings) == Conditions(
        delay=0.02, jitter=0.002, loss=1.0, rate=10e6, queue=30, gilbert_elliott=GilbertElliottLoss(1.0, 10.0, 100.0, 0.0)
    )
    assert conditions_of(None) == Conditions() and Conditions().empty
    # a link's own fields (ends, name, ...) are not conditions
    assert conditions_of(LinkSpec(ends=("a", "b"), name="x", mtu=1400)).empty


def test_each_direction_is_the_link_with_its_towards_on_top():
    link = LinkSpec.model_validate({"ends": ["a", "b"], "delay": "20ms", "loss": "2%", "towards": {"b": {"loss": "5%"}}})
    assert egress(link, "b") == Conditions(delay=0.02, loss=5.0)
    assert egress(link, "a") == Conditions(delay=0.02, loss=2.0)
    assert egress(LinkSpec(ends=("a", "b")), "a") is None  # nothing set: clean
    bursty = LinkSpec.model_validate({"ends": ["a", "b"], "towards": {"a": {"gilbert_elliott": {"p": 1, "r": 10}}}})
    assert egress(bursty, "a").gilbert_elliott == GilbertElliottLoss(1.0, 10.0)


def test_a_link_step_goes_on_top_of_the_current_conditions():
    current = Conditions(delay=0.02, loss=2.0)
    step = LinkArgs.model_validate({"name": "a-b", "loss": "1%", "towards": {"b": {"rate": "1mbit"}}})
    assert egress(step, "b", current) == Conditions(delay=0.02, loss=1.0, rate=1e6)
    assert egress(step, "a", current) == Conditions(delay=0.02, loss=1.0)
    assert egress(LinkArgs(name="a-b"), "a", None) is None
    assert Conditions(delay=0.02, gilbert_elliott=GilbertElliottLoss(1.0, 10.0)).settings() == {
        "delay": 0.02, "gilbert_elliott": {"p": 1.0, "r": 10.0, "bad_loss": 100.0, "good_loss": 0.0}
    }


def test_planned_veths_carry_conditions_per_sending_end():
    plan = plan_of("""\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b], delay: 10ms, towards: {a: {rate: 1mbit}}}]
        """)
    veth = plan.veths[0]
    assert veth.egress("a") == Conditions(delay=0.01)  # a sends towards b
    assert veth.egress("b") == Conditions(delay=0.01, rate=1e6)
