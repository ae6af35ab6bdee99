"""A node's firewall rules as an nftables table in its namespace.

`table inet wgh_filter` (apart from the NAT's `wgh_nat`) holds every rule of the
node, in file order, twice: in `input` (traffic to the node) and in `forward`
(traffic through it, when it is a router). A rule with `from:` only matches packets
arriving on the interface facing that neighbour.

| rule                 | nftables                                                      |
| -------------------- | ------------------------------------------------------------- |
| `drop: udp` (+`port`)| `meta l4proto udp [udp dport P] drop`                         |
| `drop: tcp` (+`port`)| `meta l4proto tcp [tcp dport P] drop`                         |
| `drop: icmp`         | `meta l4proto { icmp, ipv6-icmp } drop`, and an `output` chain |
|                      | drops the ICMP errors the node itself sends (fragmentation     |
|                      | needed, packet too big, unreachable…): a PMTU black hole even  |
|                      | when the narrow link is this router's own                      |
| `drop: fragments`    | `ip frag-off & 0x3fff != 0 drop` (IPv4: more-fragments set or |
|                      | an offset) and `exthdr frag exists drop` (IPv6), in a          |
|                      | `prerouting` chain at priority -450: before conntrack's        |
|                      | defragmentation (-400) reassembles them, so the rule sees the  |
|                      | fragments whether or not the node tracks connections. Covers  |
|                      | traffic to and through the node, ahead of every other rule    |
| `drop: all`          | `drop`                                                        |
| `allow: established` | `ct state established,related accept`, then `drop`            |

Never filtered, so that failures look like filtering and not like a broken node:
loopback (the node talking to itself), and IPv6 neighbour and router discovery
(without it an IPv6 link stops resolving neighbours at all).
"""

from __future__ import annotations

import shutil
from typing import Sequence

from harness.errors import BuildError, MissingCapability
from harness.net import nsexec
from harness.plan.network import FirewallPlan

TABLE = "wgh_filter"

NEIGHBOUR_DISCOVERY = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept"
ICMP_ERRORS_V4 = "icmp type { destination-unreachable, time-exceeded, parameter-problem }"
ICMP_ERRORS_V6 = "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem }"
# IPv4: the more-fragments flag or a fragment offset (any fragment, first one included)
FRAGMENTS_V4 = "ip frag-off & 0x3fff != 0"
FRAGMENTS_V6 = "exthdr frag exists"
# below NF_IP_PRI_CONNTRACK_DEFRAG (-400): fragments are seen before reassembly
BEFORE_DEFRAG = -450


def describe(rule: FirewallPlan) -> str:
    """A rule as the scenario wrote it (for comments and messages)."""
    what = f"drop {rule.drop}" if rule.drop else f"allow {rule.allow} only"
    if rule.port is not None:
        what += f" port {rule.port}"
    if rule.in_dev is not None:
        what += f" arriving on {rule.in_dev}"
    return what


def _statements(rule: FirewallPlan) -> list[str]:
    """The nftables statements of one rule (for input and forward alike)."""
    iif = f'iifname "{rule.in_dev}" ' if rule.in_dev else ""
    if rule.allow == "established":
        return [f"{iif}ct state established,related accept", f"{iif}drop"]
    if rule.allow is not None:
        raise ValueError(f"unknown firewall rule allow: {rule.allow!r}")
    if rule.drop in ("udp", "tcp"):
        port = f" {rule.drop} dport {rule.port}" if rule.port is not None else ""
        return [f"{iif}meta l4proto {rule.drop}{port} drop"]
    if rule.drop == "icmp":
        return [f"{iif}meta l4proto {{ icmp, ipv6-icmp }} drop"]
    if rule.drop == "fragments":
        return []  # in the prerouting chain (see _fragment_chain): reassembly would hide them from input/forward
    if rule.drop == "all":
        return [f"{iif}drop"]
    raise ValueError(f"a firewall rule drops udp, tcp, icmp, fragments or all, or allows established: {rule!r}")


def _fragment_chain(rules: Sequence[FirewallPlan]) -> list[str]:
    """A prerouting chain dropping IP fragments ahead of defragmentation, if any rule asks."""
    fragments = [rule for rule in rules if rule.drop == "fragments"]
    if not fragments:
        return []
    lines = [
        "",
        "  # IP fragments, before conntrack's defragmentation would reassemble them",
        "  chain prerouting {",
        f"    type filter hook prerouting priority {BEFORE_DEFRAG}; policy accept;",
    ]
    for rule in fragments:
        iif = f'iifname "{rule.in_dev}" ' if rule.in_dev else ""
        lines.append(f"    {iif}{FRAGMENTS_V4} drop")
        lines.append(f"    {iif}{FRAGMENTS_V6} drop")
    lines.append("  }")
    return lines


def nft_ruleset(rules: Sequence[FirewallPlan]) -> str:
    """The node's `wgh_filter` table, as text for `nft -f -`."""
    body: list[str] = []
    for number, rule in enumerate(rules, 1):
        statements = _statements(rule)
        body.append(f"    # rule {number}: {describe(rule)}" + ("" if statements else " (in chain prerouting)"))
        body.extend(f"    {statement}" for statement in statements)

    lines = [
        f"table inet {TABLE} {{",
        "  # traffic to this node",
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
        '    iifname "lo" accept',
        f"    {NEIGHBOUR_DISCOVERY}",
        *body,
        "  }",
        "",
        "  # traffic through this node",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        *body,
        "  }",
    ]
    icmp = [rule for rule in rules if rule.drop == "icmp"]
    if icmp:
        lines += [
            "",
            "  # ICMP errors this node sends itself (a router's own 'fragmentation needed')",
            "  chain output {",
            "    type filter hook output priority filter; policy accept;",
        ]
        for rule in icmp:
            oif = f'oifname "{rule.in_dev}" ' if rule.in_dev else ""
            lines.append(f"    {oif}{ICMP_ERRORS_V4} drop")
            lines.append(f"    {oif}{ICMP_ERRORS_V6} drop")
        lines.append("  }")
    lines += _fragment_chain(rules)
    lines.append("}")
    return "\n".join(lines) + "\n"


def apply(node: nsexec.InNamespace, rules: Sequence[FirewallPlan]) -> None:
    """The node's firewall table, inside `node`."""
    if not rules:
        return
    nft = shutil.which("nft")
    if nft is None:
        raise MissingCapability("firewall rules need nftables: apt-get install nftables")
    # generous timeout: the first nft in a fresh VM loads its modules, slowly under TCG
    result = node.run([nft, "-f", "-"], input=nft_ruleset(rules), timeout=180.0)
    if result.returncode != 0:
        raise BuildError(f"nft refused the firewall rules in {node.netns_path}: {result.stderr.strip()}")
