"""Mininet topologies written as Mininet's documentation teaches (a `Topo` subclass,
`addHost`/`addSwitch`/`addLink`, a `LinuxRouter` node class as in mininet/examples),
with WireGuard on some hosts through harness.mininet.

TwoSiteWAN: a headquarters server on the public side of a WAN router, and a branch
office behind a NAT'd gateway (a home-router-like masquerade, set up with iptables as
a Mininet user would), its hosts on one switch:

    hq ── wan ── branchgw (NAT) ── s1 ── branch
                                      └── pc

`branch` runs WireGuard towards `hq` (it knows hq's public address; hq only learns
branch's from its packets, through the NAT). Every address is inside the topology's
own namespaces.
"""

from __future__ import annotations

from typing import Any

from mininet.node import Node
from mininet.topo import Topo

from harness.mininet import Bridge, WgHost


class LinuxRouter(Node):
    """A node that forwards (mininet/examples/linuxrouter.py)."""

    def config(self, **params: Any) -> Any:
        result = super().config(**params)
        self.cmd("sysctl -q net.ipv4.ip_forward=1")
        return result


class NatGateway(LinuxRouter):
    """A router that masquerades what leaves by `outside`, and forgets an idle UDP
    mapping after `udp_timeout` seconds (conntrack, in its own namespace)."""

    def config(self, outside: str = "", udp_timeout: int = 30, **params: Any) -> Any:
        result = super().config(**params)
        self.cmd(f"iptables -t nat -A POSTROUTING -o {outside} -j MASQUERADE")
        self.cmd(f"sysctl -q net.netfilter.nf_conntrack_udp_timeout={udp_timeout} net.netfilter.nf_conntrack_udp_timeout_stream={udp_timeout}")
        return result


class TwoSiteWAN(Topo):
    """The two-site WAN. `keepalive`: the branch's persistent keepalive towards hq
    (0: none); `udp_timeout`: how long the branch NAT keeps an idle mapping;
    `wireguard`: False for the underlay alone (add WireGuard yourself with
    harness.mininet.add_wireguard)."""

    def build(self, keepalive: int = 25, udp_timeout: int = 30, wireguard: bool = True) -> None:  # type: ignore[override]
        hq_settings = {"peers": {"branch": {}}} if wireguard else None
        branch_settings = {"peers": {"hq": {"endpoint": "hq", "persistent_keepalive": keepalive}}} if wireguard else None

        hq = self.addHost("hq", cls=WgHost, ip="198.51.100.10/24", defaultRoute="via 198.51.100.1", wireguard=hq_settings)
        wan = self.addNode("wan", cls=LinuxRouter, ip="198.51.100.1/24")
        gateway = self.addNode(
            "branchgw", cls=NatGateway, ip="203.0.113.2/24", defaultRoute="via 203.0.113.1",
            outside="branchgw-eth0", udp_timeout=udp_timeout,
        )
        s1 = self.addSwitch("s1", cls=Bridge)
        branch = self.addHost("branch", cls=WgHost, ip="192.168.1.10/24", defaultRoute="via 192.168.1.1", wireguard=branch_settings)
        pc = self.addHost("pc", ip="192.168.1.20/24", defaultRoute="via 192.168.1.1")

        self.addLink(hq, wan, intfName2="wan-eth0", params2={"ip": "198.51.100.1/24"})
        self.addLink(gateway, wan, intfName1="branchgw-eth0", params1={"ip": "203.0.113.2/24"},
                     intfName2="wan-eth1", params2={"ip": "203.0.113.1/24"})
        self.addLink(s1, gateway, intfName2="branchgw-eth1", params2={"ip": "192.168.1.1/24"})
        self.addLink(branch, s1)
        self.addLink(pc, s1)


TOPOS = {"twosite": TwoSiteWAN}  # for `mn --custom examples/topos.py --topo twosite`
