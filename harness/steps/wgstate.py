"""Checks on what a WireGuard device reports about a peer, as WireGuard's own selftest
(netns.sh) makes them with `wg show`: byte counters (`transfer`) and the endpoint it
has now (`learned_endpoint`); and the `listen_port` timeline step.

Counters are exact: WireGuard counts the UDP payload of every message to or from a
peer (handshake initiation 148 B, response 92 B, data 32 B + the inner packet padded to
16 bytes), so ten default pings make a known number of bytes.

A counter can lag the packet it counts: wireguard-go adds a sent packet's bytes only
after the send call returns, by which time the peer may have answered it. A reading
that misses its expectation is therefore taken again once the counters stop moving.
"""

from __future__ import annotations

import time

from harness.scenario.steps.wgstate import ByteBounds, LearnedEndpointArgs, ListenPortArgs, TransferArgs
from harness.endpoint import Endpoint
from harness.diagnosis.tunnel import describe_peer
from harness.steps.registry import runs
from harness.steps.result import Measurement, StepResult


def allows(expected, value: int) -> bool:
    """Does a counter value meet `rx:`/`tx:` (an exact number, a list of them, or {min, max})?"""
    if isinstance(expected, ByteBounds):
        return (expected.min is None or value >= expected.min) and (expected.max is None or value <= expected.max)
    if isinstance(expected, list):
        return value in expected
    return value == expected


def describe(expected) -> str:
    if isinstance(expected, ByteBounds):
        parts = ([f"≥ {expected.min}"] if expected.min is not None else []) + ([f"≤ {expected.max}"] if expected.max is not None else [])
        return " and ".join(parts)
    if isinstance(expected, list):
        return " or ".join(map(str, expected))
    return str(expected)


@runs("transfer")
def transfer(network, index: int, args: TransferArgs) -> StepResult:
    wanted = ", ".join(f"{name} {describe(getattr(args, name))}" for name in ("rx", "tx") if getattr(args, name) is not None)
    title = f"transfer {args.node} ↔ {args.peer}: {wanted} bytes"
    result = StepResult(index, "transfer", title, False, args.expect)
    status = network.wireguard.peer_status(args.node, args.peer)
    if status is None:
        result.message = f"{args.node} has no peer with {args.peer}'s public key"
        return result
    if _problems(args, status):
        status = settled_status(network, args.node, args.peer, status)
    prefix = f"{args.record}." if args.record else ""
    result.measurements[f"{prefix}rx_bytes"] = Measurement(status.rx_bytes, "bytes")
    result.measurements[f"{prefix}tx_bytes"] = Measurement(status.tx_bytes, "bytes")
    problems = _problems(args, status)
    result.passed = not problems
    result.message = f"rx {status.rx_bytes} B, tx {status.tx_bytes} B" + (f": {'; '.join(problems)}" if problems else "")
    if problems:
        result.diagnosis = describe_peer(args.node, args.peer, status, time.time())
    return result


def _problems(args: TransferArgs, status) -> list[str]:
    return [
        f"{name} {value} B, expected {describe(expected)}"
        for name, value, expected in (("rx", status.rx_bytes, args.rx), ("tx", status.tx_bytes, args.tx))
        if expected is not None and not allows(expected, value)
    ]


SETTLE_QUIET = 0.1  # counters unchanged this long are taken as settled
SETTLE_LIMIT = 1.0  # traffic that never stops: give up and take the latest reading


def settled_status(network, node: str, peer: str, status, clock=time.monotonic, sleep=time.sleep):
    """Read a peer's counters until they have not moved for SETTLE_QUIET seconds."""
    deadline = clock() + SETTLE_LIMIT
    quiet_since = clock()
    while clock() < deadline:
        sleep(SETTLE_QUIET / 4)
        latest = network.wireguard.peer_status(node, peer)
        if latest is None:
            return status
        if (latest.rx_bytes, latest.tx_bytes) != (status.rx_bytes, status.tx_bytes):
            quiet_since = clock()
        elif clock() - quiet_since >= SETTLE_QUIET:
            return latest
        status = latest
    return status


@runs("learned_endpoint")
def learned_endpoint(network, index: int, args: LearnedEndpointArgs) -> StepResult:
    expected = Endpoint.parse(args.is_)
    title = f"{args.node}'s endpoint for {args.peer} is {args.is_}"
    result = StepResult(index, "learned_endpoint", title, False, args.expect)
    status = network.wireguard.peer_status(args.node, args.peer)
    if status is None:
        result.message = f"{args.node} has no peer with {args.peer}'s public key"
        return result
    actual = None
    if status.endpoint:
        try:
            actual = Endpoint.parse(status.endpoint)
        except ValueError:
            pass
    result.passed = actual == expected
    result.message = f"{args.node} has {args.peer} at {status.endpoint or '(no endpoint)'}"
    if not result.passed:
        result.message += f", not {args.is_}"
        result.diagnosis = describe_peer(args.node, args.peer, status, time.time())
    return result


@runs("listen_port")
def listen_port(network, index: int, args: ListenPortArgs) -> StepResult:
    old = network.wireguard.listen_port(args.node)
    network.wireguard.set_listen_port(args.node, args.port)
    reported = network.wireguard.devices[args.node].status().listen_port
    network.mark_event(f"listen_port {args.node} {args.port}")
    result = StepResult(index, "listen_port", f"{args.node} listens on port {args.port} (was {old})", reported == args.port)
    result.message = f"the device reports port {reported}" if reported != args.port else ""
    return result
