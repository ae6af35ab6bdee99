"""What the harness relies on in pyroute2 beyond its documented API, pinned so that an
upgrade that changes it fails here, by name, instead of as a netlink error in a VM.
pyproject.toml bounds the version; harness/wg/genl.py is the only user."""

from __future__ import annotations

import socket
import struct

import pyroute2
from pyroute2 import WireGuard
from pyroute2.netlink.generic.wireguard import WG_CMD_SET_DEVICE, WGPEER_F_REMOVE_ME, WGPEER_F_REPLACE_ALLOWEDIPS, wgmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from harness.net import nlbatch
from harness.wg.config import PeerChange
from harness.wg.genl import PEERS_PER_MESSAGE, batches, set_device_message

KEY_A, KEY_B, PRIVATE = bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96))


def test_the_synchronous_wrapper_still_runs_coroutines_on_its_loop():
    # WireGuardNetlink sends a batched message through these (not public API)
    assert callable(getattr(WireGuard, "_run_with_cleanup", None)), f"pyroute2 {pyroute2.__version__} changed WireGuard"
    assert callable(getattr(WireGuard, "info", None))


def _roundtrip(msg: wgmsg) -> wgmsg:
    msg["header"]["type"] = 0x20
    msg.encode()
    decoded = wgmsg(msg.data)
    decoded.decode()
    return decoded


def test_a_batched_set_device_message_decodes_to_what_was_asked():
    changes = [
        PeerChange(KEY_A, endpoint="198.18.1.2:51820", persistent_keepalive=25, allowed_ips=("100.64.0.2/32", "fd00:64::2/128")),
        PeerChange(KEY_B, endpoint="[fd00::1]:51999"),
        PeerChange(KEY_A, remove=True),
    ]
    decoded = _roundtrip(set_device_message("wgh0", private_key=PRIVATE, listen_port=51820, fwmark=7, peers=changes))
    assert decoded["cmd"] == WG_CMD_SET_DEVICE
    assert decoded.get_attr("WGDEVICE_A_IFNAME") == "wgh0"
    assert decoded.get_attr("WGDEVICE_A_LISTEN_PORT") == 51820
    assert decoded.get_attr("WGDEVICE_A_FWMARK") == 7
    first, second, third = decoded.get_attr("WGDEVICE_A_PEERS")
    assert first.get_attr("WGPEER_A_ENDPOINT")["addr"] == "198.18.1.2"
    assert first.get_attr("WGPEER_A_ENDPOINT")["port"] == 51820
    assert first.get_attr("WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL") == 25
    assert first.get_attr("WGPEER_A_FLAGS") == WGPEER_F_REPLACE_ALLOWEDIPS
    allowed = [(a.get_attr("WGALLOWEDIP_A_FAMILY"), a.get_attr("WGALLOWEDIP_A_CIDR_MASK")) for a in first.get_attr("WGPEER_A_ALLOWEDIPS")]
    assert allowed == [(socket.AF_INET, 32), (socket.AF_INET6, 128)]
    assert second.get_attr("WGPEER_A_ENDPOINT")["addr"] == "fd00::1"
    assert second.get_attr("WGPEER_A_FLAGS") == 0  # allowed IPs untouched
    assert third.get_attr("WGPEER_A_FLAGS") == WGPEER_F_REMOVE_ME


def test_keys_travel_as_their_32_raw_bytes():
    msg = set_device_message("wgh0", private_key=PRIVATE, peers=[PeerChange(KEY_A)])
    msg["header"]["type"] = 0x20
    msg.encode()
    assert PRIVATE in msg.data and KEY_A in msg.data


def test_peers_are_split_into_messages_of_bounded_size():
    changes = [PeerChange(bytes([i]) * 32, allowed_ips=(f"100.64.{i}.0/24",)) for i in range(PEERS_PER_MESSAGE * 2 + 1)]
    split = batches(changes)
    assert [len(b) for b in split] == [PEERS_PER_MESSAGE, PEERS_PER_MESSAGE, 1]
    assert batches([]) == [()]  # device settings alone still make one message
    largest = set_device_message("wgh0", peers=split[0])
    largest["header"]["type"] = 0x20
    largest.encode()
    assert len(largest.data) < 8192


def test_hand_encoded_routes_match_pyroute2s_encoding():
    """nlbatch packs RTM_NEWROUTE itself (speed); it must be byte for byte what pyroute2 sends."""
    for dst, gateway, table in (("10.0.2.0/24", "10.0.1.1", 254), ("fd00:2::/64", None, 254), ("0.0.0.0/0", None, 51820)):
        ours = nlbatch.route_message(dst, 7, gateway=gateway, table=table)
        network, prefix = dst.split("/")
        family = socket.AF_INET6 if ":" in dst else socket.AF_INET
        msg = rtmsg()
        msg["family"], msg["dst_len"], msg["table"] = family, int(prefix), table if table < 256 else 0
        msg["proto"], msg["scope"], msg["type"] = 4, 0, 1
        msg["attrs"] = [["RTA_DST", network]] + ([["RTA_GATEWAY", gateway]] if gateway else []) + [["RTA_OIF", 7], ["RTA_TABLE", table]]
        msg["header"]["type"], msg["header"]["flags"] = nlbatch.RTM_NEWROUTE, struct.unpack_from("=H", ours, 6)[0]
        msg.encode()
        assert ours == bytes(msg.data), dst
