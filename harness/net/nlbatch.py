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
from typing import Any, Callable, Sequence

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


def route_message(
    dst: str | ipaddress.IPv4Network | ipaddress.IPv6Network, oif: int, *, gateway: str | None = None, table: int = RT_TABLE_MAIN, replace: bool = False
) -> bytes:
    """RTM_NEWROUTE for `ip route add|replace DST [via GATEWAY] dev OIF [table TABLE]`."""
    network = dst if isinstance(dst, (ipaddress.IPv4Network, ipaddress.IPv6Network)) else ipaddress.ip_network(dst, strict=False)
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
    """Send the messages inside `namespace` and check every one. Raises BatchError
    naming the first request the kernel refused (errnos in `ignore` are accepted, e.g.
    EEXIST).

    Only the last request of each sendmsg asks for an acknowledgement: the kernel
    handles a sendmsg's requests in order and answers a failed one whether or not it
    asked (netlink_rcv_skb), so once the last one is acknowledged every earlier one has
    succeeded or has had its error queued before it. A mesh of 1 000 adds a million
    routes: one acknowledgement (an skb, a recv) each cost more than the route."""
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
        except OSError:  # before Linux 4.2: errors carry a copy of the request, still within the chunk's budget
            pass
        chunk: list[tuple[int, bytes]] = []  # (sequence number, message)
        size = 0
        for seq, message in enumerate(messages, start=1):
            if size + len(message) > CHUNK and chunk:
                _send_chunk(sock, chunk, messages, ignore)
                chunk, size = [], 0
            chunk.append((seq, message))
            size += len(message)
        _send_chunk(sock, chunk, messages, ignore)
    finally:
        sock.close()


def _send_chunk(sock: socket.socket, chunk: Sequence[tuple[int, bytes]], messages: Sequence[bytes], ignore: tuple[int, ...]) -> None:
    """One sendmsg of numbered requests, the last one asking for an acknowledgement;
    reads the answers until that one's."""
    parts = []
    last = chunk[-1][0]
    for seq, message in chunk:
        length, kind, flags, _, _ = _HEADER.unpack_from(message)
        flags = flags | NLM_F_ACK if seq == last else flags & ~NLM_F_ACK
        parts.append(_HEADER.pack(length, kind, flags, seq, 0) + message[_HEADER.size :])
    sock.send(b"".join(parts))
    first = chunk[0][0]
    while True:
        data = sock.recv(1 << 20)
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, kind, _, seq, _ = _HEADER.unpack_from(data, offset)
            if length < _HEADER.size:
                break
            if kind == NLMSG_ERROR and first <= seq <= last:
                (code,) = struct.unpack_from("=i", data, offset + _HEADER.size)
                if code != 0 and -code not in ignore:
                    error = BatchError(-code, f"{os.strerror(-code)} (request {seq} of {len(messages)})")
                    error.index = seq - 1
                    raise error
                if seq == last:
                    return
            offset += (length + 3) & ~3


def send_in(node: nsexec.InNamespace, messages: Sequence[bytes], what: Callable[[int], str]) -> None:
    """send() inside `node`; a refused request is named by `what(its index)`."""
    try:
        send(node.netns_path, messages)
    except BatchError as exc:
        raise BatchError(exc.errno, f"{what(exc.index)} in {node.netns_path}: {exc.strerror}") from None


def install_routes(node: nsexec.InNamespace, requests: Sequence[dict[str, Any]], *, replace: bool = False) -> None:
    """`ip route add` (or `replace`) for every request inside `node`, in one batch."""
    send_in(node, [route_message(replace=replace, **request) for request in requests], lambda i: f"route {requests[i].get('dst')}")


# linux/rtnetlink.h, linux/if_addr.h, linux/if_link.h, linux/if.h
RTM_NEWLINK, RTM_NEWADDR = 16, 20
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFA_F_NODAD = 0x02
IFLA_MTU = 4
IFF_UP = 0x1
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_IFINFOMSG = struct.Struct("=BBHiII")  # family, pad, type, index, flags, change


def address_message(index: int, address: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> bytes:
    """RTM_NEWADDR for `ip address add ADDRESS dev INDEX`; IPv6 without duplicate address
    detection (see harness.net.iface.add_address for why)."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    body = _IFADDRMSG.pack(family, address.network.prefixlen, 0, RT_SCOPE_UNIVERSE, index)
    # as pyroute2 sends it: IPv4 with IFA_LOCAL too, IPv6's flags in IFA_FLAGS (32 bits)
    if address.version == 4:
        body += _attribute(IFA_LOCAL, address.ip.packed)
    body += _attribute(IFA_ADDRESS, address.ip.packed)
    if address.version == 6:
        body += _attribute(IFA_FLAGS, struct.pack("=I", IFA_F_NODAD))
    header_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    return _HEADER.pack(_HEADER.size + len(body), RTM_NEWADDR, header_flags, 0, 0) + body


def up_message(index: int, mtu: int | None = None) -> bytes:
    """RTM_NEWLINK for `ip link set INDEX up [mtu MTU]`."""
    return link_message(index, IFF_UP, IFF_UP, mtu)


def link_message(index: int, flags: int, change: int, mtu: int | None = None) -> bytes:
    """RTM_NEWLINK setting the interface flags in `change` to their values in `flags`."""
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, index, flags, change)
    if mtu:
        body += _attribute(IFLA_MTU, struct.pack("=I", mtu))
    return _HEADER.pack(_HEADER.size + len(body), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 0, 0) + body


def addresses_and_up(node: nsexec.InNamespace, interfaces: Sequence[tuple[str, Sequence[Any], int | None]]) -> list[int]:
    """For each (ifname, addresses, mtu) of one node: its addresses added, its MTU set and
    the link up, all in one batch (pyroute2 took four round trips per interface, ~15 ms
    here, and a LAN of 1 000 has 2 000 such interfaces). Returns their indexes."""
    names = [ifname for ifname, _, _ in interfaces]
    indexes = nsexec.call_in(node.netns_path, lambda: [socket.if_nametoindex(name) for name in names])
    messages: list[bytes] = []
    what: list[str] = []
    for index, (ifname, addresses, mtu) in zip(indexes, interfaces):
        for address in addresses:
            messages.append(address_message(index, address))
            what.append(f"address {address} on {ifname}")
        messages.append(up_message(index, mtu))
        what.append(f"{ifname} up" + (f" with mtu {mtu}" if mtu else ""))
    send_in(node, messages, what.__getitem__)
    return indexes


def set_link_flags(node: nsexec.InNamespace, ifname: str, *, flags: int, change: int) -> None:
    """`ip link set IFNAME` for the flags in `change` (e.g. multicast off: flags=0,
    change=IFF_MULTICAST)."""
    index = nsexec.call_in(node.netns_path, socket.if_nametoindex, ifname)
    send_in(node, [link_message(index, flags, change)], lambda _: f"flags of {ifname}")
