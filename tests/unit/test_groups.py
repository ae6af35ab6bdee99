"""Node groups (`count:`) and the `reach` step: expansion, names, errors with file:line."""

import re
import textwrap

import pytest

from harness.errors import ScenarioError
from harness.plan.naming import NAMESPACE_RE, WG_IFNAME_RE, namespace_name
from harness.plan.network import build_plan
from harness.scenario.load import load_data, load_text
from harness.scenario.groups import expand_groups
from harness.scenario.fields import NAME_PATTERN
from harness.scenario.model import MAX_GROUP_SIZE
from harness.scenario.steps.mesh import reach_nodes, reach_pairs
from harness.scenario.yamlsource import parse_yaml

FILE = "scenarios/x.yaml"

MESH = """\
nodes:
  switch: {router: true}
  peer: {count: 4}
links:
  - {ends: [peer, switch]}
wireguard:
  peer:
    peers:
      peer: {endpoint: peer}
steps:
  - reach: {among: peer, within: 10s}
"""


def load(text):
    return load_text(textwrap.dedent(text), FILE)


def errors(text):
    with pytest.raises(ScenarioError) as exc:
        load(text)
    return [str(p) for p in exc.value.problems]


def test_group_expands_into_members_links_and_a_full_mesh():
    (case,) = load(MESH)
    spec = case.spec
    members = [f"peer{i}" for i in range(1, 5)]
    assert list(spec.nodes) == ["switch"] + members
    assert [link.ends for link in spec.links] == [(m, "switch") for m in members]
    assert list(spec.wireguard) == members
    for m in members:
        peers = spec.wireguard[m].peers
        assert sorted(peers) == sorted(set(members) - {m})  # every other member, never itself
        assert all(p.endpoint == name for name, p in peers.items())  # endpoint: peer → that member
    assert spec.steps[0].reach.among == members


def test_expanded_mesh_plans_routes_endpoints_and_names():
    (case,) = load(MESH)
    plan = build_plan(case.spec, "abc123")
    for m in ("peer1", "peer4"):
        assert NAMESPACE_RE.match(namespace_name(plan.run_id, m))
        wg = plan.wireguard[m]
        assert WG_IFNAME_RE.match(wg.ifname) and len(wg.ifname) <= 15
        assert len(wg.peers) == 3 and all(p.endpoint is not None for p in wg.peers)
        # the switch routes between the members' links: 3 routes to the others' /24s
        assert len(plan.nodes[m].routes) == 3
    assert plan.wireguard["peer1"].peer("peer3").endpoint.address == plan.ports["peer3"][0].addresses[0].ip
    assert len({namespace_name(plan.run_id, n) for n in plan.nodes}) == len(plan.nodes)
    assert len(reach_pairs(reach_nodes(plan.wireguard, case.spec.steps[0].reach))) == 12


def test_matrix_sets_the_group_size_and_names_stay_within_limits():
    text = MESH.replace("peer: {count: 4}", "peer: {count: 2}") + "matrix:\n  nodes.peer.count: [5, 25]\n"
    cases = load(text)
    assert [c.case_id for c in cases] == ["count=5", "count=25"]
    assert [len(c.spec.wireguard) for c in cases] == [5, 25]
    big = cases[-1]
    assert sum(len(w.peers) for w in big.spec.wireguard.values()) == 25 * 24
    plan = build_plan(big.spec, "zzzzzz")
    names = {w.ifname for w in plan.wireguard.values()}
    assert len(names) == 25 and all(len(n) <= 15 and WG_IFNAME_RE.match(n) for n in names)
    assert NAMESPACE_RE.match(namespace_name(plan.run_id, "peer25"))


HUB = """\
nodes:
  hub: {router: true}
  spoke: {count: 4, gateway: hub}
links:
  - {ends: [spoke, hub]}
wireguard:
  hub:
    peers:
      spoke: {allowed_ips: [spoke]}
  spoke:
    peers:
      hub: {endpoint: hub, allowed_ips: [100.64.0.0/16]}
"""


def test_largest_group_expands_to_valid_distinct_names():
    doc = parse_yaml(HUB.replace("count: 4", f"count: {MAX_GROUP_SIZE}"), FILE)
    data = expand_groups(doc).data
    members = [n for n in data["nodes"] if n != "hub"]
    assert len(set(members)) == MAX_GROUP_SIZE and all(re.match(NAME_PATTERN, n) for n in members)
    assert len(data["wireguard"]["hub"]["peers"]) == MAX_GROUP_SIZE
    assert all(list(data["wireguard"][m]["peers"]) == ["hub"] for m in members)
    assert len(data["links"]) == MAX_GROUP_SIZE


def test_a_group_past_the_limit_is_a_file_line_error():
    (problem,) = errors(HUB.replace("count: 4", f"count: {MAX_GROUP_SIZE + 1}"))
    assert problem.startswith(f"{FILE}:3: nodes.spoke.count: must be between 1 and {MAX_GROUP_SIZE}")


def test_a_full_mesh_too_large_to_plan_is_refused_before_it_is_expanded():
    # 1 001 members in a full mesh: 1 001 × 1 000 peer entries, one past the limit's mesh
    (problem,) = errors(MESH.replace("count: 4", "count: 1001"))
    assert problem.startswith(f"{FILE}:9: wireguard.peer.peers.peer: the groups expand into 1,001,000 peer entries")
    assert "through a hub" in problem
    # a hub whose spokes each list every spoke in allowed_ips: 2 000 × 2 001, and the hub's 2 000
    hub = HUB.replace("count: 4", "count: 2000").replace("allowed_ips: [100.64.0.0/16]", "allowed_ips: [hub, spoke]")
    (problem,) = errors(hub)
    assert problem.startswith(f"{FILE}:12: wireguard.spoke.peers.hub.allowed_ips: the groups expand into 4,004,000 allowed_ips entries")


def test_group_peering_with_a_single_node_and_allowed_ips_of_a_group():
    (case,) = load(
        """\
        nodes:
          hub: {router: true}
          spoke: {count: 3}
        links:
          - {ends: [spoke, hub], name: up, towards: {spoke: {rate: 10mbit}}}
        wireguard:
          hub: {}
          spoke:
            peers:
              hub: {endpoint: hub, allowed_ips: [hub, spoke]}
        """
    )
    spec = case.spec
    assert [link.name for link in spec.links] == ["up-spoke1", "up-spoke2", "up-spoke3"]
    assert [list(link.towards) for link in spec.links] == [["spoke1"], ["spoke2"], ["spoke3"]]
    # another group in allowed_ips means all its members
    assert spec.wireguard["spoke2"].peers["hub"].allowed_ips == ["hub", "spoke1", "spoke2", "spoke3"]


def test_reach_defaults_to_every_wireguard_node_and_accepts_a_list():
    (case,) = load(MESH.replace("among: peer, ", "among: [peer1, peer2], "))
    plan = build_plan(case.spec, "abc123")
    assert reach_nodes(plan.wireguard, case.spec.steps[0].reach) == ["peer1", "peer2"]
    (case,) = load(MESH.replace("among: peer, ", ""))
    plan = build_plan(case.spec, "abc123")
    # every WireGuard node of the plan, in file order (the switch has none)
    assert reach_nodes(plan.wireguard, case.spec.steps[0].reach) == ["peer1", "peer2", "peer3", "peer4"]


def test_load_data_expands_groups_too():
    (case,) = load_data(
        {
            "nodes": {"s": {"router": True}, "n": {"count": 3}},
            "links": [{"ends": ["n", "s"]}],
            "wireguard": {"n": {"peers": {"n": {"endpoint": "n"}}}},
            "steps": [{"reach": {"among": "n"}}],
        }
    )
    assert list(case.spec.wireguard) == ["n1", "n2", "n3"]


# --- bad input: file:line: field: message ------------------------------------------


@pytest.mark.parametrize(
    "count, message",
    [
        ("0", f"scenarios/x.yaml:3: nodes.peer.count: must be between 1 and {MAX_GROUP_SIZE}"),
        (str(MAX_GROUP_SIZE + 1), f"scenarios/x.yaml:3: nodes.peer.count: must be between 1 and {MAX_GROUP_SIZE}"),
        ("many", "scenarios/x.yaml:3: nodes.peer.count: expected a whole number of nodes, got 'many'"),
        ("true", "scenarios/x.yaml:3: nodes.peer.count: expected a whole number of nodes, got True"),
    ],
)
def test_bad_counts(count, message):
    assert errors(MESH.replace("count: 4", f"count: {count}")) == [message]


def test_bad_count_from_the_matrix_points_at_the_matrix_line():
    problems = errors(MESH + "matrix:\n  nodes.peer.count: [3, 0]\n")
    assert problems == [f"scenarios/x.yaml:13: nodes.peer.count: must be between 1 and {MAX_GROUP_SIZE}"]


def test_member_names_too_long():
    text = MESH.replace("peer", "abcdefghijklmn")  # 14 characters + 2 digits
    assert errors(text.replace("count: 4", "count: 12")) == [
        "scenarios/x.yaml:3: nodes.abcdefghijklmn: members are named abcdefghijklmn1 … abcdefghijklmn12: "
        "'abcdefghijklmn12' is not a valid node name (at most 15 characters); shorten the group name"
    ]


def test_member_name_clashes_with_a_node():
    assert errors(MESH.replace("  switch: {router: true}", "  switch: {router: true}\n  peer2: {}")) == [
        "scenarios/x.yaml:3: nodes.peer2: 'peer2' is also a member of group 'peer' (peer1 … peer4): rename one"
    ]


def test_link_between_two_groups_and_link_with_addresses():
    assert errors(MESH.replace("[peer, switch]}", "[peer, peer]}")) == [
        "scenarios/x.yaml:5: links[0].ends: a link joins a group to one node (each member gets its own link): 'peer' and 'peer' are both groups"
    ]
    assert errors(MESH.replace("[peer, switch]}", "[peer, switch], addresses: [10.0.0.1/24, 10.0.0.2/24]}")) == [
        "scenarios/x.yaml:5: links[0].addresses: each member of group 'peer' gets its own link and subnet: leave `addresses` out"
    ]


def test_other_steps_must_name_a_member_not_the_group():
    text = MESH + "  - ping: {from: peer1, to: peer}\n"
    assert errors(text) == [
        "scenarios/x.yaml:12: steps[1].ping.to: 'peer' is a group of 4 nodes (peer1 … peer4): "
        "name one member, or check them all with `reach: {among: peer}`"
    ]


def test_errors_in_expanded_values_point_at_the_template_line():
    # a bad keepalive in the group's peer entry: at line 9, once, not once per expanded entry
    problems = errors(MESH.replace("{endpoint: peer}", "{endpoint: peer, persistent_keepalive: -1}"))
    assert problems == ["scenarios/x.yaml:9: wireguard.peer.peers.peer.persistent_keepalive: must be ≥ 0 (in 12 expansions of group 'peer')"]
    # a typo in the group's endpoint: the planner's error, at the template line
    problems = errors(MESH.replace("{endpoint: peer}", "{endpoint: switch:70000}"))
    assert problems == ["scenarios/x.yaml:9: wireguard.peer.peers.peer.endpoint: bad port in 'switch:70000' (in 12 expansions of group 'peer')"]


def test_reach_among_errors():
    assert errors(MESH.replace("among: peer,", "among: pear,")) == [
        "scenarios/x.yaml:11: steps[0].reach.among: 'pear' is not a node group (a node with `count:`) (did you mean 'peer'?)"
    ]
    assert errors(MESH.replace("among: peer,", "among: peer1,")) == [  # a member is not a group
        "scenarios/x.yaml:11: steps[0].reach.among: 'peer1' is not a node group (a node with `count:`) (did you mean 'peer'?)"
    ]
    plain = "nodes: {a: {}, b: {}}\nlinks: [{ends: [a, b]}]\nwireguard: {a: {peers: {b: {endpoint: b}}}, b: {}}\nsteps:\n  - reach: {among: a}\n"
    assert errors(plain) == [
        "scenarios/x.yaml:5: steps[0].reach.among: 'a' is not a node group (a node with `count:`): "
        "name a group or list the nodes, e.g. [a, b, c]"
    ]
    assert errors(MESH.replace("among: peer,", "among: [peer1, switch, peer1],")) == [
        "scenarios/x.yaml:11: steps[0].reach.among[1]: 'switch' has no wireguard section",
        "scenarios/x.yaml:11: steps[0].reach.among[2]: 'peer1' is listed twice",
    ]
    assert errors(MESH.replace("among: peer,", "among: [peer1],")) == [
        "scenarios/x.yaml:11: steps[0].reach.among: reach needs at least two WireGuard nodes"
    ]


def test_reach_between_nodes_that_are_not_peers_needs_expect_fail():
    text = """\
    nodes:
      r: {router: true}
      a: {}
      b: {}
      c: {}
    links:
      - {ends: [a, r]}
      - {ends: [b, r]}
      - {ends: [c, r]}
    wireguard:
      a: {peers: {b: {endpoint: b}}}
      b: {}
      c: {}
    steps:
      - reach: {within: 2s}
    """
    assert errors(text) == [
        "scenarios/x.yaml:15: steps[0].reach: 4 of 6 pairs cannot pass: no peer of the sender has the target in its "
        "allowed_ips (a → c, b → c, c → a, c → b); peer them, or add `expect: fail`"
    ]
    (case,) = load(text.replace("{within: 2s}", "{within: 2s, expect: fail}"))
    assert case.spec.steps[0].reach.expect == "fail"


def test_a_mistake_in_a_group_template_is_one_problem_saying_how_many_members_it_hits():
    problems = errors(MESH.replace("peer: {count: 4}", "peer: {count: 4, sysctls: {kernel.x: 1}}"))
    assert len(problems) == 1 and problems[0].startswith(f"{FILE}:3: nodes.peer.sysctls")
    assert problems[0].endswith("(in all 4 members of group 'peer')")
    # a mistake only some members make keeps its count; one member's stays as it was
    problems = errors(MESH + "  - ping: {from: peer9, to: peer1}\n")
    assert len(problems) == 1 and "peer9" in problems[0] and "members of group" not in problems[0]
