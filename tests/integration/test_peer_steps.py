"""remove_peer, reuse_old_key and handshake_age on a real network (any backend)."""

from __future__ import annotations

import base64

import pytest

from harness.steps.checks import check

pytestmark = pytest.mark.requires("root", "wireguard")

PAIR = {
    "nodes": {"a": {}, "b": {}},
    "links": [{"ends": ["a", "b"]}],
    "wireguard": {"a": {"peers": {"b": {"endpoint": "b"}}}, "b": {}},
}


def test_removed_peer_is_gone_on_one_side_only_and_its_handshake_stays_green(wgh_network):
    net = wgh_network(PAIR)
    assert check(net, {"handshake": {"between": ["a", "b"]}}).ok
    assert check(net, {"remove_peer": {"node": "b", "peer": "a"}}).ok
    assert net.wireguard.devices["b"].status().peer(net.wireguard.public_key("a")) is None
    assert net.wireguard.devices["a"].status().peer(net.wireguard.public_key("b")) is not None  # a was not told
    fresh = check(net, {"handshake_age": {"node": "a", "peer": "b", "max": "5s"}})
    assert fresh.ok and fresh.measurements["handshake_age"].value < 5
    rx_before = fresh.measurements["rx_bytes"].value
    ping = check(net, {"ping": {"from": "a", "to": "b", "count": 2, "interval": "50ms", "timeout": "500ms",
                                "expect": "fail", "cause": "unknown-peer-key"}})
    assert ping.outcome == "expected-fail", ping.message
    assert "latest handshake" in ping.diagnosis and "b: has no peer for a's public key" in ping.diagnosis
    after = check(net, {"handshake_age": {"node": "a", "peer": "b", "max": "5s"}})
    # data stopped: a sent more, received nothing
    assert after.measurements["rx_bytes"].value == rx_before
    assert after.measurements["tx_bytes"].value > fresh.measurements["tx_bytes"].value


def test_handshake_age_fails_without_any_handshake(wgh_network):
    net = wgh_network(PAIR)
    result = check(net, {"handshake_age": {"node": "b", "peer": "a", "max": "5s"}})
    assert not result.passed and "no handshake at all" in result.message


def test_old_key_is_refused_after_rotation_and_never_shown(wgh_network):
    net = wgh_network(PAIR)
    assert check(net, {"handshake": {"between": ["a", "b"]}}).ok
    assert check(net, {"rotate_key": {"node": "a"}}).ok
    new_pair = net.wireguard.keys["a"]
    reused = check(net, {"reuse_old_key": {"node": "a"}})
    assert reused.ok
    assert net.wireguard.public_key("a") != new_pair.public
    assert net.wireguard.previous_keys["a"] is new_pair  # the swap is reversible, nothing regenerated
    assert {p.public_key for p in net.wireguard.devices["b"].status().peers} == {new_pair.public}  # b was not told
    ping = check(net, {"ping": {"from": "a", "to": "b", "count": 2, "interval": "100ms", "timeout": "1s",
                                "expect": "fail", "cause": "unknown-peer-key"}})
    assert ping.outcome == "expected-fail", ping.message
    text = " ".join([reused.title, reused.message, ping.message, ping.diagnosis or ""])
    for pair in (net.wireguard.keys["a"], new_pair):
        for form in (base64.b64encode(pair.private).decode(), pair.private.hex()):
            assert form not in text
