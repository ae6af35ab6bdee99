"""Decoding WireGuard messages from captured frames (scapy), without root."""

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from harness.steps.capture import INITIATION, RESPONSE, TRANSPORT, WgPacket, classify, summarize


def frame(payload: bytes, v6: bool = False) -> bytes:
    ip = IPv6(src="2001:2::1", dst="2001:2::2") if v6 else IP(src="198.18.1.1", dst="198.18.1.2")
    return bytes(Ether() / ip / UDP(sport=51820, dport=51820) / payload)


def test_message_types_by_type_byte_and_size():
    assert classify(frame(b"\x01\0\0\0" + b"x" * 144)) == (INITIATION, "198.18.1.1:51820", 148)
    assert classify(frame(b"\x02\0\0\0" + b"x" * 88, v6=True)) == (RESPONSE, "[2001:2::1]:51820", 92)
    assert classify(frame(b"\x04\0\0\0" + b"x" * 28))[0] == TRANSPORT  # a keepalive: 32 bytes


def test_other_udp_is_not_wireguard():
    assert classify(frame(b"\x01\0\0\0" + b"x" * 100)) is None  # wrong size for an initiation
    assert classify(frame(b"\x04\0\0\0" + b"x" * 30)) is None  # transport is padded to 16
    assert classify(frame(b"\x04\0\0\0" + b"x" * 1000)) is None  # 1004: unaligned and far below any MTU


def test_full_size_transport_is_not_padded_past_the_mtu():
    # MTU 1420: a 1420-byte inner packet is not padded to 1424; the message is 1452 bytes
    assert classify(frame(b"\x04\0\0\0" + b"x" * 1448)) == (TRANSPORT, "198.18.1.1:51820", 1452)
    assert classify(frame(b"\x04\0\0\0" + b"x" * 1308))[0] == TRANSPORT  # MTU 1280: aligned, 1312
    assert classify(frame(b"hello world, not wireguard")) is None
    assert classify(bytes(Ether() / IP() / b"no udp")) is None


def test_keepalive_interval_is_the_median_gap_per_sender():
    packets = [WgPacket(t, TRANSPORT, "198.18.1.1:51820", 32, 74) for t in (0.0, 1.0, 2.02, 2.98, 4.0)]
    packets += [WgPacket(0.5, TRANSPORT, "198.18.1.2:51820", 96, 138)]  # data, not a keepalive
    summary = summarize(packets)
    assert summary.counts["keepalive"] == 5 and summary.counts["transport"] == 6
    assert abs(summary.keepalive_intervals["198.18.1.1:51820"] - 1.0) < 0.03
    assert "198.18.1.2:51820" not in summary.keepalive_intervals
    assert summary.largest_frame == 138
