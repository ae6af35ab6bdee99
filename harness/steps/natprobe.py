"""Classify a NAT the way RFC 4787 defines it, with plain UDP sockets.

An inside host talks to two outside hosts A and B (two ports on A), through the NAT
under test. Each outside host reports back, in its reply, the source address:port
it saw: the NAT's external mapping for that destination.

- Mapping (RFC 4787 §4.1): one inside socket sends to A:p1, A:p2 and B:p1.
  The same external address:port for all three is endpoint-independent; the same
  for A's two ports but another for B is address-dependent; a new one for A:p2 is
  address-and-port-dependent.
- Filtering (§5): a fresh inside socket sends to A:p1 only (and gets A's reply).
  Then A:p2 and B:p1 send to the mapping A saw. If B gets in, filtering is
  endpoint-independent; if only A:p2 does, address-dependent; if neither,
  address-and-port-dependent.
- Hairpinning (§6), when a second inside host is given: it sends to the first
  one's mapping (the public address:port A saw). Hairpinning works if the first
  host gets it, from the NAT's public address (not the sender's private one), and
  its answer to that address comes back.

Sockets are opened inside the nodes (`Node.socket`) and then used from here: a
socket keeps the namespace it was opened in, so all the nodes probed must be on this
machine. No WireGuard is involved.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from harness.endpoint import Endpoint, endpoint_host, format_endpoint
from harness.engine.base import Node
from harness.nattypes import ADDRESS_AND_PORT_DEPENDENT, ADDRESS_DEPENDENT, ENDPOINT_INDEPENDENT, by_behaviour



@dataclass(frozen=True)
class NatClassification:
    mapping: str
    filtering: str
    hairpin: bool | None = None  # None: not probed (no second inside host)
    # what the outside hosts saw: "A:p1", "A:p2", "B:p1" → "address:port"
    seen: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        """Our type name, or a description of an unusual combination."""
        known = by_behaviour(self.mapping, self.filtering)
        return known.name if known is not None else f"{self.mapping} mapping, {self.filtering} filtering"

    def __str__(self) -> str:
        hairpin = "" if self.hairpin is None else f", hairpin {'on' if self.hairpin else 'off'}"
        return f"{self.name} ({self.mapping} mapping, {self.filtering} filtering{hairpin})"


def _udp_socket(node: Node, port: int = 0) -> socket.socket:
    sock = node.socket(socket.AF_INET, socket.SOCK_DGRAM)  # in the node's namespace, wherever it is bound from
    try:
        sock.bind(("0.0.0.0", port))
    except BaseException:
        sock.close()
        raise
    return sock


def _receive(sock: socket.socket, timeout: float) -> tuple[bytes, tuple[str, int]] | None:
    sock.settimeout(timeout)
    try:
        return sock.recvfrom(2048)
    except (socket.timeout, BlockingIOError):
        return None


def _drain(sock: socket.socket) -> None:
    while _receive(sock, 0.0) is not None:
        pass


class _Outside:
    """An outside host's socket that answers with the source address it saw."""

    def __init__(self, label: str, sock: socket.socket, address: str):
        self.label, self.sock, self.address = label, sock, address
        self.port = sock.getsockname()[1]

    @property
    def target(self) -> tuple[str, int]:
        return self.address, self.port

    def echo(self, timeout: float) -> str | None:
        """Wait for one datagram; answer it with 'seen <address:port>'. Returns what it saw."""
        got = _receive(self.sock, timeout)
        if got is None:
            return None
        seen = format_endpoint(got[1][0], got[1][1])
        self.sock.sendto(f"seen {seen}".encode(), got[1])
        return seen


class _Pacing:
    """How long the probe waits for a datagram. An answer that is expected (the mapping
    probes) is waited for with growing patience, since on a loaded machine the first
    datagram to a new neighbour can take over a second (ARP on both hops); a datagram
    that may rightly never come (a filtering probe) is waited for a few of the slowest
    round trips seen so far, and never less than `timeout`."""

    ROUND_TRIPS = 4  # a negative answer waits this many of the slowest round trips seen
    ATTEMPTS = 4  # an expected answer: timeout, 2x, 4x, 8x (4.5 s at 0.3 s)

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.slowest = 0.0

    def expected(self) -> list[float]:
        return [self.timeout * 2**attempt for attempt in range(self.ATTEMPTS)]

    def saw(self, round_trip: float) -> None:
        self.slowest = max(self.slowest, round_trip)

    @property
    def negative(self) -> float:
        return max(self.timeout, min(self.ROUND_TRIPS * self.slowest, 8 * self.timeout))


def _ask(inside: socket.socket, outside: _Outside, pacing: _Pacing) -> str | None:
    """Send from the inside socket to an outside host; the mapping it reports back
    (read from its reply's payload, so the reply path is checked too)."""
    for wait in pacing.expected():
        sent = time.monotonic()
        inside.sendto(b"which address do you see?", outside.target)
        if outside.echo(wait) is None:
            continue
        got = _receive(inside, wait)
        if got is not None and got[0].startswith(b"seen "):
            pacing.saw(time.monotonic() - sent)
            return got[0][5:].decode()
    return None


def _gets_in(sender: socket.socket, receiver: socket.socket, mapping: str, pacing: _Pacing) -> tuple[bool, str | None]:
    """Does a datagram from `sender` to the external `mapping` reach `receiver`?
    Returns (arrived, the source address:port the receiver saw)."""
    target = Endpoint.parse(mapping)
    _drain(receiver)
    for _ in range(2):  # a second try, in case the first met an unready path
        sender.sendto(b"unsolicited", (target.host, target.port))
        got = _receive(receiver, pacing.negative)
        if got is not None:
            return True, format_endpoint(got[1][0], got[1][1])
    return False, None


def classify_nat(
    network,
    inside: str,
    outside: tuple[str, str],
    *,
    second_inside: str | None = None,
    ports: tuple[int, int] = (3478, 3479),
    timeout: float = 0.3,
) -> NatClassification:
    """Probe the NAT between `inside` and the outside hosts `outside` = (A, B).

    `ports` are the two UDP ports opened on A (B uses the first). `timeout` is the
    shortest wait for one datagram (see _Pacing: an expected answer is waited for
    longer on retries, a filtered one a few of the slowest round trips seen)."""
    host_a, host_b = outside
    plan = network.plan
    address_a = str(plan.underlay_address(inside, host_a, 4))
    address_b = str(plan.underlay_address(inside, host_b, 4))
    opened: list[socket.socket] = []
    pacing = _Pacing(timeout)

    def udp(node: str, port: int = 0) -> socket.socket:
        sock = _udp_socket(network.node(node), port)
        opened.append(sock)
        return sock

    try:
        a1 = _Outside("A:p1", udp(host_a, ports[0]), address_a)
        a2 = _Outside("A:p2", udp(host_a, ports[1]), address_a)
        b1 = _Outside("B:p1", udp(host_b, ports[0]), address_b)

        # mapping: one inside socket, three destinations
        probe = udp(inside)
        seen = {o.label: _ask(probe, o, pacing) for o in (a1, a2, b1)}
        missing = [label for label, value in seen.items() if value is None]
        if missing:
            raise RuntimeError(f"NAT probe: no answer from {', '.join(missing)} through the NAT (is the path up?)")
        if seen["A:p1"] == seen["A:p2"] == seen["B:p1"]:
            mapping = ENDPOINT_INDEPENDENT
        elif seen["A:p1"] == seen["A:p2"]:
            mapping = ADDRESS_DEPENDENT
        else:
            mapping = ADDRESS_AND_PORT_DEPENDENT

        # filtering: a fresh mapping, opened towards A:p1 only
        fresh = udp(inside)
        opened_to_a = _ask(fresh, a1, pacing)
        if opened_to_a is None:
            raise RuntimeError("NAT probe: A:p1 did not answer the filtering probe")
        from_b, _ = _gets_in(b1.sock, fresh, opened_to_a, pacing)
        from_a2, _ = _gets_in(a2.sock, fresh, opened_to_a, pacing)
        if from_b:
            filtering = ENDPOINT_INDEPENDENT
        elif from_a2:
            filtering = ADDRESS_DEPENDENT
        else:
            filtering = ADDRESS_AND_PORT_DEPENDENT

        hairpin = None
        if second_inside is not None:
            hairpin = _hairpin(udp, inside, second_inside, a1, pacing)
        return NatClassification(mapping, filtering, hairpin, seen)
    finally:
        for sock in opened:
            sock.close()


def _hairpin(udp, inside: str, second_inside: str, a1: _Outside, pacing: _Pacing) -> bool:
    target = udp(inside)
    public = _ask(target, a1, pacing)  # the target's mapping, as the outside sees it
    if public is None:
        raise RuntimeError("NAT probe: A:p1 did not answer the hairpin probe")
    sender = udp(second_inside)
    arrived, source = _gets_in(sender, target, public, pacing)
    if not arrived or source is None or endpoint_host(source) != endpoint_host(public):
        return False  # not delivered, or delivered from the private address (no hairpin SNAT)
    back = Endpoint.parse(source)
    _drain(sender)
    target.sendto(b"hairpin reply", (back.host, back.port))
    return _receive(sender, pacing.negative) is not None
