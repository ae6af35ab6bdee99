"""The node handle's named queries (harness.net.queries) and /proc/net readers: what
the diagnosis and the steps ask of a node, as plain data, so that a node can live
where its netlink handle and /proc are not. Plus the seam itself: the controller's
side (diagnosis, steps) asks the node and never reaches into its namespace."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from harness.diagnosis.cryptokey import echo_requests_counted
from harness.net import nsexec
from harness.net.queries import NetlinkQueries, RouteLookup
from harness.steps.throughput import listening_ports

HARNESS = Path(__file__).resolve().parents[2] / "harness"

SNMP = """\
Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 10
Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects InEchos InEchoReps
Icmp: 9 0 0 2 0 0 0 0 7 0
IcmpMsg: InType3 InType8
IcmpMsg: 2 7
"""
SNMP6 = "Ip6InReceives                   \t12\nIcmp6InMsgs                     \t5\nIcmp6InEchos                    \t3\n"
TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1451 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1277 1 0 100 0 0 10 0
   1: 0100007F:A3B0 0100007F:1451 01 00000000:00000000 00:00000000 00000000     0        0 1300 1 0 20 4 30 10 -1
"""


def test_echo_requests_from_snmp_and_snmp6():
    assert echo_requests_counted(SNMP, 4) == 7
    assert echo_requests_counted(SNMP6, 6) == 3
    assert echo_requests_counted("Icmp6InMsgs 1\n", 6) == 0


def test_listening_ports_are_those_in_listen_state_only():
    assert listening_ports(TCP) == {0x1451}  # 5201, iperf3's; the established socket's port is not


def test_proc_net_names_are_file_names_only():
    with pytest.raises(ValueError):
        nsexec.read_proc_net("../../etc/shadow")
    assert "Icmp:" in nsexec.read_proc_net("snmp")


class _Message(dict):
    def get_attr(self, name):
        return self.get(name)


class _Netlink:
    """The few IPRoute calls the queries make, answered from a table."""

    def __init__(self, routes, links, addresses=()):
        self.routes, self.links, self.addresses = routes, links, addresses
        self.asked = []

    def route(self, command, **query):
        self.asked.append(query)
        if query["dst"] not in self.routes:
            raise NetlinkError(101, "Network is unreachable")
        return [self.routes[query["dst"]]]

    def link_lookup(self, ifname):
        return [index for index, link in self.links.items() if link["IFLA_IFNAME"] == ifname]

    def link(self, command, index):
        return [self.links[index]]

    def get_links(self, index):
        return [self.links[index]]

    def get_addr(self, family=None):
        return list(self.addresses)


class _Node(NetlinkQueries):
    def __init__(self, netlink):
        self.netlink = netlink


def test_route_lookup_is_plain_data_and_none_without_a_route():
    metrics = _Message(RTAX_MTU=1400)
    node = _Node(_Netlink({"198.18.2.2": _Message(RTA_OIF=3, RTA_GATEWAY="198.18.1.2", RTA_METRICS=metrics)}, {}))
    assert node.route_to("198.18.2.2", mark=51820) == RouteLookup(3, "198.18.1.2", 1400)
    assert node.netlink.asked[-1] == {"dst": "198.18.2.2", "mark": 51820}  # WireGuard's own packets carry its mark
    assert node.route_to("203.0.113.9") is None


def test_interface_queries():
    stats = _Message(rx_errors=4, tx_packets=10)
    node = _Node(_Netlink({}, {7: _Message(IFLA_IFNAME="wg0", IFLA_MTU=1420, IFLA_STATS64=stats)}))
    assert node.interface_index("wg0") == 7 and node.interface_index("eth9") is None
    assert node.interface_mtu(7) == 1420
    assert node.interface_counters("wg0") == {"rx_errors": 4, "tx_packets": 10}
    assert node.interface_counters("gone0") == {}


def test_address_state_names_a_tentative_address():
    tentative = _Message(IFA_ADDRESS="fd00:64::1", IFA_FLAGS=0x40, flags=0x40)  # IFA_F_TENTATIVE
    node = _Node(_Netlink({}, {}, [tentative]))
    assert node.address_state("fd00:64::1") == "tentative"
    assert node.address_state("fd00:64::2") is None


# the controller's side of the seam: what runs where the scenario is driven, whatever
# host the nodes are on
CONTROLLER_SIDE = ("diagnosis", "steps")
NAMESPACE_INTERNALS = {"netlink", "netns_path", "namespace"}


def test_diagnosis_and_steps_ask_the_node_and_never_reach_into_its_namespace():
    found = []
    for package in CONTROLLER_SIDE:
        for path in sorted((HARNESS / package).glob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in NAMESPACE_INTERNALS:
                    found.append(f"{path.relative_to(HARNESS)}:{node.lineno} .{node.attr}")
                if isinstance(node, ast.ImportFrom) and node.module == "harness.net" and any(a.name == "nsexec" for a in node.names):
                    found.append(f"{path.relative_to(HARNESS)}:{node.lineno} imports nsexec")
                if isinstance(node, ast.ImportFrom) and node.module == "harness.net.nsexec":
                    found.append(f"{path.relative_to(HARNESS)}:{node.lineno} imports nsexec")
    assert found == []
