"""What the harness sets on a WireGuard device, whatever the backend (pure data)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PeerConfig:
    """A peer as configured at build time."""

    public_key: bytes
    allowed_ips: tuple[str, ...]
    endpoint: str | None = None
    persistent_keepalive: int = 0
    preshared_key: bytes | None = field(default=None, repr=False)  # a secret: never in a repr, a log or a message


@dataclass(frozen=True)
class PeerChange:
    """What to set for one peer; None leaves a setting as it is (a new peer gets it unset)."""

    public_key: bytes
    endpoint: str | None = None
    persistent_keepalive: int | None = None
    allowed_ips: tuple[str, ...] | None = None  # replaces the peer's list when given
    remove: bool = False
    preshared_key: bytes | None = field(default=None, repr=False)  # a secret: never in a repr, a log or a message

    @classmethod
    def from_config(cls, peer: PeerConfig) -> "PeerChange":
        return cls(peer.public_key, peer.endpoint, peer.persistent_keepalive, tuple(peer.allowed_ips), preshared_key=peer.preshared_key)
