"""harness.wg.keys: per-run Curve25519 keys that never show their private half."""

import base64

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from harness.wg.keys import KeyPair, b64, short


def test_generate_gives_32_byte_keys():
    pair = KeyPair.generate()
    assert isinstance(pair.private, bytes) and len(pair.private) == 32
    assert isinstance(pair.public, bytes) and len(pair.public) == 32
    assert pair.private != pair.public


def test_public_key_belongs_to_private_key():
    pair = KeyPair.generate()
    derived = X25519PrivateKey.from_private_bytes(pair.private).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert derived == pair.public


def test_keys_are_fresh_each_time():
    assert KeyPair.generate().private != KeyPair.generate().private


def test_repr_hides_private_key():
    pair = KeyPair.generate()
    for text in (repr(pair), str(pair), f"{pair}", repr([pair]), repr({"k": pair})):
        assert pair.private.hex() not in text
        assert base64.b64encode(pair.private).decode() not in text
        assert str(pair.private) not in text
    assert pair.public_b64 in repr(pair)
    assert "<hidden>" in repr(pair)


def test_b64_and_short():
    pair = KeyPair.generate()
    assert base64.b64decode(pair.public_b64) == pair.public
    assert len(pair.public_b64) == 44
    assert b64(pair.public) == pair.public_b64
    assert short(pair.public) == pair.public_b64[:8] + "…"
