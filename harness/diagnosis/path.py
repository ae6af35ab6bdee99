"""The diagnosis of a failed check through the tunnel, hop by hop."""

from __future__ import annotations

import ipaddress

from harness.diagnosis.result import Diagnosis
from harness.diagnosis.tunnel import diagnose_tunnel


def diagnose_path(network, src: str, address, source: str | None = None, since: float | None = None) -> Diagnosis:
    """Diagnose the first tunnel hop (the peer whose AllowedIPs carry `address`); when
    that hop looks healthy and forwards further (a hub), diagnose the next hop too.
    `since`: when the failed check sent its last packet (epoch seconds)."""
    plan = network.plan
    hop = plan.wireguard[src].peer_for(address)
    if hop is None:
        diagnosis = Diagnosis()
        diagnosis.set("allowed-ips-sender", f"no peer's AllowedIPs on {src} cover {address}: the packet has no peer to go to and is dropped")
        return diagnosis
    diagnosis = diagnose_tunnel(network, src, hop.node, str(address), source_address=source, since=since)
    next_hop = plan.wireguard[hop.node].peer_for(address)
    target = ipaddress.ip_address(str(address))
    owner = next((n for n, wg in plan.wireguard.items() if any(a.ip == target for a in wg.addresses)), None)
    if next_hop is None and owner not in (None, hop.node) and diagnosis.code == "handshake-no-data":
        # the hub got it, and has no peer to pass it on to
        diagnosis.set(
            "allowed-ips-sender",
            f"AllowedIPs on {hop.node} do not cover {address} of {owner}: {hop.node} takes {src}'s packet and has no "
            f"peer to forward it to (on the hop {hop.node} → {owner})",
        )
    if next_hop is not None and next_hop.node != src and diagnosis.code == "handshake-no-data":
        second = diagnose_tunnel(network, hop.node, next_hop.node, str(address), since=since)
        diagnosis.lines += [f"next hop {hop.node} → {next_hop.node}:"] + ["  " + line for line in second.lines]
        diagnosis.set(second.code, f"{second.cause} (on the hop {hop.node} → {next_hop.node})")
    return diagnosis
