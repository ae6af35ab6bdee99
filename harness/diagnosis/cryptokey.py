"""Cryptokey routing evidence for the diagnosis.

- `DeliveryWatch`: around a tunnel ping, did the receiver decrypt the sender's packets
  (the peer's rx counter — wireguard-go counts dropped packets there — or the
  interface's rx_frame_errors, where kernel WireGuard counts a packet whose inner
  source is outside the peer's AllowedIPs), and did its IP stack ever see the echo
  requests? Decrypted but never delivered is the receiver's AllowedIPs dropping them.
- `routing_loop`: does the route to a peer's endpoint, looked up as WireGuard's own
  socket does (with the device's fwmark), lead back into the WireGuard interface? A
  full-tunnel default route without wg-quick's fwmark rules does exactly that.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pyroute2.netlink.exceptions import NetlinkError

from harness.allowedips import covering
from harness.diagnosis.result import Diagnosis
from harness.endpoint import endpoint_host
from harness.engine.base import Node
from harness.wg.backends import DeviceUnavailable


def _stack_echo_requests(node: Node, family: int) -> int:
    """ICMP echo requests the node's IP stack has received (/proc/net/snmp{,6})."""
    return echo_requests_counted(node.read_proc_net("snmp6" if family == 6 else "snmp"), family)


def echo_requests_counted(text: str, family: int) -> int:
    """InEchos from /proc/net/snmp (IPv4: a header line, then a values line, per
    protocol) or Icmp6InEchos from /proc/net/snmp6 (one `name value` per line)."""
    if family == 6:
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == "Icmp6InEchos":
                return int(value)
        return 0
    header, values = [line.split() for line in text.splitlines() if line.startswith("Icmp:")][:2]
    return int(values[header.index("InEchos")])


def _interface_rx_errors(network, node: str) -> int:
    counters = network.node(node).interface_counters(network.plan.wireguard[node].ifname)
    return counters.get("rx_errors", 0)  # kernel WireGuard counts a forbidden source here (and in rx_frame_errors)


@dataclass
class _Counters:
    peer_rx: int
    rx_errors: int
    echo_requests: int


class DeliveryWatch:
    """Counters before a tunnel ping from `sender` to `receiver` and, with `finish()`,
    right after it (before a diagnosis pings the underlay); `explain` compares them."""

    def __init__(self, network, sender: str, receiver: str, source: str, family: int):
        self.network = network
        self.sender, self.receiver = sender, receiver
        self.source = source
        self.family = family
        self.before = self._read()
        self.after: _Counters | None = None

    def finish(self) -> None:
        self.after = self._read()

    def _read(self) -> _Counters | None:
        network = self.network
        try:
            peer = network.wireguard.peer_status(self.receiver, self.sender)
            return _Counters(
                peer.rx_bytes if peer else 0,
                _interface_rx_errors(network, self.receiver),
                _stack_echo_requests(network.node(self.receiver), self.family),
            )
        except (DeviceUnavailable, OSError, NetlinkError):  # a device gone: the tunnel diagnosis says so
            return None

    def explain(self, diagnosis: Diagnosis) -> None:
        """Add what the receiver's counters show; confirm or correct an AllowedIPs verdict."""
        after = self.after
        if self.before is None or after is None:
            return
        rx = after.peer_rx - self.before.peer_rx
        errors = after.rx_errors - self.before.rx_errors
        echoes = after.echo_requests - self.before.echo_requests
        receiver, sender = self.receiver, self.sender
        diagnosis.lines.append(
            f"{receiver}: during the ping, rx from {sender} +{rx} B, interface receive errors +{errors}, "
            f"echo requests reaching its IP stack +{echoes}"
        )
        decrypted = rx > 0 or errors > 0
        if decrypted and echoes == 0:
            covered = _receiver_allows(self.network, receiver, sender, self.source)
            if not covered:
                diagnosis.set(
                    "allowed-ips-receiver",
                    f"{receiver} decrypted {sender}'s packets but dropped them: their inner source {self.source} is not "
                    f"in {receiver}'s AllowedIPs for {sender} (cryptokey routing: a peer may only send from its own addresses)",
                )
        elif echoes > 0 and diagnosis.code == "allowed-ips-receiver":
            diagnosis.set(
                "handshake-no-data",
                f"{receiver}'s IP stack received the echo requests (so its AllowedIPs let them in), but no reply came back to {self.source}",
            )


def _receiver_allows(network, receiver: str, sender: str, source: str) -> bool:
    try:
        peer = network.wireguard.peer_status(receiver, sender)
    except DeviceUnavailable:
        return False
    address = ipaddress.ip_address(source)
    return peer is not None and covering(peer.allowed_ips, address) is not None


def routing_loop(network, node: str, endpoint: str) -> str | None:
    """If `node`'s WireGuard packets to `endpoint` are routed into its own WireGuard
    interface, a sentence saying so; else None."""
    wg = network.plan.wireguard.get(node)
    host = endpoint_host(endpoint)
    if wg is None or not _routed_into_tunnel(network, node, host, wg.fwmark):
        return None
    mark = f" (fwmark {wg.fwmark})" if wg.fwmark is not None else " (the device has no fwmark)"
    return (
        f"{node} routes its own WireGuard packets to {host}{mark} into {wg.ifname}, the tunnel itself: they loop and "
        f"never reach the underlay; a default route through the tunnel needs fwmark policy routing as wg-quick "
        f"sets up (table: auto), or a route for the endpoint outside the tunnel"
    )


def sends_into_tunnel(network, node: str, host: str) -> bool:
    """`node` routes what a process there sends to `host` (without WireGuard's mark)
    into its own tunnel. A full tunnel (wg-quick's table: auto) does so for anything
    beyond its own subnets, answers to an underlay ping included: such a node answers
    only through the tunnel, where the prober drops it, so silence says nothing."""
    return _routed_into_tunnel(network, node, host, None)


def _routed_into_tunnel(network, node: str, host: str, mark: int | None) -> bool:
    wg = network.plan.wireguard.get(node)
    if wg is None or node not in network.plan.nodes or wg.socket_node != node:
        return False  # a socket left in another namespace is routed there, never into this interface
    here = network.node(node)
    index = here.interface_index(wg.ifname)
    # WireGuard's socket marks its packets with the device's fwmark; no route at all:
    # the underlay probe reports that
    route = here.route_to(host, mark) if index is not None else None
    return route is not None and route.oif == index


def watch_delivery(network, sender: str, address, source: str) -> DeliveryWatch | None:
    """A DeliveryWatch on the peer that carries `address` from `sender` (None if no peer does)."""
    hop = network.plan.wireguard[sender].peer_for(address)
    if hop is None:
        return None
    return DeliveryWatch(network, sender, hop.node, source, address.version)
