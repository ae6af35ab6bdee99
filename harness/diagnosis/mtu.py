"""Diagnosing MTU black holes: large packets through the tunnel vanish while small
ones pass.

WireGuard's default MTU of 1420 assumes a 1500-byte path (1420 + 80 bytes of IPv6,
UDP and WireGuard header and tag). When the path is narrower, an outer packet that
does not fit must either be fragmented by a router (kernel WireGuard sends without
DF) or be refused with ICMP "fragmentation needed", after which the sender's kernel
fragments it (wireguard-go's socket has DF set, the kernel's default PMTU
discovery). A path that drops ICMP and fragments — as many firewalls and middleboxes
do — loses such packets silently: the tunnel's handshake and pings work, bulk
transfers hang.

When a sized ping through the tunnel fails, `refine` compares it with small pings on
the same path, then measures the underlay's path MTU between the two endpoints with
UDP probes that carry DF (IP_PMTUDISC_PROBE: the kernel neither fragments them nor
trusts its PMTU cache), of every size up to the interface MTU, and names the path MTU
and the largest tunnel MTU that fits. The arithmetic is pure and unit-tested.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
import time
from dataclasses import dataclass

from harness.diagnosis.result import Diagnosis
from harness.endpoint import endpoint_host
from harness.engine.base import Node
from harness.fdwait import readable
from harness.net.ping import parse_ping, ping_argv
from harness.wg.backends import DeviceUnavailable

DEFAULT_TUNNEL_MTU = 1420
WG_OVERHEAD = 32  # transport header (type, receiver index, counter: 16) + Poly1305 tag (16)
IP_HEADER = {4: 20, 6: 40}
UDP_HEADER = 8
ICMP_HEADER = 8
# the smallest packet every link must carry (RFC 791 / RFC 8200): the probes start there
MIN_PATH_MTU = {4: 576, 6: 1280}
SMALL_PING = 56  # iputils' default payload: an 84-byte IPv4 packet fits any path

# socket options (linux/in.h, linux/in6.h); not all are exported by Python's socket module
IP_MTU_DISCOVER, IP_PMTUDISC_PROBE = 10, 3
IPV6_MTU_DISCOVER, IPV6_PMTUDISC_PROBE = 23, 3

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
RECEIVE_BUFFER = 4 << 20
COARSE_STEP = 16
SEND_GAP = 0.001  # between probes, so a rate-limited link's queue is not what drops them
QUIET = 0.5  # receiver: how long after the last probe to wait for stragglers


def tunnel_overhead(outer_family: int) -> int:
    """Bytes WireGuard adds to an inner packet on the underlay: outer IP, UDP, header and tag."""
    return IP_HEADER[outer_family] + UDP_HEADER + WG_OVERHEAD


def inner_packet_size(payload: int, family: int) -> int:
    """The IP packet an ICMP echo with `payload` bytes makes."""
    return payload + ICMP_HEADER + IP_HEADER[family]


def padded(inner: int, tunnel_mtu: int) -> int:
    """WireGuard pads the plaintext to a multiple of 16, but never past the tunnel MTU."""
    return max(inner, min(-(-inner // 16) * 16, tunnel_mtu))


def outer_packet_size(inner: int, tunnel_mtu: int, outer_family: int) -> int:
    """The largest underlay packet an inner packet makes. Inner packets over the tunnel
    MTU are fragmented inside the tunnel first, so the largest piece is MTU-sized."""
    return padded(min(inner, tunnel_mtu), tunnel_mtu) + tunnel_overhead(outer_family)


def fitting_tunnel_mtu(path_mtu: int, outer_family: int) -> int:
    """The largest tunnel MTU whose packets cross a path of `path_mtu` unfragmented."""
    return path_mtu - tunnel_overhead(outer_family)


def probe_sizes(low: int, high: int, step: int) -> list[int]:
    """Packet sizes from low to high (both included) in steps."""
    if high < low:
        return []
    sizes = list(range(low, high + 1, step))
    if sizes[-1] != high:
        sizes.append(high)
    return sizes


def largest_contiguous(sent: list[int], received: set[int]) -> int | None:
    """The largest size that arrived with every smaller probe arriving too: a lone
    larger survivor does not raise the path MTU, a lone loss below it is not the MTU."""
    best = None
    for size in sorted(sent):
        if size not in received:
            break
        best = size
    return best


@dataclass(frozen=True)
class PathMtu:
    sender: str
    receiver: str
    address: str  # the receiver's underlay address the probes went to
    mtu: int | None  # the largest packet with DF that arrives; None: not even the smallest did
    interface_mtu: int  # the sender's outgoing interface: no probe is larger
    cached_mtu: int | None = None  # the sender's PMTU cache after probing (set when ICMP arrived)

    def describe(self) -> str:
        if self.mtu is None:
            return f"underlay {self.sender} → {self.receiver} ({self.address}): not even {MIN_PATH_MTU[_family(self.address)]}-byte UDP probes with DF arrive"
        wider = f", {self.mtu + 1}+ byte packets vanish" if self.mtu < self.interface_mtu else ""
        icmp = (
            f"; ICMP 'fragmentation needed' did reach {self.sender} (cached path MTU {self.cached_mtu})"
            if self.cached_mtu
            else f"; no ICMP 'fragmentation needed' reached {self.sender}"
            if self.mtu < self.interface_mtu
            else ""
        )
        return (
            f"underlay {self.sender} → {self.receiver} ({self.address}): path MTU {self.mtu} "
            f"(UDP probes with DF; {self.sender}'s interface MTU {self.interface_mtu}{wider}){icmp}"
        )


def _family(address: str) -> int:
    return ipaddress.ip_address(address).version


def verdict(
    *,
    src: str,
    dst: str,
    large_inner: int,
    small_ok: bool,
    tunnel_mtu: int,
    outer_family: int,
    path_mtu: int | None,
    probed: bool,
) -> str | None:
    """The mtu-blackhole cause for a large tunnel packet that vanished, or None when the
    evidence says it is not the MTU (small packets fail too, or the path is wide enough)."""
    if not small_ok:
        return None  # nothing passes: not a size problem
    outer = outer_packet_size(large_inner, tunnel_mtu, outer_family)
    overhead = tunnel_overhead(outer_family)
    if path_mtu is not None and path_mtu >= outer:
        return None  # the underlay carries the packet: look elsewhere
    what = (
        f"large packets vanish while small ones pass: {large_inner}-byte packets through the tunnel "
        f"(MTU {tunnel_mtu}) become {outer}-byte packets on the underlay (+{overhead} bytes IPv{outer_family}, UDP, WireGuard)"
    )
    if path_mtu is None:
        reason = (
            "the path MTU could not be measured: UDP probes with DF to another port did not arrive even at the minimum size"
            if probed
            else "the path MTU could not be measured: no node of the scenario holds the endpoint's address"
        )
        return f"{what}, and they are lost on the path ({reason}): an MTU black hole; lower the tunnel MTU (e.g. 1280) on both sides"
    fits = fitting_tunnel_mtu(path_mtu, outer_family)
    advice = f"a tunnel MTU of at most {fits} fits" + (", e.g. 1280" if fits >= 1280 else " (below IPv6's minimum of 1280: the tunnel cannot carry IPv6)")
    return (
        f"{what}, but the path {src} ↔ {dst} carries at most {path_mtu} bytes, and the larger ones are lost "
        f"instead of being fragmented or refused with an ICMP error that reaches the sender (a PMTU black hole: "
        f"ICMP or fragments filtered); {advice}, on both sides"
    )


# --- measuring (side effects) --------------------------------------------------------


def _route_mtus(network, node: str, address: str) -> tuple[int, int | None]:
    """(outgoing interface MTU, cached path MTU or None) towards `address` from `node`."""
    here = network.node(node)
    route = here.route_to(address)
    if route is None:
        raise OSError(errno.ENETUNREACH, f"{node} has no route to {address}")
    return here.interface_mtu(route.oif), route.cached_mtu


def _udp_socket(node: Node, family: int, bind: tuple) -> socket.socket:
    """A UDP socket in `node` that sends with DF and never fragments, and can hold a
    whole ladder of probes unread (its options and bind work from any thread: the
    socket stays in the namespace it was opened in)."""
    sock = node.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)  # root: FORCE
        sock.bind(bind)
        if family == 6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_PROBE)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)
    except BaseException:
        sock.close()
        raise
    return sock


class ProbeReceiver:
    """The receiving end of a path MTU probe, kept on the receiver (Node.start): it
    counts the probes that arrived whole."""

    def __init__(self, node: Node, family: int, address: str):
        self.family = family
        self.sock = _udp_socket(node, family, (address, 0))

    def target(self) -> tuple:
        return tuple(self.sock.getsockname()[:2])

    def collect(self, wait: float) -> set[int]:
        """The sizes (whole packets) of the probes that arrive within `wait` seconds
        (the receive buffer holds what came before)."""
        header = IP_HEADER[self.family] + UDP_HEADER
        arrived: set[int] = set()
        deadline = time.monotonic() + wait
        while readable(self.sock, deadline - time.monotonic()):
            data = self.sock.recv(65535)
            if len(data) >= 4:
                (size,) = struct.unpack("!I", data[:4])
                if size == len(data) + header:  # our probe, whole
                    arrived.add(size)
        return arrived

    def close(self) -> None:
        self.sock.close()


def send_probes(node: Node, family: int, target: tuple, sizes: list[int]) -> None:
    """One DF probe of each total packet size from `node` (Node.apply: where it is),
    a little apart, so a rate-limited link's queue is not what drops them."""
    header = IP_HEADER[family] + UDP_HEADER
    sock = _udp_socket(node, family, ("::" if family == 6 else "0.0.0.0", 0))
    try:
        for size in sizes:
            payload = struct.pack("!I", size) + b"\0" * (size - header - 4)
            try:
                sock.sendto(payload, target)
            except OSError as exc:
                if exc.errno != errno.EMSGSIZE:  # larger than the interface: simply not sent
                    raise
            time.sleep(SEND_GAP)
    finally:
        sock.close()


def _ladder(sender: Node, receiver: ProbeReceiver, target: tuple, sizes: list[int], family: int) -> set[int]:
    """One probe per size, then once more for every size that did not arrive: a size
    over the path MTU vanishes every time, a probe lost by chance (a busy machine, a
    full queue) does not, and must not pass for the MTU."""
    sender.apply(send_probes, family, target, sizes)
    arrived = receiver.collect(QUIET)
    missing = [size for size in sizes if size not in arrived]
    if missing:
        sender.apply(send_probes, family, target, missing)
        arrived |= receiver.collect(QUIET)
    return arrived


def probe_path_mtu(network, sender: str, receiver: str, address: str) -> PathMtu:
    """The largest packet with DF that gets from `sender` to `address` (on `receiver`)."""
    family = _family(address)
    interface_mtu, _ = _route_mtus(network, sender, address)
    rx = network.node(receiver).start(ProbeReceiver, family, address)
    tx = network.node(sender)
    try:
        target = tuple(rx.target())
        # coarse steps up to the interface MTU, then every size above the largest that arrived
        sizes = probe_sizes(MIN_PATH_MTU[family], interface_mtu, COARSE_STEP)
        mtu = largest_contiguous(sizes, _ladder(tx, rx, target, sizes, family))
        if mtu is not None and mtu < interface_mtu:
            fine = probe_sizes(mtu + 1, min(mtu + COARSE_STEP - 1, interface_mtu), 1)
            mtu = largest_contiguous([mtu] + fine, _ladder(tx, rx, target, fine, family) | {mtu})
    finally:
        rx.close()
    _, cached = _route_mtus(network, sender, address)
    return PathMtu(sender, receiver, address, mtu, interface_mtu, cached if cached and cached < interface_mtu else None)


def _owner(plan, address: str) -> str | None:
    """The node that holds an underlay address."""
    wanted = ipaddress.ip_address(address)
    for node, ports in plan.ports.items():
        if any(interface.ip == wanted for port in ports for interface in port.addresses):
            return node
    return None


def _small_ping_ok(network, src: str, address: str, family: int) -> tuple[bool, str]:
    argv = ping_argv(address, family=family, count=3, interval=0.2, timeout=1.0, size=SMALL_PING)
    outcome = parse_ping(network.run(src, argv, timeout=15).stdout)
    size = inner_packet_size(SMALL_PING, family)
    return outcome.received > 0, f"tunnel: {outcome.received}/{outcome.sent} small pings ({size}-byte packets) to {address} answered"


def refine(network, src: str, address, size: int | None, received: int, diagnosis: Diagnosis) -> Diagnosis:
    """Check a failed tunnel ping of `size` payload bytes for an MTU black hole; on
    evidence, add what was measured and name the cause `mtu-blackhole`."""
    family = address.version
    if size is None or received or inner_packet_size(size, family) <= inner_packet_size(SMALL_PING, family):
        return diagnosis  # no large packet, or some got through: not a black hole
    hop = network.plan.wireguard[src].peer_for(address)
    if hop is None:
        return diagnosis
    small_ok, line = _small_ping_ok(network, src, str(address), family)
    diagnosis.lines.append(line)
    if not small_ok:
        return diagnosis
    tunnel_mtu = network.plan.wireguard[src].mtu or DEFAULT_TUNNEL_MTU
    # each side's endpoint for the other, where a node of ours holds that address
    measured: list[PathMtu] = []
    outer_family = 4
    for sender, receiver in ((src, hop.node), (hop.node, src)):
        try:
            peer = network.wireguard.peer_status(sender, receiver)
        except DeviceUnavailable:
            continue
        if peer is None or not peer.endpoint:
            continue
        host = endpoint_host(peer.endpoint)
        outer_family = _family(host)
        owner = _owner(network.plan, host)
        if owner is None:
            continue
        try:
            result = probe_path_mtu(network, sender, owner, host)
        except OSError as exc:
            diagnosis.lines.append(f"underlay {sender} → {owner}: path MTU probe failed ({exc})")
            continue
        measured.append(result)
        diagnosis.lines.append(result.describe())
    known = [m.mtu for m in measured if m.mtu is not None]
    cause = verdict(
        src=src,
        dst=hop.node,
        large_inner=inner_packet_size(size, family),
        small_ok=small_ok,
        tunnel_mtu=tunnel_mtu,
        outer_family=outer_family,
        path_mtu=min(known) if known else None,
        probed=bool(measured),
    )
    if cause is not None:
        diagnosis.set("mtu-blackhole", cause)
    return diagnosis
