"""Curve25519 key pairs, generated per run and kept in memory only.

The private half never appears in repr(), logs, results or reports.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat


@dataclass(frozen=True)
class KeyPair:
    private: bytes = field(repr=False)
    public: bytes

    @classmethod
    def generate(cls) -> "KeyPair":
        key = X25519PrivateKey.generate()
        private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return cls(private, public)

    @classmethod
    def from_private(cls, private: bytes) -> "KeyPair":
        key = X25519PrivateKey.from_private_bytes(private)
        return cls(private, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public).decode()

    def __repr__(self) -> str:
        return f"KeyPair(public={self.public_b64}, private=<hidden>)"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def short(public: bytes) -> str:
    """The first characters of a public key, as `wg show` users recognise it."""
    return b64(public)[:8] + "…"
