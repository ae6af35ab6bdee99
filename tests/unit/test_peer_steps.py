"""Validation of remove_peer, reuse_old_key and handshake_age, and keepalive: 0 on a capture."""

import textwrap

import pytest

from harness.errors import ScenarioError
from harness.scenario.load import load_text

FILE = "scenarios/x.yaml"

HEAD = """\
nodes:
  a: {}
  b: {}
  c: {}
links:
  - {ends: [a, b]}
  - {ends: [b, c]}
wireguard:
  a:
    peers:
      b: {endpoint: b}
  b: {}
steps:
"""


def errors(steps: str) -> list[str]:
    with pytest.raises(ScenarioError) as exc:
        load_text(HEAD + textwrap.dedent(steps), FILE)
    return [str(p) for p in exc.value.problems]


def test_peer_steps_load():
    (case,) = load_text(
        HEAD
        + "  - rotate_key: {node: a}\n"
        + "  - reuse_old_key: {node: a}\n"
        + "  - remove_peer: {node: b, peer: a}\n"
        + "  - handshake_age: {node: a, peer: b, max: 5s}\n",
        FILE,
    )
    kinds = [next(iter(type(s).model_fields)) for s in case.spec.steps]
    assert kinds == ["rotate_key", "reuse_old_key", "remove_peer", "handshake_age"]
    assert case.spec.steps[3].handshake_age.max == 5.0


def test_remove_peer_needs_wireguard_nodes_that_are_peers():
    assert errors("  - remove_peer: {node: c, peer: a}\n") == [
        f"{FILE}:14: steps[0].remove_peer.node: no wireguard section for 'c' (known WireGuard nodes: a, b)"
    ]
    assert errors("  - remove_peer: {node: b, peer: x}\n") == [
        f"{FILE}:14: steps[0].remove_peer.peer: unknown node 'x' (known WireGuard nodes: a, b)"
    ]


def test_handshake_age_needs_peers_and_a_duration():
    problems = errors("  - handshake_age: {node: a, peer: b, max: soon}\n")
    assert len(problems) == 1 and problems[0].startswith(f"{FILE}:14: steps[0].handshake_age.max:")
    assert errors("  - handshake_age: {node: a, peer: b}\n")[0].startswith(f"{FILE}:14: steps[0].handshake_age")


def test_reuse_old_key_needs_an_earlier_key_change():
    assert errors("  - reuse_old_key: {node: a}\n") == [
        f"{FILE}:14: steps[0].reuse_old_key.node: 'a' has no old key: rotate it first (`- rotate_key: {{node: a}}`)"
    ]
    # a restart with a new key also leaves an old key behind
    (case,) = load_text(HEAD + "  - restart: {node: a, key: new}\n  - reuse_old_key: {node: a}\n", FILE)
    assert len(case.spec.steps) == 2


def test_capture_keepalive_zero_is_allowed():
    (case,) = load_text(
        HEAD + "  - capture: {name: w, link: a-b}\n  - stop: {capture: w, keepalive: 0}\n", FILE
    )
    assert case.spec.steps[1].stop.keepalive == 0
