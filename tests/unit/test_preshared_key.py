"""Preshared keys: named in a file, never written there; the same name on both ends (or
on one) means one key, two names or `false` make the ends disagree; both backends are
told the key and report it back only as a fingerprint; and the diagnosis names a
mismatch without showing anything of the keys. Pure: no root."""

from __future__ import annotations

import base64

import pytest

from harness.engine.fake import FakeNetwork
from harness.plan.network import build_plan
from harness.scenario.load import ScenarioError, load_data
from harness.diagnosis.handshake import handshake_messages
from harness.diagnosis.tunnel import diagnose_tunnel
from harness.wg import uapi
from harness.wg.config import PeerChange, PeerConfig
from harness.wg.genl import peer_nest
from harness.wg.status import NO_KEY, psk_fingerprint

KEY = bytes(range(32))


def plan_of(client: dict, server: dict):
    (case,) = load_data({
        "nodes": {"client": {}, "server": {}},
        "links": [{"ends": ["client", "server"]}],
        "wireguard": {"client": {"peers": {"server": {"endpoint": "server", **client}}}, "server": {"peers": {"client": server}}},
    })
    return build_plan(case.spec, "p00001", "wireguard-go")


def names(plan) -> tuple:
    return plan.wireguard["client"].peer("server").preshared_key, plan.wireguard["server"].peer("client").preshared_key


@pytest.mark.parametrize(
    "client, server, expected",
    [
        ({"preshared_key": "site"}, {}, ("site", "site")),  # one end names it: both use it
        ({}, {"preshared_key": "site"}, ("site", "site")),
        ({"preshared_key": "new"}, {"preshared_key": "old"}, ("new", "old")),  # two names: two keys
        ({"preshared_key": "site"}, {"preshared_key": False}, ("site", None)),  # false: none on that end
        ({}, {}, (None, None)),
    ],
)
def test_names_are_shared_unless_an_end_says_otherwise(client, server, expected):
    assert names(plan_of(client, server)) == expected


def test_a_key_itself_cannot_be_written_in_a_file():
    with pytest.raises(ScenarioError):
        plan_of({"preshared_key": base64.b64encode(KEY).decode()}, {})  # '+', '/' and '=' are not in a name


def test_both_backends_are_told_the_key_and_no_repr_shows_it():
    change = PeerChange.from_config(PeerConfig(b"p" * 32, ("10.0.0.1/32",), preshared_key=KEY))
    assert f"preshared_key={KEY.hex()}" in uapi.change_lines(change)
    assert ["WGPEER_A_PRESHARED_KEY", base64.b64encode(KEY).decode()] in peer_nest(change)["attrs"]
    assert KEY.hex() not in repr(change) and str(list(KEY)) not in repr(change)
    assert "preshared" not in repr(PeerConfig(b"p" * 32, (), preshared_key=KEY))


def test_a_key_read_back_is_kept_as_a_fingerprint_only(monkeypatch):
    other = bytes(31) + b"\x01"
    lines = [f"public_key={'11' * 32}", f"preshared_key={KEY.hex()}", f"public_key={'22' * 32}", f"preshared_key={NO_KEY.hex()}",
             f"public_key={'33' * 32}", f"preshared_key={other.hex()}"]
    monkeypatch.setattr(uapi, "_exchange", lambda ifname, request: lines)
    first, second, third = uapi.get_status("wgtest").peers
    assert first.preshared_key == psk_fingerprint(KEY) and second.preshared_key is None
    assert third.preshared_key not in (None, first.preshared_key)
    assert KEY.hex() not in repr(first) and first.preshared_key not in KEY.hex()


@pytest.mark.parametrize(
    "client_key, server_key, evidence",
    [
        (KEY, None, "preshared keys: client has one for server, server has none for client"),
        (KEY, bytes(31) + b"\x07", "preshared keys: client and server each have one for the other, and they differ"),
    ],
)
def test_a_mismatch_is_diagnosed_without_showing_the_keys(client_key, server_key, evidence):
    net = FakeNetwork(plan_of({"preshared_key": "site"}, {}))
    # as the backends show it: the server answers the client's initiations, the client
    # drops the answers (nothing received), and no handshake completes
    net.set_peer("client", "server", endpoint="198.18.0.2:51820", tx_bytes=296, preshared_key=psk_fingerprint(client_key))
    net.set_peer("server", "client", endpoint="198.18.0.1:51820", rx_bytes=296, tx_bytes=184, preshared_key=psk_fingerprint(server_key))
    net.world.ping = lambda node, address: 0.1  # the underlay answers
    diagnosis = diagnose_tunnel(net, "client", "server")
    assert diagnosis.code == "psk-mismatch", str(diagnosis)
    assert evidence in diagnosis.lines
    text = str(diagnosis)
    for secret in (client_key, server_key):
        if secret:
            assert secret.hex() not in text and psk_fingerprint(secret) not in text


def test_the_same_key_on_both_ends_is_not_a_mismatch():
    net = FakeNetwork(plan_of({"preshared_key": "site"}, {}))
    same = psk_fingerprint(KEY)
    net.set_peer("client", "server", endpoint="198.18.0.2:51820", tx_bytes=296, preshared_key=same)
    net.set_peer("server", "client", endpoint="198.18.0.1:51820", rx_bytes=296, preshared_key=same)
    net.world.ping = lambda node, address: 0.1
    assert diagnose_tunnel(net, "client", "server").code != "psk-mismatch"


def test_simultaneous_initiations_are_told_from_a_blocked_port():
    # CI, kernel 6.1 in the VM, nat-types[full-cone]: both ends sent 2 initiations and
    # answered the other's 2, and neither accepted an answer
    net = FakeNetwork(plan_of({}, {"endpoint": "client"}))
    net.set_peer("client", "server", endpoint="198.18.0.2:51820", rx_bytes=296, tx_bytes=480)
    net.set_peer("server", "client", endpoint="198.18.0.1:51820", rx_bytes=296, tx_bytes=480)
    net.world.ping = lambda node, address: 0.1
    diagnosis = diagnose_tunnel(net, "client", "server")
    assert diagnosis.code == "simultaneous-initiations", str(diagnosis)
    assert "(2 and 2 initiations)" in diagnosis.cause and "(2 and 2 responses sent)" in diagnosis.cause
    # the same initiations with no answers sent: a path that drops them, not glare
    net.set_peer("client", "server", endpoint="198.18.0.2:51820", rx_bytes=0, tx_bytes=296)
    net.set_peer("server", "client", endpoint="198.18.0.1:51820", rx_bytes=0, tx_bytes=296)
    assert diagnose_tunnel(net, "client", "server").code == "udp-blocked"


@pytest.mark.parametrize(
    "byte_count, split",
    [(0, (0, 0)), (148, (1, 0)), (92, (0, 1)), (480, (2, 2)), (296, (2, 0)), (100, None), (148 * 23, None)],  # 23·148 = 37·92
)
def test_counters_split_into_initiations_and_responses(byte_count, split):
    assert handshake_messages(byte_count) == split
