"""The format pieces that mirror WireGuard's netns.sh: socket_in (interfaces moved away
from their sockets), transfer and learned_endpoint checks, the listen_port step and
renumbering to a given address (also of a node's loopback). No root needed."""

import ipaddress
import textwrap

import pytest

from harness.errors import ScenarioError
from harness.plan.network import build_plan
from harness.scenario.load import load_text
from harness.scenario.model import ScenarioSpec
from harness.scenario.steps.wgstate import ByteBounds, TransferArgs
from harness.endpoint import Endpoint
from harness.steps.wgstate import allows, describe, settled_status, transfer
from harness.wg.status import PeerStatus

FILE = "scenarios/x.yaml"

NETNS = """\
nodes:
  ns0: {}
  n1: {}
  n2: {}
wireguard:
  n1: {socket_in: ns0, listen_port: 1, peers: {n2: {endpoint: n2}}}
  n2: {socket_in: ns0, listen_port: 2, peers: {n1: {endpoint: n1}}}
"""


def load(text):
    return load_text(textwrap.dedent(text), FILE)


def errors(text):
    with pytest.raises(ScenarioError) as exc:
        load(text)
    return str(exc.value).splitlines()


def with_steps(*steps: str, base: str = NETNS) -> str:
    return base + "steps:\n" + "".join(f"  - {step}\n" for step in steps)


# --- socket_in: the plan -------------------------------------------------------------


def test_peers_sharing_a_socket_namespace_talk_over_its_loopback():
    (case,) = load(NETNS)
    plan = build_plan(case.spec, "abc123")
    assert plan.wireguard["n1"].socket_node == "ns0"
    assert plan.wireguard["n1"].socket_in == "ns0"
    assert str(plan.wireguard["n1"].peer("n2").endpoint) == "127.0.0.1:2"
    assert str(plan.wireguard["n2"].peer("n1").endpoint) == "127.0.0.1:1"


def test_without_socket_in_the_socket_is_the_nodes_own():
    (case,) = load("nodes: {a: {}, b: {}}\nlinks: [{ends: [a, b]}]\nwireguard: {a: {peers: {b: {endpoint: b}}}, b: {}}\n")
    plan = build_plan(case.spec, "abc123")
    assert plan.wireguard["a"].socket_node == "a"
    assert str(plan.wireguard["a"].peer("b").endpoint) == "198.18.1.2:51820"


def test_endpoint_is_the_socket_nodes_underlay_address():
    # each interface moved away from a router that holds its socket: the routers' link carries WireGuard
    (case,) = load(
        """\
        nodes: {r1: {}, r2: {}, a: {}, b: {}}
        links: [{ends: [r1, r2]}]
        wireguard:
          a: {socket_in: r1, peers: {b: {endpoint: b}}}
          b: {socket_in: r2}
        """
    )
    plan = build_plan(case.spec, "abc123")
    assert str(plan.wireguard["a"].peer("b").endpoint) == "198.18.1.2:51820"


def test_unreachable_socket_nodes_are_named_in_the_error():
    messages = errors(
        """\
        nodes: {r1: {}, r2: {}, a: {}, b: {}}
        wireguard:
          a: {socket_in: r1, peers: {b: {endpoint: b}}}
          b: {socket_in: r2}
        """
    )
    assert messages == [
        f"{FILE}:3: wireguard.a.peers.b.endpoint: node 'b' is not reachable from 'a' on the underlay "
        "(sockets in 'r1' and 'r2') (no route, or it is behind a NAT)"
    ]


# --- socket_in: validation -------------------------------------------------------------


def test_socket_in_unknown_node():
    messages = errors(NETNS.replace("n1: {socket_in: ns0,", "n1: {socket_in: ns9,"))
    assert messages == [f"{FILE}:6: wireguard.n1.socket_in: unknown node 'ns9' (did you mean 'ns0'?)"]


def test_socket_in_own_node():
    messages = errors(NETNS.replace("n1: {socket_in: ns0,", "n1: {socket_in: n1,"))
    assert messages == [f"{FILE}:6: wireguard.n1.socket_in: 'n1' is its own node: socket_in names another node, whose namespace keeps the socket"]


def test_sockets_in_one_namespace_need_different_ports():
    messages = errors(NETNS.replace("listen_port: 2,", "listen_port: 1,"))
    assert messages == [
        f"{FILE}:7: wireguard.n2.listen_port: port 1 is taken in 'ns0' by 'n1''s socket: sockets in one namespace need different listen_ports"
    ]


def test_same_port_in_different_namespaces_is_fine():
    (case,) = load("nodes: {a: {}, b: {}}\nlinks: [{ends: [a, b]}]\nwireguard: {a: {peers: {b: {endpoint: b}}}, b: {}}\n")
    assert case.spec.wireguard["a"].listen_port == case.spec.wireguard["b"].listen_port == 51820


# --- transfer ---------------------------------------------------------------------------


def test_transfer_forms():
    (case,) = load(
        with_steps(
            "transfer: {node: n2, peer: n1, rx: 1372, tx: [1428, 1460]}",
            "transfer: {node: n1, peer: n2, rx: {min: 1000}, tx: {min: 1, max: 2000}, record: n1}",
        )
    )
    first, second = (s.transfer for s in case.spec.steps)
    assert (first.rx, first.tx) == (1372, [1428, 1460])
    assert second.rx == ByteBounds(min=1000) and second.tx == ByteBounds(min=1, max=2000)
    assert second.record == "n1"


@pytest.mark.parametrize(
    "expected, value, ok",
    [
        (1372, 1372, True),
        (1372, 1373, False),
        ([1428, 1460], 1460, True),
        ([1428, 1460], 1444, False),
        (ByteBounds(min=10), 10, True),
        (ByteBounds(min=10), 9, False),
        (ByteBounds(max=10), 11, False),
        (ByteBounds(min=1, max=10), 5, True),
    ],
)
def test_transfer_expectations(expected, value, ok):
    assert allows(expected, value) is ok


def test_transfer_expectations_described():
    assert describe([1428, 1460]) == "1428 or 1460"
    assert describe(ByteBounds(min=1, max=9)) == "≥ 1 and ≤ 9"


def test_transfer_needs_something_to_check():
    messages = errors(with_steps("transfer: {node: n2, peer: n1}"))
    assert messages == [f"{FILE}:9: steps[0].transfer: check something: `rx:` and/or `tx:` (bytes: exact, a list, or {{min, max}})"]


def test_transfer_bad_bounds():
    messages = errors(with_steps("transfer: {node: n2, peer: n1, rx: {min: 5, max: 1}, tx: []}"))
    assert messages == [
        f"{FILE}:9: steps[0].transfer.rx: min 5 is above max 1",
        f"{FILE}:9: steps[0].transfer.tx: an empty list allows no value",
    ]


def test_transfer_negative_bytes_rejected():
    messages = errors(with_steps("transfer: {node: n2, peer: n1, rx: -1}"))
    assert any("steps[0].transfer.rx" in m for m in messages), messages


def test_transfer_between_non_peers_and_unknown_nodes():
    base = NETNS.replace("  n2: {}\nwireguard", "  n2: {}\n  n3: {}\nwireguard") + "  n3: {socket_in: ns0, listen_port: 3}\n"
    messages = errors(with_steps("transfer: {node: n3, peer: n1, rx: 1}", "transfer: {node: n1, peer: n9, tx: 1}", base=base))
    assert messages == [
        f"{FILE}:11: steps[0].transfer.peer: 'n3' and 'n1' are not peers",
        f"{FILE}:12: steps[1].transfer.peer: unknown node 'n9' (known WireGuard nodes: n1, n2, n3)",
    ]


# --- learned_endpoint, listen_port, renumber to an address ---------------------------------


@pytest.mark.parametrize(
    "text, address, port",
    [("127.0.0.1:2", "127.0.0.1", 2), ("[::1]:9998", "::1", 9998), ("[fd00::5:1]:5", "fd00::5:1", 5)],
)
def test_parse_endpoint(text, address, port):
    parsed = Endpoint.parse(text)
    assert (parsed.address, parsed.port) == (ipaddress.ip_address(address), port)
    assert str(parsed) == text  # formatted back the way wg(8) prints it


@pytest.mark.parametrize("text", ["::1:2", "n1:2", "127.0.0.1", "127.0.0.1:0", "[::1]"])
def test_parse_endpoint_rejects(text):
    with pytest.raises(ValueError):
        Endpoint.parse(text)


def test_learned_endpoint_bad_address():
    messages = errors(with_steps("learned_endpoint: {node: n2, peer: n1, is: '::1:9998'}"))
    assert messages == [f"{FILE}:9: steps[0].learned_endpoint.is: '::1:9998': write an IPv6 endpoint as '[address]:port'"]


def test_listen_port_step():
    (case,) = load(with_steps("listen_port: {node: n1, port: 9999}"))
    assert case.spec.steps[0].listen_port.port == 9999
    messages = errors(with_steps("listen_port: {node: ns0, port: 9999}", "listen_port: {node: n1, port: 70000}"))
    assert f"{FILE}:10: steps[1].listen_port.port: must be ≤ 65535" in messages
    # shape problems come first; the reference round runs once they are fixed
    messages = errors(with_steps("listen_port: {node: ns0, port: 9999}"))
    assert messages == [f"{FILE}:9: steps[0].listen_port.node: no wireguard section for 'ns0' (known WireGuard nodes: n1, n2)"]


def test_roam_renumber_to_a_given_address():
    (case,) = load(with_steps("roam: {node: ns0, renumber: 127.212.121.99/8}", "roam: {node: ns0, renumber: true}"))
    given, picked = (s.roam.renumber for s in case.spec.steps)
    assert given == ipaddress.ip_interface("127.212.121.99/8") and picked is True
    messages = errors(with_steps("roam: {node: ns0, renumber: 'fd00::9/64'}"))
    assert messages == [f"{FILE}:9: steps[0].roam.renumber: renumbering gives a new IPv4 address: write one such as 198.18.1.200/24"]


def test_shipped_netns_parity_files_validate():
    from pathlib import Path

    from harness.scenario.load import load_file

    root = Path(__file__).resolve().parents[2] / "scenarios"
    for name in ("netns-parity.yaml", "netns-parity-roaming.yaml", "netns-parity-nat.yaml"):
        cases = load_file(root / name)
        assert cases and all(isinstance(c.spec, ScenarioSpec) for c in cases)


class _LaggingCounters:
    """A peer whose tx counter catches up on its last packet a few readings late, as
    wireguard-go's does when it counts after the send call returns."""

    def __init__(self, readings: list[tuple[int, int]]):
        self.readings = readings
        self.wireguard = self

    def peer_status(self, node, peer):
        rx, tx = self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]
        return PeerStatus(b"k" * 32, "127.0.0.1:1", 1.0, rx, tx)


def _transfer(network, **expect):
    args = TransferArgs.model_validate({"node": "n1", "peer": "n2", **expect})
    return transfer(network, 0, args)


def test_transfer_waits_for_a_lagging_counter_to_settle():
    lagging = _LaggingCounters([(1428, 1244), (1428, 1244), (1428, 1372)])
    result = _transfer(lagging, tx=1372, rx=[1428, 1460])
    assert result.passed, result.message
    assert result.measurements["tx_bytes"].value == 1372


def test_transfer_still_fails_when_the_settled_counter_is_wrong():
    settled = _LaggingCounters([(1428, 1244)])
    result = _transfer(settled, tx=1372)
    assert not result.passed
    assert result.message == "rx 1428 B, tx 1244 B: tx 1244 B, expected 1372"


def test_settling_gives_up_on_counters_that_never_stop():
    ticks = iter(range(1000))
    moving = _LaggingCounters([(n, n) for n in range(1000)])
    first = moving.peer_status("n1", "n2")
    latest = settled_status(moving, "n1", "n2", first, clock=lambda: next(ticks) * 0.01, sleep=lambda s: None)
    assert 0 < latest.tx_bytes < 200  # the latest reading at the limit, after some readings
