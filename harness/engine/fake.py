"""A fake engine and network for unit tests of steps and diagnosis: nothing is built, nothing is
sent. Each node answers commands, socket sends and route lookups from a small model of
the world that the test sets up (which handshakes complete, which pings answer, what
each side's WireGuard status says), so the logic above the engine runs without root.

Only what a test models is possible: a function to run inside a node (`Node.call`)
is refused, since running it would act on the host itself.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from pyroute2.netlink.exceptions import NetlinkError

from harness.context import ContextAccess, RunContext
from harness.endpoint import format_endpoint
from harness.engine.base import OnThisMachine
from harness.engine.place import Here, LocalPlace
from harness.net.conntrack import UdpMapping
from harness.net.echo import SO_TIMESTAMPNS
from harness.net.queries import NetlinkQueries
from harness.plan.types import Conditions, NetworkPlan, Port
from harness.wg.status import DeviceStatus, PeerStatus


@dataclass
class FakeWorld:
    """What the fake network does. `ping(node, address)` says whether an echo from
    `node` to `address` is answered (RTT in ms, or None); `on_datagram(node, address)`
    is called for every UDP datagram a step sends; `routes` are the route lookups
    that succeed, as (node, destination) → outgoing interface index."""

    ping: Callable[[str, str], float | None] = lambda node, address: None
    on_datagram: Callable[[str, str], None] = lambda node, address: None
    routes: dict[tuple[str, str], int] = field(default_factory=dict)
    nat_mappings: dict[str, list[UdpMapping]] = field(default_factory=dict)  # a NAT node's conntrack table
    sent: list[tuple[str, str, bytes]] = field(default_factory=list)
    commands: list[tuple[str, list[str]]] = field(default_factory=list)
    timeline: list[tuple] = field(default_factory=list)  # the engine operations steps asked for, in order
    address_flags: dict[tuple[str, str], int] = field(default_factory=dict)  # (node, address) → IFA_F_* flags


def ping_output(address: str, count: int, rtt_ms: float | None) -> str:
    """What iputils ping prints for `count` echoes, all answered or all lost."""
    lines = [f"PING {address} ({address}) 56(84) bytes of data."]
    if rtt_ms is not None:
        lines += [f"64 bytes from {address}: icmp_seq={i + 1} ttl=64 time={rtt_ms:.3f} ms" for i in range(count)]
    received = count if rtt_ms is not None else 0
    lines += ["", f"--- {address} ping statistics ---", f"{count} packets transmitted, {received} received, {100 - 100 * received // count}% packet loss, time 1ms"]
    if rtt_ms is not None:
        lines.append(f"rtt min/avg/max/mdev = {rtt_ms:.3f}/{rtt_ms:.3f}/{rtt_ms:.3f}/0.000 ms")
    return "\n".join(lines) + "\n"


class _FakeSocket:
    def __init__(self, node: "FakeNode"):
        self.node = node

    def sendto(self, payload: bytes, target: tuple) -> int:
        self.node.world.sent.append((self.node.name, target[0], payload))
        self.node.world.on_datagram(self.node.name, target[0])
        return len(payload)

    def __enter__(self) -> "_FakeSocket":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        pass


class _FakeIcmpSocket:
    """A raw ICMP socket whose echo requests the world answers (`FakeWorld.ping`): the
    reply comes back through a socketpair, so select() and recvmsg() work as on a real one."""

    def __init__(self, node: "FakeNode", family: int):
        self.node = node
        self.family = family
        self._ours, self._theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._replies: list[tuple[str, float]] = []  # (source, when the kernel would have stamped it)

    def fileno(self) -> int:
        return self._ours.fileno()

    def setsockopt(self, *args: Any) -> None:
        pass

    def bind(self, address: tuple) -> None:
        pass

    def sendto(self, packet: bytes, target: tuple) -> int:
        self.node.world.sent.append((self.node.name, target[0], packet))
        rtt_ms = self.node.world.ping(self.node.name, target[0])
        if rtt_ms is not None:
            reply = bytes([0 if self.family == socket.AF_INET else 129]) + packet[1:]
            header = bytes([0x45]) + bytes(19) if self.family == socket.AF_INET else b""
            self._replies.append((target[0], time.time() + rtt_ms / 1000))
            self._theirs.send(header + reply)
        return len(packet)

    def recvmsg(self, size: int, ancillary_size: int = 0) -> tuple[bytes, list, int, tuple]:
        """The reply, stamped as the kernel would (SO_TIMESTAMPNS), `rtt_ms` after its request."""
        data = self._ours.recv(size)
        source, at = self._replies.pop(0)
        stamp = struct.pack("@qq", int(at), int((at % 1) * 1e9))
        return data, [(socket.SOL_SOCKET, SO_TIMESTAMPNS, stamp)], 0, (source,)

    def close(self) -> None:
        self._ours.close()
        self._theirs.close()


class _FakeRoute(dict):
    def get_attr(self, name: str) -> Any:
        return self.get(name)


class _FakeNetlink:
    def __init__(self, node: "FakeNode"):
        self.node = node

    def link_lookup(self, ifname: str) -> list[int]:
        return [1000]

    def route(self, command: str, dst: str, **query: Any) -> list[_FakeRoute]:
        oif = self.node.world.routes.get((self.node.name, dst))
        if oif is None:
            raise NetlinkError(101, "Network is unreachable")
        return [_FakeRoute(RTA_OIF=oif, RTA_GATEWAY=None)]

    def get_addr(self, family: int | None = None) -> list[_FakeRoute]:
        return [
            _FakeRoute(IFA_ADDRESS=address, IFA_FLAGS=flags, flags=flags & 0xFF)
            for (node, address), flags in self.node.world.address_flags.items()
            if node == self.node.name
        ]


class FakeNode(NetlinkQueries):
    clock_offset = 0.0  # on this machine

    def __init__(self, name: str, world: FakeWorld):
        self.name = name
        self.world = world
        self.netlink = _FakeNetlink(self)

    @property
    def netns_path(self) -> str:
        return f"fake:{self.name}"

    def run(self, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None) -> subprocess.CompletedProcess:
        argv = list(argv)
        self.world.commands.append((self.name, argv))
        if "ping" not in argv[0]:
            raise NotImplementedError(f"the fake engine runs ping only, not {argv[0]}")
        address = argv[-1]
        count = int(argv[argv.index("-c") + 1]) if "-c" in argv else 1
        return subprocess.CompletedProcess(argv, 0, ping_output(address, count, self.world.ping(self.name, address)), "")

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        raise NotImplementedError("the fake engine starts no processes")

    def socket(self, family: int, kind: int, proto: int = 0) -> _FakeSocket | _FakeIcmpSocket:
        if kind == socket.SOCK_RAW:
            return _FakeIcmpSocket(self, family)
        return _FakeSocket(self)

    def read_proc_net(self, name: str) -> str:
        raise NotImplementedError("the fake engine has no /proc/net: it would read the host's")

    def apply(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return function(self, *args, **kwargs)

    def start(self, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return factory(self, *args, **kwargs)


class FakeDevice:
    """A WireGuard device whose status the test writes."""

    backend = "fake"

    def __init__(self, status: DeviceStatus):
        self.current = status

    def status(self) -> DeviceStatus:
        return self.current


class FakeEngine(OnThisMachine):
    """An Engine that builds nothing: its nodes answer from the world, and the timeline's
    operations are recorded in `world.timeline` (links down/up and conditions are also
    remembered, as the diagnosis reads them back)."""

    name = "fake"

    def __init__(self, world: FakeWorld):
        self.world = world
        self.plan: NetworkPlan | None = None
        self.down_links: set[int] = set()
        self._nodes: dict[str, FakeNode] = {}
        self._conditions: dict[tuple[int, str], Conditions | None] = {}

    def build(self, plan: NetworkPlan, registry: Any = None) -> None:
        self.plan = plan
        self._nodes = {name: FakeNode(name, self.world) for name in plan.nodes}

    def node(self, name: str) -> FakeNode:
        return self._nodes[name]

    def port_addresses(self, port: Port) -> tuple:
        return port.addresses

    def set_link(self, index: int, *, up: bool | None = None, conditions: dict[str, Conditions | None] | None = None) -> None:
        self.world.timeline.append(("set_link", index, up, conditions))
        if up is False:
            self.down_links.add(index)
        elif up is True:
            self.down_links.discard(index)
        self._conditions.update({(index, node): c for node, c in (conditions or {}).items()})

    def conditions(self, index: int, sender: str) -> Conditions | None:
        return self._conditions.get((index, sender), self.plan.veths[index].egress(sender))

    def detach(self, node: str, link_index: int) -> None:
        self.world.timeline.append(("detach", node, link_index))
        self.down_links.add(link_index)

    def attach(self, node: str, link_index: int) -> None:
        self.world.timeline.append(("attach", node, link_index))
        self.down_links.discard(link_index)

    def reroute(self) -> None:
        self.world.timeline.append(("reroute",))

    def renumber(self, node: str, to: Any = None) -> str:
        raise NotImplementedError("the fake engine does not renumber: model the new address in the world instead")

    def flush_nat(self, node: str) -> int:
        flushed = len(self.world.nat_mappings.pop(node, []))
        self.world.timeline.append(("flush_nat", node))
        return flushed

    def nat_mappings(self, node: str) -> list[UdpMapping]:
        return list(self.world.nat_mappings.get(node, []))

    def close(self) -> None:
        self._nodes.clear()


class FakeFleet:
    """The WireGuard side of a fake network: fixed keys, and statuses the test writes."""

    def __init__(self, plan: NetworkPlan):
        self.plan = plan
        self.keys = {name: bytes([i + 1]) * 32 for i, name in enumerate(plan.wireguard)}
        self.devices: dict[str, FakeDevice] = {name: FakeDevice(DeviceStatus(wg.listen_port, ())) for name, wg in plan.wireguard.items()}
        self.backends = {name: "fake" for name in plan.wireguard}
        self.endpoints: dict[tuple[str, str], object] = {}
        self.listen_ports: dict[str, int] = {}

    def peer_status(self, node: str, peer: str) -> PeerStatus | None:
        return self.devices[node].status().peer(self.public_key(peer))

    def public_key(self, node: str) -> bytes:
        return self.keys[node]

    def listen_port(self, node: str) -> int:
        return self.listen_ports.get(node, self.plan.wireguard[node].listen_port)


class FakeNetwork(ContextAccess):
    """What steps and the diagnosis use of a built network, over a FakeWorld."""

    def __init__(self, plan: NetworkPlan, world: FakeWorld | None = None):
        self.plan = plan
        self.world = world or FakeWorld()
        self.engine = FakeEngine(self.world)
        self.engine.build(plan)
        self.wireguard = FakeFleet(plan)
        self.context = RunContext()
        self.artifacts_dir = None

    def node(self, name: str) -> FakeNode:
        return self.engine.node(name)

    def place(self, node: str) -> LocalPlace:
        """Every fake node is here (no run record, no work directory: nothing is made)."""
        return LocalPlace(Here(self.node, None, None))  # type: ignore[arg-type]

    def run(self, node: str, argv: Sequence[str], *, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return self.node(node).run(argv, timeout=timeout)

    def namespace(self, node: str) -> str:
        return self.node(node).netns_path

    def set_peer(self, node: str, peer: str, **status: Any) -> None:
        """`node`'s status for `peer`: endpoint, latest_handshake (epoch seconds), rx_bytes,
        tx_bytes, allowed_ips (default: the planned ones), preshared_key (a fingerprint)."""
        planned = self.plan.wireguard[node].peer(peer)
        fields = {
            "endpoint": None, "latest_handshake": 0.0, "rx_bytes": 0, "tx_bytes": 0, "preshared_key": None,
            "allowed_ips": tuple(str(n) for n in planned.allowed_ips) if planned else (),
        }
        fields.update(status)
        keys, devices = self.wireguard.keys, self.wireguard.devices
        entry = PeerStatus(
            keys[peer], fields["endpoint"], fields["latest_handshake"], fields["rx_bytes"], fields["tx_bytes"], tuple(fields["allowed_ips"]),
            preshared_key=fields["preshared_key"],
        )
        current = devices[node].current
        others = tuple(p for p in current.peers if p.public_key != keys[peer])
        devices[node].current = DeviceStatus(current.listen_port, others + (entry,))

    def handshake_now(self, a: str, b: str) -> None:
        """Both sides record a handshake with each other now (endpoints as planned)."""
        now = time.time()
        for x, y in ((a, b), (b, a)):
            planned = self.plan.wireguard[x].peer(y)
            endpoint = str(planned.endpoint) if planned and planned.endpoint else _underlay_endpoint(self.plan, x, y)
            self.set_peer(x, y, endpoint=endpoint, latest_handshake=now, rx_bytes=148, tx_bytes=92)


def _underlay_endpoint(plan: NetworkPlan, node: str, peer: str) -> str | None:
    address = plan.underlay_address(node, peer, 4)
    return format_endpoint(address, plan.wireguard[peer].listen_port) if address is not None else None
