"""Scenario validation: every problem as `file:line: field: message`."""

import textwrap

import pytest

from harness.errors import Problem, ScenarioError
from harness.scenario.load import load_data, load_text
from harness.scenario.model import STEP_KINDS

FILE = "scenarios/x.yaml"


def load(text):
    return load_text(textwrap.dedent(text), FILE)


def errors(text):
    with pytest.raises(ScenarioError) as exc:
        load(text)
    messages = str(exc.value).splitlines()
    assert messages == [str(p) for p in exc.value.problems]
    return messages


# --- a valid file, for contrast ---------------------------------------------------

VALID = """\
name: ok
nodes:
  a: {}
  b: {}
links:
  - {ends: [a, b]}
wireguard:
  a:
    peers:
      b: {endpoint: b}
  b: {}
steps:
  - handshake: {between: [a, b], within: 2s}
  - ping: {from: a, to: b, count: 2, max_loss: 50%}
  - sleep: 100ms
"""


def test_valid_file_loads_into_one_case():
    (case,) = load(VALID)
    assert case.id == "ok"
    assert case.file == FILE
    assert case.case_id is None
    assert len(case.file_sha256) == 64
    assert case.spec.steps[0].handshake.within == 2.0
    assert case.spec.steps[1].ping.max_loss == 50.0
    assert case.spec.steps[2].sleep == pytest.approx(0.1)


# --- shapes and types (pydantic) -----------------------------------------------------


def test_unknown_node_in_link_ends():
    assert errors(
        """\
        nodes:
          a: {}
          b: {}
        links:
          - ends: [a, b]
          - ends:
              - a
              - c
        """
    ) == [f"{FILE}:8: links[1].ends[1]: unknown node 'c' (known nodes: a, b)"]


def test_unknown_key_with_did_you_mean():
    assert errors(
        """\
        nodes:
          a: {}
          b: {}
        links:
          - ends: [a, b]
            mtus: 1400
        """
    ) == [f"{FILE}:6: links[0].mtus: unknown key 'mtus' (did you mean 'mtu'?)"]


def test_unknown_key_in_peer_and_top_level():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        wireguard:
          a:
            peers:
              b: {endpiont: b}
          b: {}
        stpes: []
        """
    ) == [
        f"{FILE}:6: wireguard.a.peers.b.endpiont: unknown key 'endpiont' (did you mean 'endpoint'?)",
        f"{FILE}:8: stpes: unknown key 'stpes' (did you mean 'steps'?)",
    ]


def test_unknown_key_without_close_match_has_no_hint():
    assert errors(
        """\
        nodes:
          a: {colour: red}
        """
    ) == [f"{FILE}:2: nodes.a.colour: unknown key 'colour'"]


def test_unknown_step_kind_with_hint():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        steps:
          - sleep: 1s
          - pnig: {from: a, to: b}
        """
    ) == [f"{FILE}:4: steps[1]: unknown step 'pnig' (did you mean 'ping'?)"]


def test_unknown_step_kind_without_hint_lists_known_steps():
    assert errors(
        """\
        nodes: {a: {}}
        steps:
          - traceroute: {}
        """
    ) == [f"{FILE}:3: steps[0]: unknown step 'traceroute'; known steps: {', '.join(STEP_KINDS)}"]


def test_step_with_two_keys():
    (message,) = errors(
        """\
        nodes: {a: {}}
        steps:
          - {sleep: 1s, ping: {}}
        """
    )
    assert message == f"{FILE}:3: steps[0]: a step has exactly one key, its kind; found sleep, ping"


def test_bad_duration():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        wireguard:
          a: {peers: {b: {endpoint: b}}}
          b: {}
        steps:
          - handshake:
              between: [a, b]
              within: 3 parsecs
        """
    ) == [f"{FILE}:9: steps[0].handshake.within: expected a duration like '500ms' or '3s', got '3 parsecs'"]


def test_bad_percentage():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        wireguard: {a: {peers: {b: {endpoint: b}}}, b: {}}
        steps:
          - ping: {from: a, to: b, max_loss: 120%}
        """
    ) == [f"{FILE}:5: steps[0].ping.max_loss: percentage must be within 0%..100%, got '120%'"]


def test_wrong_types():
    assert errors(
        """\
        nodes:
          a: {router: maybe}
          b: {}
        links:
          - ends: [a, b]
            mtu: big
        """
    ) == [
        f"{FILE}:2: nodes.a.router: expected true or false, got 'maybe'",
        f"{FILE}:6: links[0].mtu: expected a whole number, got 'big'",
    ]


def test_missing_required_field_points_at_parent():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links:
          - mtu: 1400
        """
    ) == [f"{FILE}:3: links[0].ends: required but missing"]


def test_bad_node_name_as_mapping_key():
    # the offending text is the key, not the node's (empty) settings
    assert errors(
        """\
        nodes:
          Bad-Name: {}
        """
    ) == [
        f"{FILE}:2: nodes.Bad-Name: 'Bad-Name' is not a valid name: use lowercase letters, digits and '_', "
        "at most 15 characters, starting with a letter"
    ]


def test_bad_node_name_as_value():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        wireguard: {a: {}, b: {}}
        steps:
          - ping: {from: BadName, to: b}
        """
    ) == [
        f"{FILE}:5: steps[0].ping.from: 'BadName' is not a valid name: use lowercase letters, digits and '_', "
        "at most 15 characters, starting with a letter"
    ]


def test_nan_duration_is_rejected():
    (message,) = errors(
        """\
        nodes: {a: {}}
        steps:
          - sleep: .nan
        """
    )
    assert message.startswith(f"{FILE}:3: steps[0].sleep: ")


def test_file_that_is_not_a_mapping():
    assert errors("- a\n- b\n") == [f"{FILE}:1: a scenario file is a mapping with at least 'nodes:'"]


# --- references (validate.py) ----------------------------------------------------------


def test_nat_outside_not_a_neighbour():
    assert errors(
        """\
        nodes:
          a: {}
          r:
            nat: {outside: b}
          b: {}
          c: {}
        links:
          - {ends: [a, r]}
          - {ends: [b, c]}
        """
    ) == [f"{FILE}:4: nodes.r.nat.outside: 'b' is not a neighbour of 'r' (known neighbours: a)"]


def test_nat_without_inside_link():
    assert errors(
        """\
        nodes:
          r: {nat: {outside: b}}
          b: {}
        links:
          - {ends: [r, b]}
        """
    ) == [f"{FILE}:2: nodes.r.nat: a NAT router needs an inside link besides its outside one"]


def test_peer_without_wireguard_section():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        wireguard:
          a:
            peers:
              b: {endpoint: b}
        """
    ) == [f"{FILE}:6: wireguard.a.peers.b: 'b' has no wireguard section (known WireGuard nodes: a)"]


def test_handshake_between_non_peers():
    assert errors(
        """\
        nodes: {a: {}, b: {}, c: {}}
        links:
          - {ends: [a, b]}
          - {ends: [b, c]}
        wireguard:
          a: {peers: {b: {}}}
          b: {}
          c: {}
        steps:
          - handshake: {between: [a, b]}
          - handshake:
              between: [a, c]
        """
    ) == [f"{FILE}:12: steps[1].handshake.between: 'a' and 'c' are not peers"]


def test_handshake_with_node_without_wireguard():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        wireguard: {a: {}}
        steps:
          - handshake: {between: [a, b]}
        """
    ) == [f"{FILE}:5: steps[0].handshake.between[1]: 'b' has no wireguard section (known WireGuard nodes: a)"]


NAT_TOPOLOGY = """\
nodes:
  a: {}
  r: {nat: {outside: b}}
  b: {}
links:
  - {ends: [a, r]}
  - {ends: [r, b]}
steps:
"""


def test_ping_to_unreachable_underlay_node_is_an_error():
    assert errors(
        NAT_TOPOLOGY
        + """\
  - ping: {from: a, to: b, via: underlay}
  - ping:
      from: b
      to: a
      via: underlay
"""
    ) == [
        f"{FILE}:12: steps[1].ping.to: 'a' has no IPv4 underlay address that 'b' can reach "
        "(add `expect: fail` if that is the point)"
    ]


def test_ping_to_unreachable_underlay_node_with_expect_fail_is_fine():
    (case,) = load(
        NAT_TOPOLOGY
        + """\
  - ping: {from: b, to: a, via: underlay, expect: fail}
"""
    )
    assert case.spec.steps[0].ping.expect == "fail"


def test_ping_underlay_v6_without_v6_addresses():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        steps:
          - ping: {from: a, to: b, via: underlay, family: 6, expect: fail}
        """
    ) == [f"{FILE}:4: steps[0].ping.to: 'b' has no IPv6 underlay address"]


def test_ping_through_tunnel_from_node_without_wireguard():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        wireguard: {b: {}}
        steps:
          - ping: {from: a, to: b}
        """
    ) == [f"{FILE}:5: steps[0].ping.from: 'a' has no WireGuard interface to ping through (use via: underlay)"]


def test_endpoint_behind_nat_is_reported_at_the_endpoint_field():
    assert errors(
        """\
        nodes:
          a: {}
          r: {nat: {outside: b}}
          b: {}
        links:
          - {ends: [a, r]}
          - {ends: [r, b]}
        wireguard:
          a: {}
          b:
            peers:
              a:
                persistent_keepalive: 5
                endpoint: a
        """
    ) == [
        f"{FILE}:14: wireguard.b.peers.a.endpoint: node 'a' is not reachable from 'b' on the underlay "
        "(no route, or it is behind a NAT)"
    ]


def test_endpoint_from_inside_the_nat_is_fine():
    (case,) = load(
        """\
        nodes:
          a: {}
          r: {nat: {outside: b}}
          b: {}
        links:
          - {ends: [a, r]}
          - {ends: [r, b]}
        wireguard:
          a: {peers: {b: {endpoint: b}}}
          b: {}
        """
    )
    assert case.spec.wireguard["a"].peers["b"].endpoint == "b"


def test_bad_endpoint_text_from_planner():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        wireguard:
          a:
            peers:
              b: {endpoint: "198.18.1.2"}
          b: {}
        """
    ) == [f"{FILE}:6: wireguard.a.peers.b.endpoint: an address endpoint needs a port: '198.18.1.2:51820'"]


def test_tunnel_address_used_twice():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        wireguard:
          a:
            address: [10.9.0.1/32]
            peers: {b: {}}
          b:
            address:
              - 10.9.0.2/32
              - 10.9.0.1/32
        """
    ) == [f"{FILE}:10: wireguard.b.address[1]: 10.9.0.1 is also the tunnel address of 'a'"]


def test_automatic_tunnel_addresses_skip_explicit_ones():
    from harness.plan.network import build_plan

    cases = load_text(
        textwrap.dedent(
            """\
            nodes: {a: {}, b: {}}
            links: [{ends: [a, b]}]
            wireguard:
              a: {peers: {b: {endpoint: b}}}
              b: {address: [100.64.0.1/32]}
            """
        ),
        FILE,
    )
    plan = build_plan(cases[0].spec, "abc123")
    assert str(plan.tunnel_address("b")) == "100.64.0.1"
    assert str(plan.tunnel_address("a")) == "100.64.0.2"  # 100.64.0.1 is taken by b


def test_overlapping_link_subnets_rejected():
    assert errors(
        """\
        nodes: {a: {}, r: {router: true}, b: {}}
        links:
          - {ends: [a, r], addresses: [10.0.0.1/24, 10.0.0.2/24]}
          - {ends: [r, b], addresses: [10.0.0.4/24, 10.0.0.3/24]}
        """
    ) == [f"{FILE}:4: links[1].addresses: 10.0.0.0/24 overlaps links[0]'s subnet: each link and LAN needs its own"]


def test_several_shape_problems_reported_at_once():
    assert errors(
        """\
        nodes:
          a: {}
          b: {}
        links:
          - ends: [a, b]
            mtu: 10
          - ends: [a, b]
            colour: red
        steps:
          - sleep: forever
        """
    ) == [
        f"{FILE}:6: links[0].mtu: must be ≥ 576",
        f"{FILE}:8: links[1].colour: unknown key 'colour'",
        f"{FILE}:10: steps[0].sleep: expected a duration like '500ms' or '3s', got 'forever'",
    ]


def test_several_reference_problems_reported_at_once():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links:
          - {ends: [a, x]}
          - {ends: [b, b]}
        wireguard:
          a: {peers: {a: {}, z: {}}}
        steps:
          - ping: {from: q, to: a}
        """
    ) == [
        f"{FILE}:3: links[0].ends[1]: unknown node 'x' (known nodes: a, b)",
        f"{FILE}:4: links[1].ends: a link joins two different nodes",
        f"{FILE}:6: wireguard.a.peers.a: a node cannot peer with itself",
        f"{FILE}:6: wireguard.a.peers.z: unknown node 'z' (known WireGuard nodes: a)",
        f"{FILE}:8: steps[0].ping.from: unknown node 'q' (known nodes: a, b)",
    ]


def test_cause_needs_expect_fail():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        steps:
          - ping: {from: a, to: b, via: underlay, cause: no route}
        """
    ) == [f"{FILE}:4: steps[0].ping.cause: `cause` names why a check is expected to fail: it needs `expect: fail`"]


# --- load_data -------------------------------------------------------------------------


def test_load_data_on_a_dict():
    (case,) = load_data(
        {
            "name": "from-python",
            "nodes": {"a": {}, "b": {}},
            "links": [{"ends": ["a", "b"]}],
            "wireguard": {"a": {"peers": {"b": {"endpoint": "b:51000"}}}, "b": {"listen_port": 51000}},
            "steps": [{"ping": {"from": "a", "to": "b"}}],
        }
    )
    assert case.id == "from-python"
    assert case.file == "<dict>"
    assert case.spec.wireguard["b"].listen_port == 51000
    assert case.spec.steps[0].ping.from_ == "a"


def test_load_data_reports_problems_with_field():
    with pytest.raises(ScenarioError) as exc:
        load_data({"nodes": {"a": {}}, "links": [{"ends": ["a", "c"]}]}, "my_test.py")
    (problem,) = exc.value.problems
    assert problem.file == "my_test.py"
    assert problem.field == "links[0].ends[1]"
    assert problem.message == "unknown node 'c' (known nodes: a)"


def test_load_data_rejects_non_mapping():
    with pytest.raises(ScenarioError, match="a scenario file is a mapping"):
        load_data(["nodes"])  # type: ignore[arg-type]


# --- matrix ----------------------------------------------------------------------------

MATRIX = """\
name: mx
nodes: {a: {}, b: {}}
links:
  - {ends: [a, b]}
wireguard:
  a:
    peers:
      b: {endpoint: b, persistent_keepalive: 25}
  b: {}
matrix:
  wireguard.a.peers.b.persistent_keepalive: [0, 25]
  links.0.mtu: [1280, 1420, 9000]
"""


def test_matrix_expands_every_combination_with_readable_ids():
    cases = load(MATRIX)
    assert len(cases) == 6
    assert [c.id for c in cases] == [
        "mx[persistent_keepalive=0,mtu=1280]",
        "mx[persistent_keepalive=0,mtu=1420]",
        "mx[persistent_keepalive=0,mtu=9000]",
        "mx[persistent_keepalive=25,mtu=1280]",
        "mx[persistent_keepalive=25,mtu=1420]",
        "mx[persistent_keepalive=25,mtu=9000]",
    ]
    first = cases[0]
    assert first.case_id == "persistent_keepalive=0,mtu=1280"
    assert first.matrix_values == {"wireguard.a.peers.b.persistent_keepalive": 0, "links.0.mtu": 1280}
    assert first.spec.wireguard["a"].peers["b"].persistent_keepalive == 0
    assert first.spec.links[0].mtu == 1280
    assert cases[5].spec.wireguard["a"].peers["b"].persistent_keepalive == 25
    assert cases[5].spec.links[0].mtu == 9000
    assert first.spec.matrix is None  # the matrix itself is consumed
    # every case shares the file's hash
    assert len({c.file_sha256 for c in cases}) == 1


def test_a_matrix_in_a_dict_expands_too():
    # load_data (a dict from Python: no file, no lines) with both matrix forms
    import yaml

    data = yaml.safe_load(MATRIX)
    assert len(load_data(data)) == 6
    listed = {**data, "matrix": [{"case": "small", "links.0.mtu": 1280}, {"case": "big", "links.0.mtu": 9000}]}
    cases = load_data(listed)
    assert [(c.case_id, c.spec.links[0].mtu) for c in cases] == [("small", 1280), ("big", 9000)]


def test_matrix_ambiguous_last_segment_uses_longer_suffix():
    cases = load(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        wireguard:
          a: {listen_port: 1, peers: {b: {endpoint: b}}}
          b: {listen_port: 2}
        matrix:
          wireguard.a.listen_port: [1000, 2000]
          wireguard.b.listen_port: [3000]
        """
    )
    assert [c.case_id for c in cases] == [
        "a.listen_port=1000,b.listen_port=3000",
        "a.listen_port=2000,b.listen_port=3000",
    ]
    assert cases[1].spec.wireguard["a"].listen_port == 2000
    assert cases[1].spec.wireguard["b"].listen_port == 3000


def test_matrix_can_add_a_key_not_in_the_file():
    cases = load(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        matrix:
          links.0.mtu: [1400]
        """
    )
    assert cases[0].spec.links[0].mtu == 1400


def test_matrix_dotted_key_existing():
    cases = load(
        """\
        nodes:
          a: {sysctls: {net.ipv4.conf.all.rp_filter: 2}}
        matrix:
          nodes.a.sysctls.net.ipv4.conf.all.rp_filter: [0, 1]
        """
    )
    assert [c.case_id for c in cases] == ["rp_filter=0", "rp_filter=1"]
    assert cases[1].spec.nodes["a"].sysctls == {"net.ipv4.conf.all.rp_filter": 1}


def test_matrix_dotted_key_not_in_the_file():
    # matrix.py promises both "keys that contain dots (sysctl names) work" and
    # "the last key may be new": a sysctl the file does not set yet
    cases = load(
        """\
        nodes:
          a: {sysctls: {}}
        matrix:
          nodes.a.sysctls.net.core.somaxconn: [100, 200]
        """
    )
    assert cases[0].spec.nodes["a"].sysctls == {"net.core.somaxconn": 100}


def test_matrix_error_in_substituted_value_points_at_matrix_line():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        wireguard:
          a: {peers: {b: {endpoint: b}}}
          b: {}
        matrix:
          wireguard.a.peers.b.persistent_keepalive:
            - 0
            - -5
        """
    ) == [f"{FILE}:9: wireguard.a.peers.b.persistent_keepalive: must be ≥ 0"]


def test_matrix_error_points_at_the_right_item_when_values_compare_equal():
    # 1 == True in Python: the error for `true` must still point at its own line
    assert errors(
        """\
        nodes: {a: {}}
        steps:
          - sleep: 1s
        matrix:
          steps.0.sleep:
            - 1
            - true
        """
    ) == [f"{FILE}:7: steps[0].sleep: expected a duration like '500ms' or '3s', got True"]


def test_matrix_substituted_mapping_lines_point_at_matrix():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        matrix:
          links.0:
            - {ends: [a, b]}
            - {ends: [a, zz]}
        """
    ) == [f"{FILE}:6: links[0].ends[1]: unknown node 'zz' (known nodes: a, b)"]


def test_matrix_path_into_missing_key():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        matrix:
          wireguard.a.peers.b.persistent_keepalive: [0, 5]
        """
    ) == [f"{FILE}:4: matrix.wireguard.a.peers.b.persistent_keepalive: no 'wireguard' under 'the top level'"]


def test_matrix_path_into_missing_nested_key():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        wireguard: {a: {}}
        matrix:
          wireguard.c.listen_port: [1]
        """
    ) == [f"{FILE}:5: matrix.wireguard.c.listen_port: no 'c' under 'wireguard'"]


def test_matrix_bad_list_index():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        matrix:
          links.3.mtu: [1400]
        """
    ) == [f"{FILE}:4: matrix.links.3.mtu: '3' is not an index of links"]


def test_matrix_empty_values():
    assert errors(
        """\
        nodes: {a: {}}
        matrix:
          nodes.a.router: []
        """
    ) == [f"{FILE}:3: matrix.nodes.a.router: expected a non-empty list of values"]


def test_matrix_list_form():
    cases = load(
        """\
        name: lf
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        matrix:
          - {links.0.mtu: 1400, links.0.ipv6: true}
          - {links.0.mtu: 9000}
        """
    )
    assert [c.id for c in cases] == ["lf[mtu=1400,ipv6=True]", "lf[mtu=9000]"]
    assert cases[0].spec.links[0].ipv6 is True
    assert cases[1].spec.links[0].ipv6 is False
    assert cases[1].spec.links[0].mtu == 9000


def test_matrix_listed_cases_can_be_named():
    cases = load(
        """\
        name: lf
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        matrix:
          - {case: base}
          - {case: jumbo, links.0.mtu: 9000}
          - {links.0.mtu: 1400}
        """
    )
    assert [c.id for c in cases] == ["lf[base]", "lf[jumbo]", "lf[mtu=1400]"]
    assert cases[0].spec.links[0].mtu is None  # a case with only a name is the file as written
    assert cases[1].spec.links[0].mtu == 9000


def test_matrix_case_names_must_be_valid_and_unique():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        matrix:
          - {case: Big Case}
          - {case: same, links.0.mtu: 1400}
          - {case: same, links.0.mtu: 1500}
        """
    ) == [
        f"{FILE}:4: matrix[0].case: a case name is lowercase letters, digits and . _ = + -, at most 64",
        f"{FILE}:6: matrix[2].case: case name 'same' is used twice",
    ]


def test_matrix_list_form_error_points_at_entry():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        matrix:
          - links.0.mtu: 1400
          - links.0.mtu: 10
        """
    ) == [f"{FILE}:5: links[0].mtu: must be ≥ 576"]


def test_problem_dataclass_is_what_str_shows():
    with pytest.raises(ScenarioError) as exc:
        load("nodes:\n  a: {colour: red}\n")
    assert exc.value.problems == [Problem(FILE, 2, "nodes.a.colour", "unknown key 'colour'")]


def test_iperf3_ratio_to_needs_an_earlier_foreground_record():
    assert errors(
        """\
        nodes: {a: {}, b: {}}
        links: [{ends: [a, b]}]
        wireguard: {a: {peers: {b: {endpoint: b}}}, b: {}}
        steps:
          - iperf3: {from: a, to: b, record: tunnel, ratio_to: bare}
          - iperf3: {from: a, to: b, via: underlay, record: bare}
          - iperf3: {from: a, to: b, min_ratio: 0.9}
          - iperf3: {from: a, to: b, ratio_to: bare, min_ratio: 0.9}
        """
    ) == [
        f"{FILE}:5: steps[0].iperf3.ratio_to: no earlier foreground iperf3 step records 'bare' (recorded: none yet)",
        f"{FILE}:7: steps[2].iperf3.min_ratio: `min_ratio` needs `ratio_to: <an earlier iperf3's record>`",
    ]
