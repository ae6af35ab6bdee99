"""Packet capture on an underlay link (AF_PACKET inside the node's namespace) and
checks on what WireGuard put on the wire: message counts by type, the keepalive
interval, packet sizes, and that a marker sent inside the tunnel never appears in
clear on the underlay. Frames are decoded with scapy, except the plain IPv4/IPv6 + UDP
frames that make up nearly all of a capture, whose fixed headers are read directly (a
bulk transfer captures tens of thousands: scapy took ~150 us a frame, seconds per
capture on metal and half a minute in an emulated VM); a test holds that reading to
scapy's on every frame shape. A pcap is kept on failure."""

from __future__ import annotations

import io
import socket
import statistics
import struct
import threading
import time
from dataclasses import dataclass, field

from harness.endpoint import format_endpoint
from harness.engine.base import Node
from harness.fdwait import readable

ETH_P_ALL = 0x0003
# WireGuard message types and sizes (UDP payload bytes)
INITIATION, RESPONSE, COOKIE, TRANSPORT = 1, 2, 3, 4
SIZES = {INITIATION: 148, RESPONSE: 92, COOKIE: 64}
KEEPALIVE_SIZE = 32  # a transport message with no data: 16-byte header + 16-byte tag
NAMES = {INITIATION: "initiation", RESPONSE: "response", COOKIE: "cookie_reply", TRANSPORT: "transport"}


@dataclass(frozen=True)
class WgPacket:
    at: float
    kind: int
    source: str  # address:port
    size: int  # UDP payload bytes
    frame: int  # bytes on the wire (Ethernet frame)

    @property
    def keepalive(self) -> bool:
        return self.kind == TRANSPORT and self.size == KEEPALIVE_SIZE


# the smallest tunnel MTU a scenario can set (WireGuardSpec.mtu): padding stops at the MTU
MIN_TUNNEL_MTU = 1280


def _capped_at_mtu(payload: int) -> bool:
    """WireGuard pads the plaintext to a multiple of 16 but never past the MTU: a full-size
    packet at MTU 1420 carries 1420 bytes, unaligned. Only plaintexts within 16 bytes of
    some MTU ≥ MIN_TUNNEL_MTU can be unaligned."""
    return payload - KEEPALIVE_SIZE > MIN_TUNNEL_MTU - 16


def classify(frame: bytes) -> tuple[int, str, int] | None:
    """(message type, source address:port, payload size) of a WireGuard frame, else None."""
    udp = plain_udp(frame)
    if udp is UNUSUAL:
        udp = scapy_udp(frame)
    if udp is None:
        return None
    source, port, payload = udp
    if len(payload) < 4 or payload[1:4] != b"\0\0\0" or payload[0] not in NAMES:
        return None
    kind = payload[0]
    if kind in SIZES and len(payload) != SIZES[kind]:
        return None
    if kind == TRANSPORT and (len(payload) < KEEPALIVE_SIZE or (len(payload) % 16 and not _capped_at_mtu(len(payload)))):
        return None  # transport messages are padded to 16 bytes (up to the MTU)
    return kind, format_endpoint(source, port), len(payload)


Udp = tuple[str, int, bytes]  # source address, source port, UDP payload
UNUSUAL: Udp = ("", 0, b"")  # plain_udp's answer for a frame that scapy must decode
_ETHERNET = 14
_IPV4_PLAIN = 0x45  # version 4, a 20-byte header: no options
_IPV4_FRAGMENT = 0x3FFF  # more-fragments flag and fragment offset
_UDP, _TCP, _ICMP = 17, 6, 1
_ARP, _IPV4, _IPV6 = 0x0806, 0x0800, 0x86DD


def plain_udp(frame: bytes) -> Udp | None:
    """The fixed headers of an unfragmented IPv4 (no options) or IPv6 (no extension
    headers) UDP frame, read directly; None for ARP, TCP, ICMP; UNUSUAL for any other
    shape (options, fragments, extension headers, tunnels, VLANs, truncation)."""
    if len(frame) < _ETHERNET:
        return UNUSUAL
    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == _IPV4 and len(frame) >= _ETHERNET + 28 and frame[_ETHERNET] == _IPV4_PLAIN:
        total, fragment, protocol = struct.unpack_from("!H2xHxB", frame, _ETHERNET + 2)
        if fragment & _IPV4_FRAGMENT or total < 28:
            return UNUSUAL
        if protocol in (_TCP, _ICMP):
            return None
        if protocol != _UDP:
            return UNUSUAL
        source, header = socket.inet_ntoa(frame[26:30]), _ETHERNET + 20
    elif ethertype == _IPV6 and len(frame) >= _ETHERNET + 48:
        length, protocol = struct.unpack_from("!HB", frame, _ETHERNET + 4)
        if protocol == _TCP:
            return None
        if protocol != _UDP or length < 8:
            return UNUSUAL
        source, header = socket.inet_ntop(socket.AF_INET6, frame[22:38]), _ETHERNET + 40
    elif ethertype == _ARP:
        return None
    else:
        return UNUSUAL
    port, length = struct.unpack_from("!H2xH", frame, header)
    if length < 8:
        return UNUSUAL
    # as scapy's payload: every byte after the UDP header, trailing padding included (a
    # veth frame has none; WireGuard's smallest frame, 74 bytes, is never padded)
    return source, port, frame[header + 8 :]


def scapy_udp(frame: bytes) -> Udp | None:
    """The same, decoded by scapy: any frame shape, ~100x slower."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    packet = Ether(frame)
    udp = packet.getlayer(UDP)
    if udp is None:
        return None
    ip = packet.getlayer(IP) or packet.getlayer(IPv6)
    return ip.src, udp.sport, bytes(udp.payload)


class Capture:
    def __init__(self, node: Node, ifname: str):
        self.ifname = ifname
        self.sock = node.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((ifname, 0))
        self.frames: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"capture-{ifname}")

    def start(self) -> "Capture":
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            if readable(self.sock, 0.05):
                try:
                    self.frames.append((time.time(), self.sock.recv(65535)))
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.sock.close()

    def wireguard(self) -> list[WgPacket]:
        found = []
        for at, frame in self.frames:
            parsed = classify(frame)
            if parsed:
                found.append(WgPacket(at, parsed[0], parsed[1], parsed[2], len(frame)))
        return found

    def contains(self, marker: bytes) -> bool:
        return any(marker in frame for _, frame in self.frames)

    def frame_count(self) -> int:
        return len(self.frames)

    def pcap(self) -> bytes:
        """The frames as a pcap file's bytes (written where the run keeps its artifacts)."""
        from scapy.layers.l2 import Ether
        from scapy.utils import PcapWriter

        if not self.frames:  # scapy writes no header without a packet: an empty capture's file
            return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # pcap v2.4, Ethernet
        out = io.BytesIO()
        writer = PcapWriter(out)
        for at, frame in self.frames:
            packet = Ether(frame)
            packet.time = at
            writer.write(packet)
        writer.flush()
        return out.getvalue()


def start_capture(node: Node, ifname: str) -> Capture:
    """A started capture on `node`'s `ifname` (Node.start: made and kept where the node is)."""
    return Capture(node, ifname).start()


@dataclass
class CaptureSummary:
    counts: dict[str, int] = field(default_factory=dict)
    keepalive_intervals: dict[str, float] = field(default_factory=dict)  # by sender: median seconds
    largest_frame: int = 0


def summarize(packets: list[WgPacket]) -> CaptureSummary:
    summary = CaptureSummary()
    for kind, name in NAMES.items():
        summary.counts[name] = sum(1 for p in packets if p.kind == kind)
    summary.counts["keepalive"] = sum(1 for p in packets if p.keepalive)
    by_sender: dict[str, list[float]] = {}
    for p in packets:
        if p.keepalive:
            by_sender.setdefault(p.source, []).append(p.at)
    for sender, times in by_sender.items():
        gaps = [b - a for a, b in zip(times, times[1:])]
        if gaps:
            summary.keepalive_intervals[sender] = statistics.median(gaps)
    summary.largest_frame = max((p.frame for p in packets), default=0)
    return summary
