"""Steps and diagnosis on a fake network: their logic runs without root, namespaces or
WireGuard, against a world the test describes (harness.engine.fake)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.engine.base import Node
from harness.engine.fake import FakeNetwork, FakeNode, FakeWorld
from harness.engine.netns import NetnsNode
from harness.plan.network import build_plan
from harness.scenario.load import load_data, load_file
from harness.steps.checks import check

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
PAIR = {
    "nodes": {"a": {}, "b": {}},
    "links": [{"ends": ["a", "b"]}],
    "wireguard": {"a": {"peers": {"b": {"endpoint": "b"}}}, "b": {}},
}


def fake(data_or_file, world: FakeWorld | None = None, case: str | None = None) -> FakeNetwork:
    cases = load_data(data_or_file) if isinstance(data_or_file, dict) else load_file(data_or_file)
    chosen = next(c for c in cases if case is None or c.case_id == case)
    return FakeNetwork(build_plan(chosen.spec, "f00001", "wireguard-go"), world)


def test_both_engines_give_nodes_of_the_protocol():
    assert isinstance(FakeNode("a", FakeWorld()), Node)
    assert isinstance(NetnsNode("a", "wgh-x-a", netlink=None), Node)
    assert NetnsNode("a", "wgh-x-a", netlink=None).netns_path == "/run/netns/wgh-x-a"
    # an unnamed namespace held by a process (a Mininet host) is entered by its path
    assert NetnsNode("h1", "/proc/4242/ns/net", netlink=None).netns_path == "/proc/4242/ns/net"


def test_handshake_passes_once_the_initiators_datagram_brings_both_sides_up():
    world = FakeWorld()
    net = fake(PAIR, world)
    world.on_datagram = lambda node, address: net.handshake_now("a", "b")
    result = check(net, {"handshake": {"between": ["a", "b"], "within": "1s"}})
    assert result.passed, result.message
    assert world.sent and world.sent[0][:2] == ("a", "100.64.0.2")  # a knows b's endpoint: a initiates, into the tunnel
    assert result.measurements["time_to_handshake"].value < 1.0


def test_ping_passes_with_the_replies_measured():
    world = FakeWorld(ping=lambda node, address: 42.0)
    net = fake(PAIR, world)
    result = check(net, {"ping": {"from": "a", "to": "b", "count": 3}})
    assert result.passed, result.message
    # the RTT is the kernel's receive stamp less the send time: 42 ms, give or take the call
    assert result.measurements["rtt_avg"].value == pytest.approx(42.0, abs=5.0)
    assert len(result.measurements["rtt"].samples) == 3
    echoes = [(node, target) for node, target, packet in world.sent if packet[0] == 8]
    assert echoes == [("a", "100.64.0.2")] * 3  # three echo requests, from a, into the tunnel


def test_no_handshake_through_a_silent_path_is_diagnosed_as_blocked_udp():
    world = FakeWorld(ping=lambda node, address: 0.05)  # the underlay answers: only WireGuard's UDP is lost
    net = fake(PAIR, world)
    net.set_peer("a", "b", endpoint="198.18.1.2:51820", tx_bytes=148 * 3)
    net.set_peer("b", "a")
    result = check(net, {"handshake": {"between": ["a", "b"], "within": "0.2s"}})
    assert not result.passed
    assert "[udp-blocked]" in result.message


def test_an_expired_nat_mapping_is_named(monkeypatch):
    """nat-keepalive without a keepalive: server still sends to the client's old public
    address:port on NAT home, whose conntrack table has no mapping any more."""
    world = FakeWorld(ping=lambda node, address: 0.05 if address != "100.64.0.2" else None)
    net = fake(SCENARIOS / "nat-keepalive.yaml", world, case="no-keepalive")
    world.nat_mappings["home"] = []  # the NAT forgot it
    handshake = time.time() - 5
    net.set_peer("server", "client", endpoint="198.18.2.1:51820", latest_handshake=handshake, rx_bytes=400, tx_bytes=900)
    net.set_peer("client", "server", endpoint="198.18.2.2:51820", latest_handshake=handshake, rx_bytes=900, tx_bytes=400)
    result = check(net, {"ping": {"from": "server", "to": "client", "count": 2}})
    assert not result.passed
    assert "[nat-mapping-expired]" in result.message
    assert "NAT home" in result.message and "no persistent keepalive" in result.message


def test_a_receivers_allowed_ips_that_miss_the_source_are_named():
    world = FakeWorld(ping=lambda node, address: 0.05 if not address.startswith("100.64.") else None)
    net = fake(SCENARIOS / "allowed-ips-mismatch.yaml", world)
    net.handshake_now("alice", "bob")
    result = check(net, {"ping": {"from": "alice", "to": "bob", "count": 2}})
    assert not result.passed
    assert "[allowed-ips-receiver]" in result.message
    assert "bob's AllowedIPs for alice do not cover the source 100.64.0.1" in result.message


def test_the_fake_refuses_to_read_the_hosts_proc_net():
    with pytest.raises(NotImplementedError, match="would read the host's"):
        FakeNode("a", FakeWorld()).read_proc_net("snmp")
