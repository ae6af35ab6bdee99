"""netns.sh's pieces against real namespaces: interfaces created in one namespace and
moved into others (their sockets stay behind), exact transfer counters, listen-port
changes and renumbering a loopback, with whichever backend the run uses."""

from __future__ import annotations

import errno
import socket

import pytest

from harness.net import nsexec
from harness.steps.checks import check

pytestmark = pytest.mark.requires("root", "wireguard")

NETNS = {
    "nodes": {"ns0": {}, "n1": {}, "n2": {}},
    "wireguard": {
        "n1": {"socket_in": "ns0", "listen_port": 1, "peers": {"n2": {"endpoint": "n2"}}},
        "n2": {"socket_in": "ns0", "listen_port": 2, "peers": {"n1": {"endpoint": "n1"}}},
    },
}


def port_taken(net, node: str, port: int) -> bool:
    """Is UDP `port` bound in the node's namespace (by WireGuard's socket)?"""

    def try_bind() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
                raise
            return False

    return nsexec.call_in(net.node(node).netns_path, try_bind)


def has_link(net, node: str, ifname: str) -> bool:
    return bool(net.node(node).netlink.link_lookup(ifname=ifname))


def test_interfaces_are_moved_and_their_sockets_stay_in_ns0(wgh_network):
    net = wgh_network(NETNS)
    for node, port in (("n1", 1), ("n2", 2)):
        ifname = net.plan.wireguard[node].ifname
        assert has_link(net, node, ifname) and not has_link(net, "ns0", ifname)
        assert port_taken(net, "ns0", port), f"{node}'s socket is not in ns0"
        assert not port_taken(net, node, port), f"{node}'s socket should not be in its own namespace"
    # endpoints 127.0.0.1:port work only because both sockets share ns0's loopback
    assert check(net, {"ping": {"from": "n2", "to": "n1", "count": 10, "interval": "10ms", "timeout": "1s"}}).ok


def test_transfer_counters_are_exact_after_ten_pings(wgh_network):
    net = wgh_network(NETNS)
    assert check(net, {"ping": {"from": "n2", "to": "n1", "count": 10, "interval": "10ms", "timeout": "1s"}}).ok
    n2 = check(net, {"transfer": {"node": "n2", "peer": "n1", "rx": 1372, "tx": [1428, 1460], "record": "n2"}})
    assert n2.ok, n2.message
    assert n2.measurements["n2.rx_bytes"].value == 1372
    n1 = check(net, {"transfer": {"node": "n1", "peer": "n2", "tx": 1372, "rx": [1428, 1460]}})
    assert n1.ok, n1.message
    # a wrong expectation fails, says what it saw, and shows the peer's state
    wrong = check(net, {"transfer": {"node": "n2", "peer": "n1", "rx": {"max": 1000}}})
    assert not wrong.passed
    assert "rx 1372 B, expected ≤ 1000" in wrong.message
    assert "latest handshake" in wrong.diagnosis


def test_listen_port_change_moves_the_socket_and_the_peer_learns_it(wgh_network):
    net = wgh_network(NETNS)
    assert check(net, {"ping": {"from": "n2", "to": "n1", "count": 1, "timeout": "1s"}}).ok
    changed = check(net, {"listen_port": {"node": "n1", "port": 9999}})
    assert changed.ok, changed.message
    assert net.wireguard.devices["n1"].status().listen_port == 9999
    assert port_taken(net, "ns0", 9999) and not port_taken(net, "ns0", 1)
    assert check(net, {"ping": {"from": "n1", "to": "n2", "count": 1, "timeout": "1s"}}).ok
    learned = check(net, {"learned_endpoint": {"node": "n2", "peer": "n1", "is": "127.0.0.1:9999"}})
    assert learned.ok, learned.message
    stale = check(net, {"learned_endpoint": {"node": "n2", "peer": "n1", "is": "127.0.0.1:1"}})
    assert not stale.passed and "n2 has n1 at 127.0.0.1:9999, not 127.0.0.1:1" in stale.message


def test_renumbered_loopback_becomes_the_learned_source_address(wgh_network):
    net = wgh_network(NETNS)
    assert check(net, {"ping": {"from": "n2", "to": "n1", "count": 1, "timeout": "1s"}}).ok
    assert check(net, {"roam": {"node": "ns0", "renumber": "127.212.121.99/8"}}).ok
    addresses = {a.get_attr("IFA_ADDRESS") for a in net.node("ns0").netlink.get_addr(family=socket.AF_INET)}
    assert addresses == {"127.212.121.99"}
    # n1 sends to 127.0.0.1 (still local in 127/8); its source is now the new address
    assert check(net, {"endpoint": {"node": "n1", "peer": "n2", "to": "127.0.0.1:2"}}).ok
    assert check(net, {"ping": {"from": "n1", "to": "n2", "family": 6, "count": 1, "timeout": "1s"}}).ok
    learned = check(net, {"learned_endpoint": {"node": "n2", "peer": "n1", "is": "127.212.121.99:1"}})
    assert learned.ok, learned.message


def test_restart_keeps_the_socket_in_ns0(wgh_network):
    net = wgh_network(NETNS)
    assert check(net, {"ping": {"from": "n2", "to": "n1", "count": 1, "timeout": "1s"}}).ok
    assert check(net, {"restart": {"node": "n1"}}).ok
    ifname = net.plan.wireguard["n1"].ifname
    assert has_link(net, "n1", ifname) and not has_link(net, "ns0", ifname)
    assert port_taken(net, "ns0", 1) and not port_taken(net, "n1", 1)
    # the restarted side has no session: its first packet starts a handshake at once
    # (n2 would keep using its stale session until WireGuard gives up on it after ~15 s)
    waited = check(net, {"wait_until": {"ping": {"from": "n1", "to": "n2", "count": 1, "timeout": "1s"}, "within": "5s"}})
    assert waited.ok, waited.message
