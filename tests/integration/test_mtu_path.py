"""Fragments dropped by a firewall, and the path MTU probe of the mtu-blackhole
diagnosis, on real namespaces (no WireGuard needed). Needs root."""

from __future__ import annotations

import select
import socket

import pytest

from harness.net import nsexec
from harness.diagnosis.mtu import probe_path_mtu

pytestmark = pytest.mark.requires("root")


def udp_arrivals(net, src: str, dst: str, sizes: list[int]) -> set[int]:
    """Send one UDP datagram of each payload size from src to dst (without DF: the
    sender's kernel fragments what exceeds its 1500-byte link); return those that arrived."""
    address = str(net.plan.underlay_address(src, dst))

    def receiver() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, 0))
        return sock

    def sender() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: no DF
        return sock

    rx, tx = nsexec.call_in(net.node(dst).netns_path, receiver), nsexec.call_in(net.node(src).netns_path, sender)
    try:
        for size in sizes:
            tx.sendto(b"x" * size, rx.getsockname())
        arrived = set()
        # the first datagram waits for ARP on both hops, which under load (CI11, the host
        # suite's 4 workers) took longer than a second; after it, a second of quiet ends it
        wait = 5.0
        while select.select([rx], [], [], wait)[0]:
            arrived.add(len(rx.recv(65535)))
            wait = 1.0
        return arrived
    finally:
        rx.close()
        tx.close()


def three_nodes(middle: dict) -> dict:
    return {"nodes": {"a": {}, "r": middle, "b": {}}, "links": [{"ends": ["a", "r"]}, {"ends": ["r", "b"]}]}


def test_fragments_pass_without_the_rule(wgh_network):
    net = wgh_network(three_nodes({"router": True}))
    assert udp_arrivals(net, "a", "b", [1000, 3000]) == {1000, 3000}


@pytest.mark.parametrize("middle", [{"router": True}, {"nat": {"outside": "b"}}], ids=["router", "nat"])
def test_drop_fragments_loses_only_fragmented_datagrams(wgh_network, middle):
    # on the NAT, conntrack's defragmentation is active: the rule must see the
    # fragments before it reassembles them
    net = wgh_network(three_nodes({**middle, "firewall": [{"drop": "fragments"}]}))
    assert udp_arrivals(net, "a", "b", [1000, 1472, 3000]) == {1000, 1472}


NARROW_CORE = {
    "nodes": {"a": {}, "r1": {"router": True}, "r2": {"router": True}, "b": {}},
    "links": [{"ends": ["a", "r1"]}, {"ends": ["r1", "r2"], "mtu": 1400}, {"ends": ["r2", "b"]}],
}


def test_path_mtu_probe_finds_a_black_hole(wgh_network):
    spec = {**NARROW_CORE, "nodes": {**NARROW_CORE["nodes"], "r1": {"router": True, "firewall": [{"drop": "icmp"}]}}}
    net = wgh_network(spec)
    address = str(net.plan.underlay_address("a", "b"))
    found = probe_path_mtu(net, "a", "b", address)
    assert (found.mtu, found.interface_mtu, found.cached_mtu) == (1400, 1500, None), found
    assert "no ICMP 'fragmentation needed' reached a" in found.describe()


def test_path_mtu_probe_sees_icmp_when_it_arrives(wgh_network):
    net = wgh_network(NARROW_CORE)
    found = probe_path_mtu(net, "b", "a", str(net.plan.underlay_address("b", "a")))
    assert (found.mtu, found.cached_mtu) == (1400, 1400), found


def test_path_mtu_probe_on_a_clean_path_is_the_interface_mtu(wgh_network):
    net = wgh_network(three_nodes({"router": True}))
    found = probe_path_mtu(net, "a", "b", str(net.plan.underlay_address("a", "b")))
    assert (found.mtu, found.cached_mtu) == (1500, None), found
