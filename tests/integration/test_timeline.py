"""Timeline steps against a real network, and the probe stream's measurements."""

from __future__ import annotations

import time

import pytest

from harness.steps.checks import check

pytestmark = pytest.mark.requires("root", "wireguard")

PAIR = {
    "nodes": {"a": {}, "r": {"router": True}, "b": {}},
    "links": [{"ends": ["a", "r"]}, {"ends": ["r", "b"], "name": "path"}],
    "wireguard": {"a": {"peers": {"b": {"endpoint": "b", "persistent_keepalive": 1}}}, "b": {}},
}


def test_outage_of_a_pulled_link_is_measured_to_the_probe_interval(wgh_network):
    net = wgh_network(PAIR)
    assert check(net, {"handshake": {"between": ["a", "b"]}}).ok
    check(net, {"probe": {"name": "s", "from": "a", "to": "b", "interval": "10ms"}})
    time.sleep(0.3)
    pulled = time.monotonic()
    down = check(net, {"link": {"name": "path", "up": False}})
    assert down.ok
    time.sleep(0.5)
    check(net, {"link": {"name": "path", "up": True}})
    restored = time.monotonic()
    time.sleep(0.4)
    result = check(net, {"stop": {"probe": "s", "record": "cut"}})
    outage = result.measurements["cut.outage"].value
    # the link was down at least 0.5 s, and at most from the start of the `down` step to
    # the end of the `up` step (slow under VM emulation); the stream sees that at 10 ms
    # resolution, plus a little scheduling noise
    assert 0.45 <= outage <= (restored - pulled) + 0.1, (outage, restored - pulled)
    # recovery counts from the last event while the stream ran: the link coming back
    assert 0 <= result.measurements["cut.recovery"].value <= 0.15
    assert result.measurements["cut.loss"].value > 0
    assert result.measurements["cut.rtt_p50"].unit == "ms"


def test_stop_fails_on_a_long_outage_and_diagnoses_it(wgh_network):
    net = wgh_network(PAIR)
    assert check(net, {"handshake": {"between": ["a", "b"]}}).ok
    check(net, {"probe": {"name": "s", "from": "a", "to": "b", "interval": "20ms"}})
    check(net, {"link": {"name": "path", "up": False}})
    time.sleep(0.5)
    result = check(net, {"stop": {"probe": "s", "max_outage": "200ms"}})
    assert not result.passed
    assert "longest outage" in result.message and "[endpoint-unreachable]" in result.message


def test_rotated_key_replaces_the_old_one_on_both_sides(wgh_network):
    net = wgh_network(PAIR)
    assert check(net, {"handshake": {"between": ["a", "b"]}}).ok
    old = net.wireguard.public_key("a")
    assert check(net, {"rotate_key": {"node": "a"}}).ok
    assert net.wireguard.public_key("a") != old
    peers_of_b = {p.public_key for p in net.wireguard.devices["b"].status().peers}
    assert peers_of_b == {net.wireguard.public_key("a")}  # the old key no longer works: b forgot it
    waited = check(net, {"wait_until": {"handshake": ["a", "b"], "within": "3s"}})
    assert waited.ok, waited.message
    assert check(net, {"ping": {"from": "b", "to": "a", "count": 2, "interval": "50ms"}}).ok


def test_rotation_under_traffic_keeps_the_peer_and_rekeys_at_once(wgh_network):
    """Rotation swaps only the key: the rotated node keeps its peer (counters and all).
    Re-creating the peer lost a handshake already sent with the new key, and its retry
    within 20 ms was dropped as a flood: the tunnel stayed down for REKEY_TIMEOUT (5 s)."""
    net = wgh_network(PAIR)
    assert check(net, {"handshake": {"between": ["a", "b"]}}).ok
    assert check(net, {"ping": {"from": "a", "to": "b", "count": 2, "interval": "50ms"}}).ok
    check(net, {"probe": {"name": "s", "from": "a", "to": "b", "interval": "10ms"}})
    for _ in range(3):
        time.sleep(0.2)
        received_before = net.wireguard.devices["a"].status().peers[0].rx_bytes
        assert check(net, {"rotate_key": {"node": "a"}}).ok
        assert net.wireguard.devices["a"].status().peers[0].rx_bytes >= received_before > 0
        rekeyed = check(net, {"wait_until": {"handshake": ["a", "b"], "within": "2s"}})
        assert rekeyed.ok, rekeyed.message
    stopped = check(net, {"stop": {"probe": "s", "max_outage": "1s"}})
    assert stopped.ok, stopped.message


def test_restart_with_a_new_key(wgh_network):
    net = wgh_network(PAIR)
    assert check(net, {"handshake": {"between": ["a", "b"]}}).ok
    old = net.wireguard.public_key("b")
    assert check(net, {"restart": {"node": "b", "key": "new"}}).ok
    assert net.wireguard.public_key("b") != old
    assert {p.public_key for p in net.wireguard.devices["a"].status().peers} == {net.wireguard.public_key("b")}
    assert check(net, {"wait_until": {"within": "5s", "ping": {"from": "a", "to": "b", "count": 1, "timeout": "300ms"}}}).ok


def test_endpoint_change_points_the_peer_elsewhere(wgh_network):
    quiet = {**PAIR, "wireguard": {"a": {"peers": {"b": {"endpoint": "b"}}}, "b": {}}}  # no handshake yet
    net = wgh_network(quiet)
    assert check(net, {"endpoint": {"node": "a", "peer": "b", "to": "198.18.2.2:4444"}}).ok
    assert net.wireguard.devices["a"].status().peer(net.wireguard.public_key("b")).endpoint == "198.18.2.2:4444"
    # b does not listen there: the diagnosis says so
    result = check(net, {"handshake": {"between": ["a", "b"], "within": "1s"}})
    assert not result.passed and "[port-mismatch]" in result.message


def test_nat_rebind_flushes_the_mapping(wgh_network):
    net = wgh_network(
        {
            "nodes": {"c": {}, "nat": {"nat": {"outside": "s"}}, "s": {}},
            "links": [{"ends": ["c", "nat"]}, {"ends": ["nat", "s"]}],
            "wireguard": {"c": {"peers": {"s": {"endpoint": "s"}}}, "s": {}},
        }
    )
    assert check(net, {"handshake": {"between": ["c", "s"]}}).ok
    result = check(net, {"nat_rebind": {"node": "nat"}})
    assert result.ok and "forgot its" in result.title and " 0 " not in result.title
    from harness.net.conntrack import udp_mappings

    assert udp_mappings(net.node("nat")) == []


def test_the_nat_stamps_when_it_made_each_mapping(wgh_network):
    """The diagnosis tells a mapping made after a check's last packet from one its
    packets met: the harness's NATs record each mapping's start time."""
    from harness.net.conntrack import udp_mappings

    net = wgh_network(
        {
            "nodes": {"c": {}, "nat": {"nat": {"outside": "s"}}, "s": {}},
            "links": [{"ends": ["c", "nat"]}, {"ends": ["nat", "s"]}],
            "wireguard": {"c": {"peers": {"s": {"endpoint": "s"}}}, "s": {}},
        }
    )
    before = time.time()
    assert check(net, {"handshake": {"between": ["c", "s"]}}).ok
    after = time.time()
    (mapping,) = [m for m in udp_mappings(net.node("nat")) if m.inside.endswith(":51820")]
    assert mapping.started is not None and before - 1 <= mapping.started <= after + 1
