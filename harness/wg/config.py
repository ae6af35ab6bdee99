"""What the harness sets on a WireGuard device, whatever the backend (pure data)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PeerConfig:
    """A peer as configured at build time."""

    public_key: bytes
    allowed_ips: tuple[str, ...]
    endpoint: str | None = None
    persistent_keepalive: int = 0


@dataclass(frozen=True)
class PeerChange:
    """What to set for one peer; None leaves a setting as it is (a new peer gets it unset)."""

    public_key: bytes
    endpoint: str | None = None
    persistent_keepalive: int | None = None
    allowed_ips: tuple[str, ...] | None = None  # replaces the peer's list when given
    remove: bool = False

    @classmethod
    def from_config(cls, peer: PeerConfig) -> "PeerChange":
        return cls(peer.public_key, peer.endpoint, peer.persistent_keepalive, tuple(peer.allowed_ips))
