"""Routes through a WireGuard interface, and wg-quick's full-tunnel policy routing.

A default route through the tunnel would also carry WireGuard's own encrypted
packets to the peer's endpoint: they would loop back into the interface. wg-quick
avoids that with a firewall mark, and so do we, with pyroute2, per IP family that
has a default route through the tunnel:

    wg set wg0 fwmark 51820                      # WireGuard's socket marks its packets
    ip route add default dev wg0 table 51820
    ip rule add not fwmark 51820 table 51820     # unmarked traffic: into the tunnel
    ip rule add table main suppress_prefixlength 0   # main's specific routes still win
    sysctl net.ipv4.conf.all.src_valid_mark=1

Marked packets skip the 51820 table and leave by the main table's underlay routes.
Everything lives in the node's namespace and goes with it.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from harness.net import nlbatch, nsexec
from harness.plan.network import MAIN_TABLE, WgPlan

FIB_RULE_INVERT = 0x2  # linux/fib_rules.h: the rule matches packets that do NOT match it
# wg-quick's `ip rule add` without a priority lands just below the main table (32766)
PRIORITY_NOT_FWMARK = 32765
PRIORITY_SUPPRESS = 32764
_FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}
IFF_MULTICAST = 0x1000
_MULTICAST6 = ipaddress.ip_network("ff00::/8")


def policy_rules(wg: WgPlan) -> list[dict[str, Any]]:
    """The pyroute2 `rule add` requests for a plan (empty without a full tunnel)."""
    mark = wg.fwmark
    rules: list[dict[str, Any]] = []
    for version in wg.policy_families():
        family = _FAMILIES[version]
        rules.append({"family": family, "priority": PRIORITY_NOT_FWMARK, "fwmark": mark, "flags": FIB_RULE_INVERT, "table": mark})
        rules.append({"family": family, "priority": PRIORITY_SUPPRESS, "table": MAIN_TABLE, "suppress_prefixlen": 0})
    return rules


def install_routes(node: nsexec.InNamespace, wg: WgPlan, index: int) -> None:
    """The interface's routes, each into its table (idempotent: a restarted interface
    gets them again). Raw netlink, no pyroute2 handle: any thread may call it."""
    # one batch: a mesh node has hundreds of these, one request each is slow (see nlbatch)
    nlbatch.install_routes(node, [{"dst": d, "oif": index, "table": table} for d, table in wg.routes_by_table()], replace=True)


def install_rules(node: nsexec.InNamespace, wg: WgPlan) -> None:
    """For a full tunnel, wg-quick's fwmark rules (kept if already there: a restarted
    interface); nothing otherwise. Through the node's pyroute2 handle: its thread only."""
    if not wg.policy_families():
        return
    if 4 in wg.policy_families():
        # without it, replies to marked packets fail the reverse-path check (as wg-quick sets)
        nsexec.write_sysctls(node.netns_path, {"net.ipv4.conf.all.src_valid_mark": "1"})
    for rule in policy_rules(wg):
        try:
            node.netlink.rule("add", **rule)
        except NetlinkError as exc:  # EEXIST: already there from before a restart
            if exc.code != errno.EEXIST:
                raise


def installed_rules(ipr: Any, version: int) -> list[dict[str, Any]]:
    """The rules of one family as (priority, table, fwmark, inverted, suppress) dicts, for checks."""
    found = []
    for msg in ipr.get_rules(family=_FAMILIES[version]):
        found.append(
            {
                "priority": msg.get_attr("FRA_PRIORITY") or 0,
                "table": msg.get_attr("FRA_TABLE") or msg["table"],
                "fwmark": msg.get_attr("FRA_FWMARK"),
                "inverted": bool(msg["flags"] & FIB_RULE_INVERT),
                "suppress_prefixlength": msg.get_attr("FRA_SUPPRESS_PREFIXLEN"),
            }
        )
    return found


def prepare(node: nsexec.InNamespace, wg: WgPlan) -> None:
    """Before the interface comes up: keep the kernel from sending its own IPv6
    packets (MLD reports, router solicitations) into a full tunnel. With ::/0 in the
    AllowedIPs they go to the peer the moment the interface is up, before the harness
    sets endpoints; wireguard-go then tries a handshake it cannot send, and waits
    REKEY_TIMEOUT (5 s) before trying again (kernel WireGuard just drops them)."""
    if not any(net.version == 6 and net.overlaps(_MULTICAST6) for p in wg.peers for net in p.allowed_ips):
        return
    nlbatch.set_link_flags(node, wg.ifname, flags=0, change=IFF_MULTICAST)  # raw netlink: any thread
    nsexec.write_sysctls(node.netns_path, {f"net.ipv6.conf.{wg.ifname}.router_solicitations": "0"})
