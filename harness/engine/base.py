"""What an engine is, and the handle of one host it built.

An `Engine` builds a plan's underlay (nodes, links, addresses, routes, NAT, firewall,
conditions), changes it while the steps run (the timeline) and lets go of it. Steps,
the WireGuard fleet and the diagnosis never name a namespace: they ask
`network.node(name)` for a `Node` and act through it. Only the engine knows whether a
host is a named namespace (/run/netns/<name>), an unnamed one held by a process
(/proc/<pid>/ns/net, as Mininet's hosts are), or nothing at all (a fake in tests).
harness/engines.py names the engines a run can choose.
"""

from __future__ import annotations

import socket
import subprocess
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from harness.cleanup import RunRegistry
    from harness.net.conntrack import UdpMapping
    from harness.net.queries import RouteLookup
    from harness.plan.types import Conditions, NetworkPlan, Port

T = TypeVar("T")


@runtime_checkable
class Node(Protocol):
    name: str
    # its machine's monotonic clock minus this one's: 0 on this machine; a node on
    # another machine's times (a probe stream's) are read through it
    clock_offset: float

    @property
    def netns_path(self) -> str:
        """Its network namespace as a path another process can enter."""

    def run(self, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None) -> subprocess.CompletedProcess:
        """Run a command inside it to completion (`input` on its stdin), output captured as text."""

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        """Start a command inside it (it dies with the harness)."""

    def socket(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        """A socket opened inside it; it stays there wherever it is used from."""

    def read_proc_net(self, name: str) -> str:
        """/proc/net/<name> (snmp, tcp, …) as the node sees it."""

    def apply(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function(node, *args, **kwargs)` where the node is: on its own machine, so
        what it opens there (a raw socket for a ping) is in reach. `function` is a
        module-level harness function and what it takes and returns is plain data."""

    def start(self, factory: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`factory(node, *args, **kwargs)` where the node is, kept there: an object
        that runs on (a probe stream, a capture). Its public methods are called there
        too, and take and return plain data; `close()` ends it."""

    @property
    def netlink(self) -> Any:
        """A cached rtnetlink handle (pyroute2 IPRoute) opened inside it."""

    # what the diagnosis and the steps ask of its kernel (harness.net.queries): outside
    # the engines and net/, these and not `netlink`
    def route_to(self, destination: str, mark: int | None = None) -> "RouteLookup | None":
        """The route a packet to `destination` takes; None when there is none."""

    def interface_index(self, ifname: str) -> int | None:
        """The index of interface `ifname`, None if there is none."""

    def interface_mtu(self, index: int) -> int:
        """The MTU of interface `index`."""

    def interface_counters(self, ifname: str) -> dict[str, int]:
        """The kernel's counters of `ifname` (rx_errors, …); {} if it is gone."""

    def address_state(self, address: str) -> str | None:
        """'tentative' or 'dadfailed' while the node cannot use its own `address`."""


@runtime_checkable
class Engine(Protocol):
    """Builds and changes one run's underlay. Everything it creates on the host goes in
    the run's registry first, so a crashed run is reaped whatever the engine."""

    name: str
    down_links: set[int]  # links the timeline took down
    # its nodes are on other machines: each checks its own limits, and places and
    # device sites are there (place, device_site); False: this machine's
    elsewhere: bool

    def build(self, plan: "NetworkPlan", registry: "RunRegistry") -> "NetworkPlan | None":
        """Nodes, links with their addresses and conditions, routes, NAT and firewall.
        An engine over a network it did not plan (a user's own Mininet) returns the
        plan of what it found, with WireGuard planned on it; the others return None."""

    def missing(self, needs: set[str], backend: str, userspace: Any) -> list[str]:
        """What the machines it builds on lack for `needs` (capability names of
        harness/caps.py) with `backend`, each with how to get it; [] if nothing.
        Asked before build: a case that cannot run there is skipped, saying why."""

    def node(self, name: str) -> Node:
        """The built node `name`."""

    def place(self, node: str) -> Any:
        """Where `node` is, when that is another machine (a worker's place, as
        harness.engine.place's); None: this machine, the network's own place."""

    def device_site(self, node: str) -> Any:
        """Where `node`'s WireGuard device is made, when that is another machine (as
        harness.wg.site's DeviceSite); None: this machine, the network's own site."""

    def spread(self) -> Any:
        """Over several hosts, where it ran (harness.plan.share.Spread: each node's
        host, the latency between hosts); None on one machine."""

    def port_addresses(self, port: "Port") -> tuple:
        """The addresses `port` has now (renumber and detach change the planned ones)."""

    def set_link(self, index: int, *, up: bool | None = None, conditions: dict[str, "Conditions | None"] | None = None) -> None:
        """Take link `index` down or up and/or replace its conditions per sending end."""

    def conditions(self, index: int, sender: str) -> "Conditions | None":
        """The conditions now on what `sender` puts on link `index`."""

    def detach(self, node: str, link_index: int) -> None:
        """`node` leaves a link: its end goes down without its addresses."""

    def attach(self, node: str, link_index: int) -> None:
        """`node` joins a link again with its planned addresses."""

    def reroute(self) -> None:
        """Every node's routes recomputed around the links that are down."""

    def renumber(self, node: str, to: Any = None) -> str:
        """`node` moves to a fresh IPv4 address (or `to`) in its subnet; returns it."""

    def flush_nat(self, node: str) -> int:
        """The NAT on `node` forgets its mappings; returns how many."""

    def nat_mappings(self, node: str) -> list["UdpMapping"]:
        """The UDP mappings the NAT on `node` holds now (for the diagnosis)."""

    def close(self) -> list[str] | None:
        """Let go of the engine's handles (what the registry records is removed with
        it). An engine whose network is on other machines tears it down there and
        returns what it could not remove."""


class OnThisMachine:
    """What an engine whose nodes are all on this machine answers (a mixin): the
    network's own place and device site, no spread over hosts, this machine's
    capabilities."""

    elsewhere = False

    def place(self, node: str) -> None:
        return None

    def device_site(self, node: str) -> None:
        return None

    def spread(self) -> None:
        return None

    def missing(self, needs: set[str], backend: str, userspace: Any) -> list[str]:
        from harness import caps

        return caps.missing_for(needs, backend, userspace)


def send_datagram(node: Node, address: str, payload: bytes = b"wgharness handshake probe", port: int = 9) -> None:
    """One UDP datagram from `node` to `address` (the discard port): into the tunnel,
    enough to start a handshake. Errors (no route, no peer) are ignored: the diagnosis
    says what they were. Sent where the node is."""
    node.apply(_send_datagram_here, address, payload, port)


def _send_datagram_here(node: Node, address: str, payload: bytes, port: int) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with node.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(payload, (address, port))
        except OSError:
            pass
