"""ICMP echo from inside a node, in this process: the `ping` step's prober.

Why not iputils `ping`: once any reply has arrived, iputils waits only
max(2 × the largest RTT so far, the interval) after its last probe before it exits,
whatever `-W` says (`schedule_exit` in ping_common.c). On a busy machine (cases side
by side, an emulated VM) a reply 60 ms late then counts as lost, and a healthy tunnel
fails its ping. Here the last probe's reply is waited for as long as the step's
`timeout` says, and every reply's RTT comes from the kernel's receive timestamp, so a
starved Python thread does not inflate it.

The socket is opened inside the node's network namespace (`node.socket`), so the
probes leave from the node, through its routes, firewall and tunnel.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import socket
import struct
import time
from typing import Protocol

from harness.fdwait import readable
from harness.net.ping import PingOutcome

ICMP_ECHO, ICMP_REPLY = 8, 0
ICMP6_ECHO, ICMP6_REPLY = 128, 129
DEFAULT_PAYLOAD = 56  # bytes, as iputils: 84-byte IPv4 packets
SO_MARK = getattr(socket, "SO_MARK", 36)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")


class SocketOpener(Protocol):
    """What the prober needs of a node: a socket opened in its network namespace."""

    def socket(self, family: int, kind: int, proto: int = 0) -> socket.socket: ...


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, family: int, payload: bytes = b"wgharness-probe") -> bytes:
    kind = ICMP6_ECHO if family == 6 else ICMP_ECHO
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if family == 6:
        return header + payload  # the kernel fills in the ICMPv6 checksum
    return struct.pack("!BBHHH", kind, 0, checksum(header + payload), ident, seq) + payload


def parse_reply(packet: bytes, family: int) -> tuple[int, int] | None:
    """(ident, seq) of an echo reply; raw IPv4 sockets include the IP header."""
    if family == 4:
        if not packet:
            return None
        packet = packet[(packet[0] & 0x0F) * 4 :]
    if len(packet) < 8:
        return None
    kind, _, _, ident, seq = struct.unpack("!BBHHH", packet[:8])
    if kind != (ICMP6_REPLY if family == 6 else ICMP_REPLY):
        return None
    return ident, seq


def payload_of(size: int | None) -> bytes:
    """`size` bytes of ICMP payload (iputils' -s), a recognisable pattern."""
    size = DEFAULT_PAYLOAD if size is None else size
    return bytes(i & 0xFF for i in range(size))


def summarize(sent: int, rtts: list[float], error: str = "") -> PingOutcome:
    """A PingOutcome as iputils would print it: min/avg/max/mdev in ms (mdev is the
    population standard deviation), each reply's RTT in arrival order."""
    if not rtts:
        return PingOutcome(sent, 0, error=error)
    mean = sum(rtts) / len(rtts)
    mdev = math.sqrt(max(sum(r * r for r in rtts) / len(rtts) - mean * mean, 0.0))
    return PingOutcome(
        sent, len(rtts), round(min(rtts), 3), round(mean, 3), round(max(rtts), 3), round(mdev, 3),
        error=error, rtts=tuple(round(r, 3) for r in rtts),
    )


def _same_address(reported: str, wanted: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(reported.split("%", 1)[0]) == wanted
    except ValueError:
        return False


def _received_at(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack(data[: _TIMESPEC.size])
            return seconds + nanoseconds / 1e9
    return None


def ping(
    node: SocketOpener,
    address: str,
    *,
    count: int,
    interval: float,
    timeout: float,
    size: int | None = None,
    source: str | None = None,
    mark: int | None = None,
) -> PingOutcome:
    """Send `count` echo requests to `address` from inside `node`, one every `interval`
    seconds, and wait up to `timeout` seconds after the last one for the replies still
    owed. A reply counts once; duplicates and strangers' replies are ignored."""
    target = ipaddress.ip_address(address)
    family = target.version
    sock = node.socket(
        socket.AF_INET6 if family == 6 else socket.AF_INET,
        socket.SOCK_RAW,
        socket.IPPROTO_ICMPV6 if family == 6 else socket.IPPROTO_ICMP,
    )
    try:
        return _exchange(sock, target, family, count, interval, timeout, payload_of(size), source, mark)
    finally:
        sock.close()


def _exchange(sock, target, family, count, interval, timeout, payload, source, mark) -> PingOutcome:
    ident = (os.getpid() ^ id(sock)) & 0xFFFF
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    if mark:
        sock.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
    if source:
        try:
            sock.bind((source, 0))
        except OSError as exc:
            return PingOutcome(0, 0, error=f"bind to {source}: {exc.strerror or exc}")
    sent_at: dict[int, float] = {}  # seq → wall-clock send time (the kernel stamps receptions on that clock)
    rtts: list[float] = []
    send_errors: list[str] = []
    started = time.monotonic()
    next_seq = 0
    last_sent, last_sent_at = started, None
    while True:
        now = time.monotonic()
        if next_seq < count and now >= started + next_seq * interval:
            try:
                sent_at[next_seq] = last_sent_at = time.time()
                sock.sendto(echo_request(ident, next_seq, family, payload), (str(target), 0))
            except OSError as exc:  # no route, a firewall's reject: this probe is lost, as with iputils
                sent_at.pop(next_seq, None)
                send_errors.append(exc.strerror or str(exc))
            last_sent = time.monotonic()
            next_seq += 1
            continue
        if next_seq >= count and (len(rtts) >= count or now >= last_sent + timeout):
            break
        wake = started + next_seq * interval if next_seq < count else last_sent + timeout
        if not readable(sock, wake - now):
            continue
        try:
            packet, ancillary, _, peer = sock.recvmsg(65535, 1024)
        except OSError:
            continue
        received = _received_at(ancillary) or time.time()
        parsed = parse_reply(packet, family)
        if parsed is None or parsed[0] != ident or not _same_address(peer[0], target):
            continue
        seq = parsed[1]
        if seq in sent_at:
            rtts.append(max(received - sent_at.pop(seq), 0.0) * 1000)
    if send_errors and len(send_errors) == count:
        return PingOutcome(count, 0, error=f"sendto: {send_errors[0]}")
    return dataclasses.replace(summarize(count, rtts), last_sent_at=last_sent_at)
