"""Reading a host's underlay as it is, for a network the harness did not build (a
Mininet network of a user's own): its interfaces and addresses, its main-table routes,
whether it forwards, and whether it masquerades (nftables rules, iptables-nft's
included), so the diagnosis knows a NAT as it knows one from a scenario file."""

from __future__ import annotations

import ipaddress
import json
import shutil
from typing import Any

from harness.engine.underlay import NamespaceNode
from harness.net import nsexec
from harness.plan.observed import FoundNode
from harness.plan.routing import RoutePlan
from harness.plan.types import NatPlan

SKIPPED_KINDS = {"wireguard", "tun"}  # tunnels (ours, or a user's) are not underlay
MASQUERADING = {"masquerade", "snat"}  # nft's own statements
MASQUERADING_TARGETS = {"MASQUERADE", "SNAT"}  # iptables-nft's, as xt targets
NFT_TIMEOUT = 10.0


def find_node(node: NamespaceNode) -> FoundNode:
    """What `node` has on its underlay now."""
    ipr = node.netlink
    names: dict[int, str] = {}
    for link in ipr.get_links():
        info = link.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        name = link.get_attr("IFLA_IFNAME")
        if name != "lo" and kind not in SKIPPED_KINDS:
            names[link["index"]] = name
    addresses: dict[int, list[Any]] = {index: [] for index in names}
    for message in ipr.get_addr():
        if message["index"] in addresses:
            interface = ipaddress.ip_interface(f"{message.get_attr('IFA_ADDRESS')}/{message['prefixlen']}")
            if not interface.ip.is_link_local:
                addresses[message["index"]].append(interface)
    routes = []
    for message in ipr.get_routes(table=254):
        oif = message.get_attr("RTA_OIF")
        if oif not in names or message["type"] != 1:  # unicast routes on the underlay only
            continue
        destination = message.get_attr("RTA_DST")
        family_any = "0.0.0.0" if message["family"] == 2 else "::"
        network = ipaddress.ip_network(f"{destination or family_any}/{message['dst_len']}", strict=False)
        gateway = message.get_attr("RTA_GATEWAY")
        routes.append(RoutePlan(network, ipaddress.ip_address(gateway) if gateway else None, names[oif]))
    interfaces = tuple((names[index], tuple(found)) for index, found in addresses.items())
    forwards = any(nsexec.read_sysctl(node.netns_path, key) == "1" for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"))
    return FoundNode(node.name, interfaces, tuple(routes), forwards, _nat(node, interfaces) if forwards else None)


def _nat(node: NamespaceNode, interfaces: tuple[tuple[str, tuple], ...]) -> NatPlan | None:
    """The NAT `node` is, if a rule masquerades what leaves by one of its interfaces."""
    nft = shutil.which("nft")
    if nft is None:
        return None
    result = node.run([nft, "-j", "list", "ruleset"], timeout=NFT_TIMEOUT)
    if result.returncode != 0:
        return None
    outside = masquerading_interface(json.loads(result.stdout or "{}"))
    if outside is None:
        return None
    addresses = dict(interfaces).get(outside, ())
    try:  # WireGuard's flows go both ways at once: conntrack holds them by the stream timeout
        timeout: float | None = float(nsexec.read_sysctl(node.netns_path, "net.netfilter.nf_conntrack_udp_timeout_stream"))
    except (OSError, ValueError):
        timeout = None
    return NatPlan(
        outside,
        timeout,
        outside_addresses=tuple(addresses),
        inside_devs=tuple(name for name, _ in interfaces if name != outside),
    )


def masquerading_interface(ruleset: dict[str, Any]) -> str | None:
    """The interface a rule of `nft -j list ruleset` masquerades towards (its `oifname`
    match), or None."""
    for entry in ruleset.get("nftables", []):
        rule = entry.get("rule") if isinstance(entry, dict) else None
        if not rule:
            continue
        expressions = rule.get("expr", [])
        masquerades = any(
            (isinstance(e, dict) and MASQUERADING & e.keys())
            or (isinstance(e, dict) and e.get("xt", {}).get("type") == "target" and e["xt"].get("name") in MASQUERADING_TARGETS)
            for e in expressions
        )
        if not masquerades:
            continue
        for e in expressions:
            match = e.get("match") if isinstance(e, dict) else None
            if match and match.get("left", {}).get("meta", {}).get("key") == "oifname" and isinstance(match.get("right"), str):
                return match["right"]
    return None
