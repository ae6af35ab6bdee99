"""`reresolve`: periodic re-resolution of endpoints given by DNS name, in the background.

WireGuard resolves an endpoint's name once, when it is configured, and never again.
wireguard-tools' contrib/reresolve-dns/reresolve-dns.sh, run by a timer, works around
it: for each peer whose latest handshake is older than 135 s it sets the endpoint
again from the config file's name, which resolves it anew. This step does the same
for one node, on its own schedule, through the backend's own configuration interface
(netlink for kernel WireGuard, UAPI for wireguard-go), so both backends behave alike.

It writes the endpoint only when the fresh answer differs from the peer's current
endpoint: setting the same endpoint again changes nothing but would reset the
kernel's cached source address every round.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from harness.net.dns import resolve_in
from harness.net.dnswire import DnsError
from harness.scenario.steps.background import StopArgs
from harness.scenario.steps.dns import ReresolveArgs
from harness.steps.registry import runs
from harness.steps.result import Measurement, StepResult

SERVICE_PREFIX = "reresolve:"


@dataclass(frozen=True)
class EndpointChange:
    at: float  # time.monotonic()
    peer: str
    old: str | None
    new: str
    handshake_age: float | None  # how old the latest handshake was when it was re-resolved


class Reresolver:
    def __init__(self, network, args: ReresolveArgs):
        self.network = network
        self.args = args
        self.node = args.node
        self.peers = [(p.node, p.endpoint) for p in network.plan.wireguard[args.node].peers if p.endpoint is not None and p.endpoint.name]
        self.device = network.wireguard.devices[args.node].for_another_thread()
        self.rounds = 0
        self.lookups = 0
        self.changes: list[EndpointChange] = []
        self.dns_failures: list[str] = []
        self.errors: list[str] = []
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"reresolve-{args.node}", daemon=True)

    def start(self) -> "Reresolver":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.args.every):  # like a timer: the first round after one period
            try:
                self.round()
            except Exception as exc:  # the device went away, netlink failed: report at stop
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def round(self) -> None:
        self.rounds += 1
        status = self.device.status()
        now = time.time()
        for peer_node, planned in self.peers:
            key = self.network.wireguard.public_key(peer_node)
            peer = status.peer(key)
            if peer is None:
                continue  # the peer was removed (or its key changed): nothing to update
            age = peer.handshake_age(now)
            if age is not None and age <= self.args.stale_after:
                continue  # a recent handshake: the endpoint works, leave it
            self.lookups += 1
            try:
                found = resolve_in(self.network, self.node, planned.name)
            except DnsError as exc:
                self.dns_failures.append(str(exc))
                continue  # as reresolve-dns.sh: try again next round
            endpoint = type(planned)(found.address, planned.port, planned.node, planned.name)
            if peer.endpoint == str(endpoint):
                continue
            at = time.monotonic()  # packets may use the new endpoint as soon as the call lands
            self.device.update_peer(key, endpoint=str(endpoint))
            self.network.wireguard.endpoints[(self.node, peer_node)] = endpoint  # restarts and diagnoses use it
            self.changes.append(EndpointChange(at, peer_node, peer.endpoint, str(endpoint), age))

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)  # at most one round: a few DNS queries with timeouts
        if self.device is not self.network.wireguard.devices[self.node]:  # a handle of its own: only that goes
            self.device.close()


@runs("reresolve")
def reresolve(network, index: int, args: ReresolveArgs) -> StepResult:
    resolver = Reresolver(network, args).start()
    network.services[SERVICE_PREFIX + args.node] = resolver  # stopped at teardown unless a step stops it
    names = ", ".join(sorted({str(endpoint) for _, endpoint in resolver.peers}))
    return StepResult(
        index,
        "reresolve",
        f"reresolve {args.node}: {names} every {args.every:g}s when the latest handshake is older than {args.stale_after:g}s",
        True,
    )


def stop_reresolve(network, index: int, args: StopArgs) -> StepResult:
    resolver: Reresolver = network.services.pop(SERVICE_PREFIX + args.reresolve)
    resolver.close()
    result = StepResult(index, "stop", f"stop reresolve {args.reresolve}", True, args.expect)
    prefix = f"{args.record or 'reresolve'}."
    m = result.measurements
    m[prefix + "rounds"] = Measurement(resolver.rounds, "rounds")
    m[prefix + "lookups"] = Measurement(resolver.lookups, "queries")
    m[prefix + "endpoint_changes"] = Measurement(len(resolver.changes), "changes")
    parts = [f"{resolver.rounds} rounds, {resolver.lookups} lookups"]
    for change in resolver.changes:
        # how long the endpoint pointed at the old address: from the last event before the change
        events = [(at, what) for at, what in network.events if resolver.started <= at <= change.at]
        text = f"endpoint of {change.peer} {change.old} → {change.new}"
        if events:
            at, what = events[-1]
            text += f" {change.at - at:.2f}s after {what}"
            if change is resolver.changes[0]:
                m[prefix + "updated_after"] = Measurement(round(change.at - at, 4), "s")
        parts.append(text)
    if resolver.dns_failures:
        m[prefix + "dns_failures"] = Measurement(len(resolver.dns_failures), "queries")
        parts.append(f"{len(resolver.dns_failures)} lookups failed (last: {resolver.dns_failures[-1]})")
    if resolver.errors:
        result.passed = False
        parts.append(f"errors: {'; '.join(dict.fromkeys(resolver.errors))}")
    elif resolver.rounds == 0:
        result.passed = False
        parts.append(f"it never ran a round: stop it later than {resolver.args.every:g}s after it starts")
    result.message = "; ".join(parts)
    return result
