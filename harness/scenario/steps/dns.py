"""DNS: re-resolving peers' endpoints in the background, as wireguard-tools'
reresolve-dns does. Its checks are with the rest of DNS's, across steps (dns_checks.py)."""

from __future__ import annotations

from pydantic import Field

from harness.scenario.fields import Duration, NodeName, Strict
from harness.scenario.steps.registry import step


class ReresolveArgs(Strict):
    """In the background, as wireguard-tools' contrib/reresolve-dns does: every `every`, each
    peer of `node` whose endpoint was given by DNS name and whose latest handshake is older
    than `stale_after` gets its endpoint set again from a fresh resolution."""

    node: NodeName = Field(description="The WireGuard node whose peers' DNS endpoints are re-resolved.")
    every: Duration = Field(30.0, gt=0, description="Time between rounds (reresolve-dns.sh is usually run by a 30 s timer).")
    stale_after: Duration = Field(
        135.0, ge=0, description="Re-resolve only peers whose latest handshake is older (reresolve-dns.sh: 135 s)."
    )


step("reresolve", ReresolveArgs)
