"""`lans:`: shared segments from the file to the plan (pure): groups expand into
members, every member gets an address of one subnet, conditions land on the right
port, routes cross a LAN through a router on it, and every mistake is a file:line error."""

import textwrap
from ipaddress import ip_address, ip_interface, ip_network

import pytest

from harness.errors import ScenarioError
from harness.plan.naming import NAMESPACE_RE, WG_IFNAME_RE, lan_namespace_name, run_of, wg_ifname
from harness.plan.network import build_plan
from harness.scenario.load import load_text
from harness.scenario.model import MAX_LAN_MEMBERS

FILE = "scenarios/lan.yaml"


def load(text: str):
    return load_text(textwrap.dedent(text), FILE)[0].spec


def errors(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as exc:
        load_text(textwrap.dedent(text), FILE)
    return str(exc.value).splitlines()


HUB = """\
nodes:
  hub: {}
  spoke: {count: 3}
lans:
  - name: office
    members: [hub, spoke]
    delay: 2ms
    towards: {hub: {rate: 10mbit}}
    from: {spoke: {loss: 1%}}
wireguard:
  hub:
    peers:
      spoke: {allowed_ips: [spoke]}
  spoke:
    peers:
      hub: {endpoint: hub, allowed_ips: [100.64.0.0/16]}
"""


def test_a_group_on_a_lan_is_every_member_in_order_on_one_subnet():
    spec = load(HUB)
    (lan,) = spec.lans
    assert lan.members == ["hub", "spoke1", "spoke2", "spoke3"]
    assert set(lan.from_) == {"spoke1", "spoke2", "spoke3"}
    plan = build_plan(spec, "abc123")
    (planned,) = plan.lans
    assert planned.name == "office" and planned.index == 0 and planned.position == 1
    addresses = [p.addresses for p in planned.members]
    assert [str(a[0]) for a in addresses] == ["198.19.255.1/24", "198.19.255.2/24", "198.19.255.3/24", "198.19.255.4/24"]
    assert all(p.ifname == "eth0" and p.link_index == 0 for p in planned.members)
    # a spoke's endpoint for the hub is the hub's LAN address
    (peer,) = plan.wireguard["spoke2"].peers
    assert peer.endpoint.address == ip_address("198.19.255.1")
    # the LAN's own conditions arrive at every member; towards: only at the hub; from: what each spoke sends
    assert planned.arriving["hub"].rate == 10_000_000 and planned.arriving["hub"].delay == 0.002
    assert planned.arriving["spoke1"].delay == 0.002 and planned.arriving["spoke1"].rate is None
    assert set(planned.sending) == {"spoke1", "spoke2", "spoke3"} and planned.sending["spoke3"].loss == 1


def test_a_thousand_spokes_get_a_lan_big_enough_and_neighbour_entries_per_peer():
    spec = load(HUB.replace("count: 3", "count: 1000"))
    plan = build_plan(spec, "abc123")
    (lan,) = plan.lans
    subnet = lan.members[0].addresses[0].network
    assert subnet.prefixlen == 22 and subnet.subnet_of(ip_network("198.18.0.0/15"))
    assert len({p.addresses[0] for p in lan.members}) == 1001
    assert all(p.addresses[0].network == subnet for p in lan.members)
    # the hub talks to all 1 000; a spoke only to the hub (its one peer) and the ARP of the hub's reply
    assert plan.neighbour_entries()[4] == 1000 + 1000 * 2


def test_given_subnets_links_and_lans_share_the_pool_without_overlapping():
    spec = load(
        """\
        nodes: {a: {}, b: {}, c: {}, r: {router: true}}
        links:
          - {ends: [a, r]}
        lans:
          - {members: [r, b, c], ipv6: true}
          - {members: [a, b], subnet: 10.9.0.0/29, subnet6: 'fd00:9::/64'}
        """
    )
    plan = build_plan(spec, "abc123")
    link_net = plan.veths[0].a.addresses[0].network
    lan1, lan2 = plan.lans
    assert lan1.name == "lan1" and lan2.name == "lan2" and (lan1.index, lan2.index) == (1, 2)
    assert not link_net.overlaps(lan1.members[0].addresses[0].network)
    assert [a.version for a in lan1.member("b").addresses] == [4, 6]
    assert lan2.member("a").addresses == (ip_interface("10.9.0.1/29"), ip_interface("fd00:9::1/64"))
    # a node's links come first, then its LANs, in file order
    assert [p.ifname for p in plan.ports["a"]] == ["eth0", "eth1"] and [p.ifname for p in plan.ports["b"]] == ["eth0", "eth1"]


def test_two_lans_joined_by_a_router_route_through_it_and_a_nat_can_face_a_lan():
    spec = load(
        """\
        nodes:
          r: {router: true}
          home: {nat: {outside: isp}}
          isp: {router: true}
          pc: {gateway: home}
          x: {}
          y: {}
        links:
          - {ends: [pc, home]}
        lans:
          - {name: access, members: [isp, home, x]}
          - {name: core, members: [isp, y]}
        """
    )
    plan = build_plan(spec, "abc123")
    access, core = plan.lans
    # y, on the core LAN, reaches the access LAN through isp's core address
    (route,) = [r for r in plan.nodes["y"].routes if r.destination == access.member("x").addresses[0].network]
    assert route.gateway == core.member("isp").addresses[0].ip
    # the NAT's outside is its access-LAN port
    assert plan.nodes["home"].nat.outside_dev == access.member("home").ifname


def test_lan_mistakes_are_file_line_errors():
    # the shape first: each field's own value
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        lans:
          - {members: [a, b], loss: 150%}
          - {members: [a, b], subnet: 10.0.0.1/24}
          - {members: [a]}
        """
    ) == [
        f"{FILE}:3: lans[0].loss: percentage must be within 0%..100%, got '150%'",
        f"{FILE}:4: lans[1].subnet: 10.0.0.1/24 has host bits set: the subnet is 10.0.0.0/24",
        f"{FILE}:5: lans[2].members: expected at least 2 items",
    ]
    # then what the names and subnets refer to
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links:
          - {ends: [a, b], name: shared}
        lans:
          - members: [a, b, c, a]
            subnet: 'fd00::/64'
            towards: {z: {delay: 1ms}}
          - {name: shared, members: [a, b], subnet: 10.0.0.0/31, subnet6: 10.1.0.0/24}
        """
    ) == [
        f"{FILE}:5: lans[0].members[2]: unknown node 'c' (known nodes: a, b)",
        f"{FILE}:5: lans[0].members[3]: 'a' is on this LAN twice (members[0] too)",
        f"{FILE}:6: lans[0].subnet: fd00::/64 is IPv6: `subnet` is the IPv4 one, `subnet6` the IPv6 one",
        f"{FILE}:7: lans[0].towards.z: 'z' is not a member of lan1 (known members: a, b, c)",
        f"{FILE}:8: lans[1].name: 'shared' also names links[0]: give one a `name:`",
        f"{FILE}:8: lans[1].subnet: 10.0.0.0/31 has 0 host addresses for 2 members",
        f"{FILE}:8: lans[1].subnet6: 10.1.0.0/24 is IPv4: `subnet6` is the IPv6 one, `subnet` the IPv4 one",
    ]


def test_steps_cannot_change_a_lan_or_move_its_members_and_a_firewall_cannot_single_out_a_lan_neighbour():
    found = errors(
        """\
        nodes:
          a: {firewall: [{drop: udp, from: b}]}
          b: {}
          c: {}
        links:
          - {ends: [a, c]}
        lans:
          - {members: [a, b, c]}
        steps:
          - link: {name: lan1, loss: 5%}
          - roam: {node: b, renumber: true}
        """
    )
    assert found == [
        f"{FILE}:2: nodes.a.firewall[0].from: 'b' is a neighbour on lan1, whose port 'a' shares with every other member: "
        "a rule `from:` one node needs a link of its own to it",
        f"{FILE}:10: steps[0].link.name: 'lan1' is a LAN: this step acts on links (a LAN's members and conditions are fixed for the run)",
        f"{FILE}:11: steps[1].roam.node: 'b' is on LAN 'lan1': a LAN member cannot roam (give the roaming node links of its own)",
    ]


def test_more_members_than_one_bridge_has_ports_is_an_error_at_the_lan():
    found = errors(
        f"""\
        nodes:
          hub: {{}}
          spoke: {{count: {MAX_LAN_MEMBERS}}}
        lans:
          - members: [hub, spoke]
        """
    )
    assert found == [
        f"{FILE}:5: lans[0].members: {MAX_LAN_MEMBERS + 1} members: at most {MAX_LAN_MEMBERS} on one LAN (one Linux "
        "bridge's ports); split them into LANs joined by a router node"
    ]


def test_a_mistake_in_a_groups_lan_conditions_is_one_line_not_one_per_member():
    found = errors(
        """\
        nodes:
          hub: {}
          spoke: {count: 50}
        lans:
          - members: [hub, spoke]
            from: {spoke: {loss: 300%}}
        """
    )
    assert found == [f"{FILE}:6: lans[0].from.spoke.loss: percentage must be within 0%..100%, got '300%' (in all 50 members of group 'spoke')"]


def test_bridge_namespaces_and_large_wireguard_indexes_are_the_runs_own():
    assert run_of(lan_namespace_name("abc123", 3)) == "abc123"
    assert NAMESPACE_RE.match("wgh-abc123-lan-12") and not NAMESPACE_RE.match("wgh-abc123-lan-")
    # a node may be called lan3: its namespace differs from the third LAN's bridge's
    assert lan_namespace_name("abc123", 3) != "wgh-abc123-lan3"
    for index in (1, 999, 1000, 10_001):
        name = wg_ifname("abc123", index)
        assert len(name) <= 15 and WG_IFNAME_RE.match(name) and run_of(name) == "abc123"
