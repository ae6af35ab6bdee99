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
    # when the kernel made it (epoch seconds), if the NAT timestamps its entries
    # (net.netfilter.nf_conntrack_timestamp): a mapping seen by a diagnosis may be
    # younger than the packets that failed
    started: float | None = None


# the conntrack sysctl that makes the kernel record each entry's start time
TIMESTAMP_SYSCTL = "net.netfilter.nf_conntrack_timestamp"


def udp_mappings(node: nsexec.InNamespace) -> list[UdpMapping]:
    from pyroute2 import Conntrack
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    ct = Conntrack(fileno=nsexec.netlink_fd(node.netns_path, NETLINK_NETFILTER))
    try:
        found = []
        for message in ct.dump():
            family = message["nfgen_family"]
            orig = NFCTAttrTuple.from_netlink(family, message.get_attr("CTA_TUPLE_ORIG"))
            reply = NFCTAttrTuple.from_netlink(family, message.get_attr("CTA_TUPLE_REPLY"))
            if getattr(orig, "proto", None) != 17 or reply.daddr is None:
                continue
            started = message.get_nested("CTA_TIMESTAMP", "CTA_TIMESTAMP_START")
            found.append(
                UdpMapping(
                    inside=format_endpoint(orig.saddr, orig.sport),
                    outside=format_endpoint(reply.daddr, reply.dport),
                    remote=format_endpoint(orig.daddr, orig.dport),
                    seconds_left=message.get_attr("CTA_TIMEOUT") or 0,
                    started=started / 1e9 if started else None,
                )
            )
        return found
    finally:
        ct.close()


def record_start_times(node: nsexec.InNamespace) -> None:
    """Have the kernel timestamp `node`'s new conntrack entries (per network
    namespace; only accounting, no effect on what passes)."""
    nsexec.write_sysctls(node.netns_path, {TIMESTAMP_SYSCTL: "1"})


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
