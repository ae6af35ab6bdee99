"""NAT behaviours (RFC 4787) and firewall rules, proven with plain UDP/TCP sockets
and ping inside real namespaces. Needs root; no WireGuard."""

from __future__ import annotations

import errno
import socket
import time

import pytest

from harness.net import nsexec
from harness.steps.natprobe import classify_nat

pytestmark = pytest.mark.requires("root")

NAT_TYPES = ("port-restricted", "restricted-cone", "full-cone", "symmetric")
EXPECTED = {
    "port-restricted": ("endpoint-independent", "address-and-port-dependent"),
    "restricted-cone": ("endpoint-independent", "address-dependent"),
    "full-cone": ("endpoint-independent", "endpoint-independent"),
    "symmetric": ("address-and-port-dependent", "address-and-port-dependent"),
}


def nat_topology(nat: dict) -> dict:
    """Two inside hosts (h, h2) behind the NAT, the NAT's outside neighbour `o` a
    router with two outside hosts (a, b) behind it."""
    return {
        "nodes": {
            "h": {},
            "h2": {},
            "nat": {"nat": {"outside": "o", **nat}},
            "o": {"router": True},
            "a": {},
            "b": {},
        },
        "links": [
            {"ends": ["h", "nat"]},  # 198.18.1.0/24
            {"ends": ["h2", "nat"]},  # 198.18.2.0/24
            {"ends": ["nat", "o"]},  # 198.18.3.0/24: the NAT's public address is 198.18.3.1
            {"ends": ["o", "a"]},
            {"ends": ["o", "b"]},
        ],
    }


# --- small socket helpers (opened inside a namespace, used from here) ----------------


def udp_socket(net, node: str, port: int = 0, family: int = socket.AF_INET) -> socket.socket:
    def open_socket() -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        return sock

    return nsexec.call_in(net.node(node).netns_path, open_socket)


def receive(sock: socket.socket, timeout: float = 0.3):
    sock.settimeout(timeout)
    try:
        return sock.recvfrom(2048)
    except socket.timeout:
        return None


# A check that should pass returns as soon as it does, and waits up to `within` for it
# (a loaded machine may take seconds); one that should fail passes a short `within`,
# NEGATIVE_WINDOW: all it can do is wait that long and see nothing.
POSITIVE_WINDOW = 10.0
NEGATIVE_WINDOW = 1.0


def udp_arrives(net, src: str, dst: str, port: int, *, family: int = 4, within: float = POSITIVE_WINDOW) -> bool:
    """Does a datagram from src reach a socket on dst's UDP `port` (one is sent every 0.3 s)?"""
    address = str(net.plan.underlay_address(src, dst, family, reachable=False))
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    deadline = time.monotonic() + within
    with udp_socket(net, dst, port, af) as receiver, udp_socket(net, src, 0, af) as sender:
        while True:
            sender.sendto(b"hello", (address, port))
            if receive(receiver, min(0.3, max(0.05, deadline - time.monotonic()))) is not None:
                return True
            if time.monotonic() >= deadline:
                return False


def pings(net, src: str, dst: str, family: int = 4, *, within: float = POSITIVE_WINDOW) -> bool:
    """Does one echo request (of several, 0.2 s apart) get its reply within `within`?"""
    address = str(net.plan.underlay_address(src, dst, family, reachable=False))
    argv = ["ping", f"-{family}", "-n", "-c", "1", "-i", "0.2", "-w", f"{within:g}", address]
    return net.run(src, argv, timeout=within + 30).returncode == 0


def tcp_connects(net, src: str, dst: str, port: int, *, within: float = POSITIVE_WINDOW) -> bool:
    address = str(net.plan.underlay_address(src, dst, 4, reachable=False))

    def listen() -> socket.socket:
        server = socket.socket()
        server.bind(("0.0.0.0", port))
        server.listen()
        return server

    def connect() -> bool:
        with socket.socket() as client:
            client.settimeout(within)
            try:
                client.connect((address, port))
                return True
            except OSError:
                return False

    with nsexec.call_in(net.node(dst).netns_path, listen):
        return nsexec.call_in(net.node(src).netns_path, connect)


# --- NAT types ------------------------------------------------------------------------


@pytest.mark.parametrize("hairpin", [False, True], ids=["no-hairpin", "hairpin"])
@pytest.mark.parametrize("nat_type", NAT_TYPES)
def test_nat_type_classifies_as_configured(wgh_network, nat_type, hairpin):
    net = wgh_network(nat_topology({"type": nat_type, "hairpin": hairpin}))
    found = classify_nat(net, "h", ("a", "b"), second_inside="h2")
    assert (found.mapping, found.filtering) == EXPECTED[nat_type], f"{found}; outside hosts saw {found.seen}"
    assert found.name == nat_type
    assert found.hairpin is hairpin
    # every mapping is on the NAT's public address
    assert {seen.rpartition(":")[0] for seen in found.seen.values()} == {"198.18.3.1"}


def test_mapping_is_kept_when_the_remote_sends_first(wgh_network):
    """Hole punching: a remote's packet to the public address:port before the inside
    host has sent there must not cost the inside host that port (it would with plain
    masquerade: conntrack would keep the unsolicited flow and masquerade would pick
    another port)."""
    net = wgh_network(nat_topology({}))
    with udp_socket(net, "h", 40000) as inside, udp_socket(net, "a", 40000) as remote:
        remote.sendto(b"early", ("198.18.3.1", 40000))
        assert receive(inside) is None  # not let in: no mapping yet
        inside.sendto(b"punch", (str(net.plan.underlay_address("h", "a")), 40000))
        got = receive(remote)
        assert got is not None and got[1] == ("198.18.3.1", 40000)
        remote.sendto(b"through", got[1])
        assert receive(inside) is not None


@pytest.mark.parametrize("nat_type", ["full-cone", "restricted-cone"])
def test_cone_mapping_expires_with_the_udp_timeout(wgh_network, nat_type):
    net = wgh_network(nat_topology({"type": nat_type, "udp_timeout": "1s"}))
    rules = net.run("nat", ["nft", "list", "map", "inet", "wgh_nat", "mappings"]).stdout
    assert "timeout 1s" in rules
    address_a = str(net.plan.underlay_address("h", "a"))
    with udp_socket(net, "h") as inside, udp_socket(net, "a", 3478) as remote, udp_socket(net, "a", 3479) as other:
        inside.sendto(b"open", (address_a, 3478))
        _, public = receive(remote)
        other.sendto(b"in", public)  # another port of the same host: let in by either cone
        assert receive(inside) is not None
        time.sleep(2.5)  # idle past the timeout: mapping and conntrack entries are gone
        other.sendto(b"late", public)
        assert receive(inside, 0.5) is None


def test_local_socket_on_a_nat_node_still_receives(wgh_network):
    """The NAT's guard drops unsolicited UDP for the router, but not for its own
    sockets (a WireGuard peer running on the NAT node)."""
    net = wgh_network(nat_topology({"type": "full-cone"}))
    assert udp_arrives(net, "a", "nat", 51820)
    # the same packet to a port nobody listens on leaves no conntrack entry behind
    with udp_socket(net, "a", 4444) as remote:
        remote.sendto(b"x", ("198.18.3.1", 4444))
        time.sleep(0.1)
    entries = net.run("nat", ["conntrack", "-L", "-p", "udp", "--dport", "4444"])
    assert "dport=4444" not in entries.stdout


# --- firewall -------------------------------------------------------------------------


def line(firewall_on: str, rules: list[dict], **link_options) -> dict:
    """a — r — b, a router in the middle; `rules` on `firewall_on`."""
    nodes = {"a": {}, "r": {"router": True}, "b": {}}
    nodes[firewall_on] = {**nodes[firewall_on], "firewall": rules}
    return {
        "nodes": nodes,
        "links": [{"ends": ["a", "r"], **link_options}, {"ends": ["r", "b"], **link_options}],
    }


@pytest.mark.parametrize("where", ["r", "b"], ids=["through-router", "to-node"])
def test_drop_udp_port(wgh_network, where):
    net = wgh_network(line(where, [{"drop": "udp", "port": 5000}]))
    assert not udp_arrives(net, "a", "b", 5000, within=NEGATIVE_WINDOW)
    assert udp_arrives(net, "a", "b", 5001)
    assert tcp_connects(net, "a", "b", 5000)  # only UDP
    assert pings(net, "a", "b")


@pytest.mark.parametrize("where", ["r", "b"], ids=["through-router", "to-node"])
def test_drop_tcp_port(wgh_network, where):
    net = wgh_network(line(where, [{"drop": "tcp", "port": 8000}]))
    assert not tcp_connects(net, "a", "b", 8000, within=NEGATIVE_WINDOW)
    assert tcp_connects(net, "a", "b", 8001)
    assert udp_arrives(net, "a", "b", 8000)


def test_drop_icmp_blocks_ping_not_udp(wgh_network):
    net = wgh_network(line("r", [{"drop": "icmp"}], ipv6=True))
    assert not pings(net, "a", "b", within=NEGATIVE_WINDOW)
    assert not pings(net, "a", "b", family=6, within=NEGATIVE_WINDOW)
    assert udp_arrives(net, "a", "b", 5000)
    # IPv6 neighbour discovery still works (it is ICMPv6): IPv6 UDP passes
    assert udp_arrives(net, "a", "b", 5000, family=6)


IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_MTU = 10, 2, 14


def learned_path_mtu(net, src: str, dst: str, wait: float = 3.0) -> int:
    """Send 1400-byte datagrams with DF set, every 0.1 s for up to `wait` seconds or
    until the sender learns a smaller path MTU; the path MTU the sender then knows.

    The first datagrams wait for ARP on each hop and the ICMP error has to come back
    the same way: under load that takes longer than a few tenths of a second."""
    address = str(net.plan.underlay_address(src, dst))

    def probe() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
            sock.connect((address, 9))
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    sock.send(b"x" * 1400)
                except OSError as exc:
                    assert exc.errno == errno.EMSGSIZE
                time.sleep(0.1)
                mtu = sock.getsockopt(socket.IPPROTO_IP, IP_MTU)
                if mtu < 1500:
                    return mtu
            return sock.getsockopt(socket.IPPROTO_IP, IP_MTU)

    return nsexec.call_in(net.node(src).netns_path, probe)


@pytest.mark.parametrize("drop_icmp", [False, True], ids=["plain", "drop-icmp"])
@pytest.mark.parametrize("narrow", ["own-link", "further"])
def test_drop_icmp_on_a_router_makes_a_pmtu_black_hole(wgh_network, narrow, drop_icmp):
    """a — r — s — b with a 1280-byte link after r (own-link) or after s (further):
    with `drop: icmp` on r, a never learns the smaller path MTU."""
    links = [{"ends": ["a", "r"]}, {"ends": ["r", "s"]}, {"ends": ["s", "b"]}]
    links[1 if narrow == "own-link" else 2]["mtu"] = 1280
    net = wgh_network({
        "nodes": {"a": {}, "r": {"router": True, "firewall": [{"drop": "icmp"}] if drop_icmp else []},
                  "s": {"router": True}, "b": {}},
        "links": links,
    })
    assert learned_path_mtu(net, "a", "b") == (1500 if drop_icmp else 1280)


def test_allow_established(wgh_network):
    """On b: only flows b started get in."""
    net = wgh_network(line("b", [{"allow": "established"}]))
    address_a = str(net.plan.underlay_address("b", "a"))
    # b starts: replies come back
    with udp_socket(net, "b") as inside, udp_socket(net, "a", 6000) as outside:
        got = None
        for _ in range(3):  # the first datagram may wait on ARP, longer on a loaded machine
            inside.sendto(b"out", (address_a, 6000))
            got = receive(outside, timeout=1.0)
            if got is not None:
                break
        assert got is not None
        outside.sendto(b"reply", got[1])
        assert receive(inside, timeout=1.0) is not None
        # the same outside socket, to another port of b: a new flow, dropped
        with udp_socket(net, "b", 6001) as other:
            outside.sendto(b"unsolicited", (got[1][0], 6001))
            assert receive(other) is None
    assert pings(net, "b", "a")
    assert not pings(net, "a", "b", within=NEGATIVE_WINDOW)
    assert not udp_arrives(net, "a", "b", 6002, within=NEGATIVE_WINDOW)
    assert not tcp_connects(net, "a", "b", 6003, within=NEGATIVE_WINDOW)


def test_from_filters_only_that_side(wgh_network):
    net = wgh_network(line("r", [{"drop": "udp", "from": "a"}, {"drop": "icmp", "from": "b"}]))
    assert not udp_arrives(net, "a", "b", 7000, within=NEGATIVE_WINDOW)
    assert udp_arrives(net, "b", "a", 7000)
    # ICMP dropped only when it arrives from b: a's echo requests get through, b's
    # replies do not; b's own pings do not get through either
    assert not pings(net, "a", "b", within=NEGATIVE_WINDOW)
    assert not pings(net, "b", "a", within=NEGATIVE_WINDOW)
    assert pings(net, "a", "r")  # a's side of r is not filtered for ICMP


def test_allow_established_from_one_side(wgh_network):
    """On the router, facing a: b's side may start flows, a's side may only answer.
    (Without `from:`, a router allowing only established flows lets nothing start.)"""
    net = wgh_network(line("r", [{"allow": "established", "from": "a"}]))
    assert pings(net, "b", "a")
    assert not pings(net, "a", "b", within=NEGATIVE_WINDOW)
    assert udp_arrives(net, "b", "a", 7100)
    assert not udp_arrives(net, "a", "b", 7100, within=NEGATIVE_WINDOW)


def test_drop_all(wgh_network):
    net = wgh_network(line("b", [{"drop": "all"}]))
    assert not pings(net, "a", "b", within=NEGATIVE_WINDOW)
    assert not udp_arrives(net, "a", "b", 7200, within=NEGATIVE_WINDOW)
    assert pings(net, "a", "r")
    assert net.run("b", ["ping", "-c", "1", "-W", "1", "127.0.0.1"]).returncode == 0  # loopback untouched


def test_rules_apply_in_file_order(wgh_network):
    """established accepted first: a later `drop: udp` does not hit replies."""
    net = wgh_network(line("b", [{"allow": "established"}, {"drop": "udp"}]))
    rules = net.run("b", ["nft", "list", "table", "inet", "wgh_filter"]).stdout
    assert rules.index("ct state established,related accept") < rules.index("meta l4proto udp drop")
    address_a = str(net.plan.underlay_address("b", "a"))
    with udp_socket(net, "b") as inside, udp_socket(net, "a", 6000) as outside:
        inside.sendto(b"out", (address_a, 6000))
        _, source = receive(outside)
        outside.sendto(b"reply", source)
        assert receive(inside) is not None
