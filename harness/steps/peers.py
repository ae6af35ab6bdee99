"""Steps about what one side believes of a peer: revoking it (remove_peer), going back
to a revoked key (reuse_old_key), and the one-sided health signal many monitors use
(handshake_age) — which stays green for a while after the other side stopped
accepting anything, so it is never enough on its own: pair it with a data-plane check."""

from __future__ import annotations

import time

from harness.scenario.steps.peers import HandshakeAgeArgs, RemovePeerArgs, ReuseOldKeyArgs
from harness.diagnosis.tunnel import describe_peer
from harness.steps.registry import runs
from harness.steps.result import Measurement, StepResult


@runs("remove_peer")
def remove_peer(network, index: int, args: RemovePeerArgs) -> StepResult:
    network.wireguard.remove_peer(args.node, args.peer)
    network.mark_event(f"remove_peer {args.node}: {args.peer}")
    return StepResult(index, "remove_peer", f"{args.node} removed its peer {args.peer}; {args.peer} was not told", True)


@runs("reuse_old_key")
def reuse_old_key(network, index: int, args: ReuseOldKeyArgs) -> StepResult:
    network.wireguard.reuse_old_key(args.node)
    network.mark_event(f"reuse_old_key {args.node}")
    return StepResult(index, "reuse_old_key", f"{args.node} is back on its previous (revoked) key; its peers were not told", True)


@runs("handshake_age")
def handshake_age(network, index: int, args: HandshakeAgeArgs) -> StepResult:
    now = time.time()
    title = f"{args.node}'s latest handshake with {args.peer} at most {args.max:g}s old"
    result = StepResult(index, "handshake_age", title, False, args.expect)
    status = network.wireguard.devices[args.node].status()
    peer = status.peer(network.wireguard.public_key(args.peer))
    view = describe_peer(args.node, args.peer, peer, now)
    age = peer.handshake_age(now) if peer is not None else None
    if peer is not None:
        # the counters are what an honest monitor pairs with the age: rx stops when data stops
        result.measurements["rx_bytes"] = Measurement(peer.rx_bytes, "B")
        result.measurements["tx_bytes"] = Measurement(peer.tx_bytes, "B")
    if age is not None:
        result.measurements["handshake_age"] = Measurement(round(age, 3), "s")
    result.passed = age is not None and age <= args.max
    if age is None:
        result.message = f"no handshake at all: {view}"
    elif result.passed:
        result.message = f"{age:.1f}s ago (rx {peer.rx_bytes} B, tx {peer.tx_bytes} B): this side alone says nothing about the other"
    else:
        result.message = f"{age:.1f}s ago, older than {args.max:g}s: {view}"
    if not result.passed:
        result.diagnosis = view
    return result
