"""Address allocation: underlay from 198.18.0.0/15 (RFC 2544 benchmarking) and
2001:2::/48 (RFC 5180), tunnel from 100.64.0.0/10 and fd00::/8 (pure)."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Interface, IPv6Interface

UNDERLAY_V4 = ipaddress.ip_network("198.18.0.0/15")
UNDERLAY_V6 = ipaddress.ip_network("2001:2::/48")
TUNNEL_V4 = ipaddress.ip_network("100.64.0.0/10")
TUNNEL_V6 = ipaddress.ip_network("fd00:64::/64")

MAX_LINKS = 511  # /24 per link inside the /15, the first one unused


def underlay_pair(link_index: int) -> tuple[IPv4Interface, IPv4Interface]:
    """Link N (0-based) gets 198.18.(N+1).0/24 counting across the /15: ends .1 and .2."""
    if link_index >= MAX_LINKS:
        raise ValueError(f"at most {MAX_LINKS} links get automatic addresses")
    subnet = int(UNDERLAY_V4.network_address) + (link_index + 1) * 256
    return (
        IPv4Interface((subnet + 1, 24)),
        IPv4Interface((subnet + 2, 24)),
    )


def underlay_pair_v6(link_index: int) -> tuple[IPv6Interface, IPv6Interface]:
    subnet = int(UNDERLAY_V6.network_address) + ((link_index + 1) << 64)
    return IPv6Interface((subnet + 1, 64)), IPv6Interface((subnet + 2, 64))


def tunnel_addresses(node_number: int) -> list[IPv4Interface | IPv6Interface]:
    """WireGuard node N (1-based) gets 100.64.0.N/32 and fd00:64::N/128."""
    if not 1 <= node_number < 2**16:
        raise ValueError("tunnel node numbers run from 1 to 65535")
    return [
        IPv4Interface((int(TUNNEL_V4.network_address) + node_number, 32)),
        IPv6Interface((int(TUNNEL_V6.network_address) + node_number, 128)),
    ]
