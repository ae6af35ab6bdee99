"""Decoding WireGuard messages from captured frames (headers read directly, held to scapy), without root."""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from harness.steps.capture import INITIATION, RESPONSE, TRANSPORT, UNUSUAL, WgPacket, classify, plain_udp, scapy_udp, summarize


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


# --- the direct header reading against scapy's decoding ---------------------------------

WG_PAYLOADS = st.one_of(
    st.tuples(st.sampled_from([1, 2, 3, 4]), st.sampled_from([28, 60, 88, 144, 1448, 1308, 1000, 30])).map(
        lambda kind_size: bytes([kind_size[0], 0, 0, 0]) + b"\x5a" * kind_size[1]
    ),
    st.binary(max_size=64),
)


@st.composite
def frames(draw) -> bytes:
    """Frames of every shape a link may carry: plain IPv4/IPv6 UDP (what the direct
    reading takes), and options, fragments, other protocols, lying length fields,
    truncation (what it must leave to scapy or answer the same way)."""
    payload = draw(WG_PAYLOADS)
    udp_length = draw(st.sampled_from([8 + len(payload), 8 + len(payload), 4, 8, 2000, draw(st.integers(0, 0xFFFF))]))
    udp = struct.pack("!HHHH", draw(st.sampled_from([51820, 1234])), 51820, udp_length, 0) + payload
    protocol = draw(st.sampled_from([17, 17, 17, 6, 1, 4, 41, 47, 58, draw(st.integers(0, 255))]))
    ethertype = draw(st.sampled_from([0x0800, 0x0800, 0x86DD, 0x86DD, 0x0806, 0x8100, draw(st.integers(0, 0xFFFF))]))
    if ethertype == 0x86DD:
        length = draw(st.sampled_from([len(udp), len(udp), 0, 3, draw(st.integers(0, 0xFFFF))]))
        ip = bytes([0x60, 0, 0, 0]) + struct.pack("!HBB", length, protocol, 64)
        ip += bytes.fromhex("20010002000000000000000000000001") + bytes.fromhex("20010002000000000000000000000002")
    else:
        first = draw(st.sampled_from([0x45, 0x45, 0x46, 0x44, 0x65, draw(st.integers(0, 255))]))
        options = b"\x01\x01\x01\x00" * max(0, (first & 0x0F) - 5) if first >> 4 == 4 else b""
        total = draw(st.sampled_from([20 + len(options) + len(udp)] * 3 + [0, 27, 28, draw(st.integers(0, 0xFFFF))]))
        fragment = draw(st.sampled_from([0, 0, 0x4000, 0x2000, 0x0001, draw(st.integers(0, 0xFFFF))]))
        ip = struct.pack("!BBHHHBBH", first, 0, total, 7, fragment, 64, protocol, 0) + bytes([198, 18, 1, 1, 198, 18, 1, 2]) + options
    frame = b"\x02" * 6 + b"\x04" * 6 + struct.pack("!H", ethertype) + ip + udp
    return frame[: draw(st.sampled_from([len(frame)] * 4 + [draw(st.integers(0, len(frame)))]))]


@settings(max_examples=1000, deadline=None)
@given(frames())
def test_the_direct_header_reading_agrees_with_scapy(frame: bytes):
    direct = plain_udp(frame)
    if direct is not UNUSUAL:
        assert direct == scapy_udp(frame)


def test_the_direct_reading_takes_the_frames_a_capture_is_made_of():
    for v6 in (False, True):
        assert plain_udp(frame(b"\x04\0\0\0" + b"x" * 1448, v6=v6)) is not UNUSUAL
    assert plain_udp(bytes(Ether() / IP() / TCP())) is None
    assert plain_udp(bytes(Ether() / IP(flags="MF") / UDP() / (b"x" * 8))) is UNUSUAL  # a fragment: scapy decides
