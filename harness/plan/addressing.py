"""Address allocation (pure): the underlay from 198.18.0.0/15 (RFC 2544 benchmarking)
and 2001:2::/48 (RFC 5180), the tunnel from 100.64.0.0/10 and fd00:64::/64.

A point-to-point link gets a /24 while the topology has at most 511 links, so its ends
read as 198.18.<link>.1 and .2; a larger topology gets a /29 per link (16 383 fit):
still room for a renumbered end. Each link also gets a /64 of 2001:2::/48 when it
carries IPv6 (65 535 fit). A topology that needs more gives its links `addresses:`.

A LAN (a shared segment) gets one subnet that holds every member and some spare
addresses, a /24 at least, taken from the top of 198.18.0.0/15 downwards, so links
(from the bottom) keep their addresses; member N (from 0) has the subnet's host N+1.
Its IPv6 /64 is the one its link index names, like a link's.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Interface, IPv4Network, IPv6Interface

from harness.errors import HarnessError

UNDERLAY_V4 = ipaddress.ip_network("198.18.0.0/15")
UNDERLAY_V6 = ipaddress.ip_network("2001:2::/48")
TUNNEL_V4 = ipaddress.ip_network("100.64.0.0/10")
TUNNEL_V6 = ipaddress.ip_network("fd00:64::/64")

READABLE_PREFIX = 24  # per link, while they fit
COMPACT_PREFIX = 29  # per link beyond that: 2 ends and 4 spare addresses
V6_PREFIX = 64


def _capacity(prefix: int) -> int:
    return 2 ** (prefix - UNDERLAY_V4.prefixlen) - 1  # the first block stays unused


MAX_READABLE_LINKS = _capacity(READABLE_PREFIX)  # 511
MAX_LINKS = _capacity(COMPACT_PREFIX)  # 16 383
MAX_LINKS_V6 = 2 ** (V6_PREFIX - UNDERLAY_V6.prefixlen) - 1  # 65 535
MAX_TUNNEL_NODES = 2**16 - 1


LAN_SPARE = 16  # addresses a LAN keeps free beyond its members (a renumbered member takes one)


class AddressesExhausted(HarnessError, ValueError):
    """More links (or LANs: `section`) than the automatic plan has subnets for."""

    def __init__(self, message: str, section: str = "links"):
        self.section = section
        super().__init__(message)


def link_prefix(link_count: int, top: int | None = None) -> int:
    """The prefix of every automatic link subnet in a topology of `link_count` links, when
    the pool ends at `top` (where the LANs' subnets begin; default: the end of the range)."""
    room = (top if top is not None else int(UNDERLAY_V4.broadcast_address) + 1) - int(UNDERLAY_V4.network_address)
    for prefix in (READABLE_PREFIX, COMPACT_PREFIX):
        if (link_count + 1) * 2 ** (32 - prefix) <= room:  # the first block stays unused
            return prefix
    lans = " beside the LANs' subnets" if top is not None else ""
    raise AddressesExhausted(
        f"{link_count} links: automatic addresses fit at most {room // 2 ** (32 - COMPACT_PREFIX) - 1} (a /{COMPACT_PREFIX} "
        f"each in {UNDERLAY_V4}{lans}); give the links `addresses:`, or put nodes on a LAN"
    )


def link_subnet(link_index: int, link_count: int, top: int | None = None) -> IPv4Network:
    """Link N's (0-based) subnet: block N+1 of its size in 198.18.0.0/15."""
    prefix = link_prefix(link_count, top)
    start = int(UNDERLAY_V4.network_address) + (link_index + 1) * 2 ** (32 - prefix)
    return IPv4Network((start, prefix))


def underlay_pair(link_index: int, link_count: int, top: int | None = None) -> tuple[IPv4Interface, IPv4Interface]:
    """Link N's two ends: the first two hosts of its subnet (.1 and .2 of a /24)."""
    subnet = link_subnet(link_index, link_count, top)
    first = int(subnet.network_address)
    return IPv4Interface((first + 1, subnet.prefixlen)), IPv4Interface((first + 2, subnet.prefixlen))


def lan_prefix(members: int) -> int:
    """The automatic prefix of a LAN of `members`: every member, LAN_SPARE spare, the
    network and broadcast addresses; a /24 at least, so small LANs read as links do."""
    return min(READABLE_PREFIX, 32 - (members + LAN_SPARE + 1).bit_length())


def lan_subnets(member_counts: list[int | None]) -> list[IPv4Network | None]:
    """Automatic subnets for LANs of these sizes (None: the LAN gives its own), from the
    top of 198.18.0.0/15 downwards, each aligned to its size."""
    top = int(UNDERLAY_V4.broadcast_address) + 1
    out: list[IPv4Network | None] = []
    for count in member_counts:
        if count is None:
            out.append(None)
            continue
        size = 2 ** (32 - lan_prefix(count))
        start = (top - size) // size * size
        if start <= int(UNDERLAY_V4.network_address):
            raise AddressesExhausted(f"the LANs' subnets do not fit in {UNDERLAY_V4}: give the larger LANs `subnet:`", "lans")
        out.append(IPv4Network((start, lan_prefix(count))))
        top = start
    return out


def pool_top(subnets: list[IPv4Network | None]) -> int | None:
    """Where the links' pool ends: at the lowest automatic LAN subnet (None: no LAN took any)."""
    starts = [int(s.network_address) for s in subnets if s is not None]
    return min(starts) if starts else None


def member_address(subnet: ipaddress.IPv4Network | ipaddress.IPv6Network, position: int) -> IPv4Interface | IPv6Interface:
    """Member N's (0-based) address on a LAN: the subnet's host N+1."""
    return ipaddress.ip_interface((int(subnet.network_address) + position + 1, subnet.prefixlen))


def lan_subnet_v6(link_index: int) -> ipaddress.IPv6Network:
    """A LAN's automatic /64: the one its link index names (as a link's)."""
    if link_index >= MAX_LINKS_V6:
        raise AddressesExhausted(
            f"link {link_index + 1}: automatic IPv6 addresses fit at most {MAX_LINKS_V6} links and LANs (a /{V6_PREFIX} "
            f"each in {UNDERLAY_V6}); give the LANs `subnet6:`",
            "lans",
        )
    return ipaddress.IPv6Network((int(UNDERLAY_V6.network_address) + ((link_index + 1) << 64), V6_PREFIX))


def underlay_pair_v6(link_index: int) -> tuple[IPv6Interface, IPv6Interface]:
    if link_index >= MAX_LINKS_V6:
        raise AddressesExhausted(
            f"link {link_index + 1}: automatic IPv6 addresses fit at most {MAX_LINKS_V6} links (a /{V6_PREFIX} each in "
            f"{UNDERLAY_V6}); give the links `addresses:`"
        )
    subnet = int(UNDERLAY_V6.network_address) + ((link_index + 1) << 64)
    return IPv6Interface((subnet + 1, V6_PREFIX)), IPv6Interface((subnet + 2, V6_PREFIX))


def spare_address(network: ipaddress.IPv4Network | ipaddress.IPv6Network, used: set) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address of `network` nobody uses, for a renumbered end: the first at .100 or
    above (as a DHCP pool hands them out), else the highest free one; None when full."""
    fallback = None
    for scanned, host in enumerate(network.hosts()):
        if host in used:
            continue
        if int(host) % 256 >= 100:
            return host
        fallback = host
        if scanned > 4096:  # a huge subnet (127/8, a /64): one free address is enough
            break
    return fallback


def tunnel_addresses(node_number: int) -> list[IPv4Interface | IPv6Interface]:
    """WireGuard node N (1-based) gets 100.64.0.N/32 … and fd00:64::N/128."""
    if not 1 <= node_number <= MAX_TUNNEL_NODES:
        raise AddressesExhausted(f"tunnel node numbers run from 1 to {MAX_TUNNEL_NODES}: give the interfaces `address:`")
    return [
        IPv4Interface((int(TUNNEL_V4.network_address) + node_number, 32)),
        IPv6Interface((int(TUNNEL_V6.network_address) + node_number, 128)),
    ]
