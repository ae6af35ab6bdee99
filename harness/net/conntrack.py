"""Read a NAT router's conntrack table (pyroute2, netlink in its namespace)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.endpoint import format_endpoint
from harness.net import nsexec

NETLINK_NETFILTER = 12


@dataclass(frozen=True)
class UdpMapping:
    inside: str  # address:port before translation
    outside: str  # address:port the NAT uses on its public side
    remote: str  # the far end
    seconds_left: int


def udp_mappings(node: nsexec.InNamespace) -> list[UdpMapping]:
    from pyroute2 import Conntrack

    ct = Conntrack(fileno=nsexec.netlink_fd(node.netns_path, NETLINK_NETFILTER))
    try:
        found = []
        for entry in ct.dump_entries():
            orig, reply = entry.tuple_orig, entry.tuple_reply
            if orig is None or reply is None or getattr(orig, "proto", None) != 17:
                continue
            found.append(
                UdpMapping(
                    inside=format_endpoint(orig.saddr, orig.sport),
                    outside=format_endpoint(reply.daddr, reply.dport),
                    remote=format_endpoint(orig.daddr, orig.dport),
                    seconds_left=entry.timeout or 0,
                )
            )
        return found
    finally:
        ct.close()


def flush(node: nsexec.InNamespace) -> int:
    """Delete every conntrack entry in `node` (NAT mappings included)."""
    from pyroute2 import Conntrack

    ct = Conntrack(fileno=nsexec.netlink_fd(node.netns_path, NETLINK_NETFILTER))
    try:
        count = sum(1 for _ in ct.dump_entries())
        ct.flush()
        return count
    finally:
        ct.close()
