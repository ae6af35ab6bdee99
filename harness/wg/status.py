"""What a WireGuard device reports about itself, backend-independent."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PeerStatus:
    public_key: bytes
    endpoint: str | None
    latest_handshake: float  # seconds since the epoch; 0 = never
    rx_bytes: int
    tx_bytes: int
    allowed_ips: tuple[str, ...] = ()
    persistent_keepalive: int = 0

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
