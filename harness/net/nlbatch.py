"""Many route requests in one go, for networks with hundreds of routes.

pyroute2 0.9 runs every request (even encoding one with IPBatch) through an asyncio
round trip: ~5 ms each here, far more in an emulated VM. A mesh of 25 nodes behind
one router needs 600 underlay routes and 1200 tunnel routes, so building it took
~20 s on this host. Route messages are simple, so they are packed here as the
kernel's UAPI lays them out (linux/rtnetlink.h; the same fields pyroute2 and
`ip route` send) and go to the kernel in a few large sendmsg() calls on a netlink
socket opened inside the namespace. Every message asks for an acknowledgement, and
every one is checked.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from typing import Any, Sequence

from harness.errors import HarnessError
from harness.net import nsexec

NLMSG_ERROR = 2
_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
# bytes per sendmsg: the kernel handles a whole sendmsg before we read, queueing an
# acknowledgement per request, and each takes ~1 KiB of the receive buffer (its skb's
# truesize), not its 36 bytes: 32 KiB of routes (~500) overflowed 6.1's default buffer
# (ENOBUFS, acknowledgements lost) on a 300-spoke hub; 8 KiB is ~130 at a time
CHUNK = 8 * 1024
RECEIVE_BUFFER = 4 << 20
SOL_NETLINK, NETLINK_CAP_ACK = 270, 10  # acknowledgements without a copy of the request
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # past net.core.rmem_max, as root


class BatchError(HarnessError, OSError):
    """The kernel refused one of the requests (`index`: which one)."""

    index: int = 0


# linux/netlink.h, linux/rtnetlink.h
RTM_NEWROUTE = 24
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST = 4, 0, 1
RT_TABLE_UNSPEC, RT_TABLE_MAIN = 0, 254
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags


def _attribute(kind: int, payload: bytes) -> bytes:
    header = struct.pack("=HH", 4 + len(payload), kind)
    return header + payload + b"\0" * (-len(payload) % 4)


def route_message(dst: str, oif: int, *, gateway: str | None = None, table: int = RT_TABLE_MAIN, replace: bool = False) -> bytes:
    """RTM_NEWROUTE for `ip route add|replace DST [via GATEWAY] dev OIF [table TABLE]`."""
    network = ipaddress.ip_network(dst, strict=False)
    family = socket.AF_INET6 if network.version == 6 else socket.AF_INET
    body = _RTMSG.pack(
        family, network.prefixlen, 0, 0, table if table < 256 else RT_TABLE_UNSPEC, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0
    )
    body += _attribute(RTA_DST, network.network_address.packed)
    if gateway:
        body += _attribute(RTA_GATEWAY, ipaddress.ip_address(gateway).packed)
    body += _attribute(RTA_OIF, struct.pack("=I", oif))
    body += _attribute(RTA_TABLE, struct.pack("=I", table))
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL)
    return _HEADER.pack(_HEADER.size + len(body), RTM_NEWROUTE, flags, 0, 0) + body


def send(namespace: str, messages: Sequence[bytes], *, ignore: tuple[int, ...] = ()) -> None:
    """Send the messages inside `namespace` and wait for every acknowledgement.
    Raises BatchError naming the first request the kernel refused (errnos in
    `ignore` are accepted, e.g. EEXIST)."""
    if not messages:
        return
    sock = socket.socket(fileno=nsexec.netlink_fd(namespace))
    try:
        sock.bind((0, 0))
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        except OSError:  # not root: as large as net.core.rmem_max allows
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        try:
            sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        except OSError:  # before Linux 4.2: full acknowledgements, still within the chunk's budget
            pass
        numbered = []
        for seq, message in enumerate(messages, start=1):
            length, kind, flags, _, _ = _HEADER.unpack_from(message)
            numbered.append(_HEADER.pack(length, kind, flags, seq, 0) + message[_HEADER.size :])
        pending = set(range(1, len(numbered) + 1))
        chunk: list[bytes] = []
        size = 0
        for message in numbered:
            if size + len(message) > CHUNK and chunk:
                sock.send(b"".join(chunk))
                _collect(sock, pending, messages, ignore, until=len(messages) - len(pending) + len(chunk))
                chunk, size = [], 0
            chunk.append(message)
            size += len(message)
        if chunk:
            sock.send(b"".join(chunk))
        _collect(sock, pending, messages, ignore, until=len(messages))
    finally:
        sock.close()


def _collect(sock: socket.socket, pending: set[int], messages: Sequence[bytes], ignore: tuple[int, ...], until: int) -> None:
    """Read acknowledgements until `until` requests in total are answered."""
    while len(messages) - len(pending) < until:
        data = sock.recv(1 << 20)
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, kind, _, seq, _ = _HEADER.unpack_from(data, offset)
            if length < _HEADER.size:
                break
            if kind == NLMSG_ERROR and seq in pending:
                (code,) = struct.unpack_from("=i", data, offset + _HEADER.size)
                pending.discard(seq)
                if code != 0 and -code not in ignore:
                    error = BatchError(-code, f"{os.strerror(-code)} (request {seq} of {len(messages)})")
                    error.index = seq - 1
                    raise error
            offset += (length + 3) & ~3


def install_routes(node: nsexec.InNamespace, requests: Sequence[dict[str, Any]], *, replace: bool = False) -> None:
    """`ip route add` (or `replace`) for every request inside `node`, in one batch."""
    try:
        send(node.netns_path, [route_message(replace=replace, **request) for request in requests])
    except BatchError as exc:
        request = requests[exc.index]
        raise BatchError(exc.errno, f"route {request.get('dst')} in {node.netns_path}: {exc.strerror}") from None
