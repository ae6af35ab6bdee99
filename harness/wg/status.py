"""What a WireGuard device reports about itself, backend-independent."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

NO_KEY = bytes(32)  # how both backends report "no preshared key"


def psk_fingerprint(key: bytes) -> str | None:
    """What the harness keeps of a preshared key it reads back: a short one-way
    fingerprint (enough to tell two apart), never the key; None for no key."""
    if not key or key == NO_KEY:
        return None
    return hashlib.sha256(b"wgharness psk fingerprint\0" + key).hexdigest()[:12]


@dataclass(frozen=True)
class PeerStatus:
    public_key: bytes
    endpoint: str | None
    latest_handshake: float  # seconds since the epoch; 0 = never
    rx_bytes: int
    tx_bytes: int
    allowed_ips: tuple[str, ...] = ()
    persistent_keepalive: int = 0
    preshared_key: str | None = None  # its fingerprint (psk_fingerprint), None without one

    def handshake_age(self, now: float | None = None) -> float | None:
        if not self.latest_handshake:
            return None
        return max(0.0, (now or time.time()) - self.latest_handshake)


@dataclass(frozen=True)
class DeviceStatus:
    listen_port: int | None
    peers: tuple[PeerStatus, ...] = field(default_factory=tuple)

    def peer(self, public_key: bytes) -> PeerStatus | None:
        return next((p for p in self.peers if p.public_key == public_key), None)
