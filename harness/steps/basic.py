"""The basic checks: a handshake between two nodes, a ping, a pause."""

from __future__ import annotations

import time

from harness.diagnosis import mtu
from harness.diagnosis.cryptokey import watch_delivery
from harness.diagnosis.path import diagnose_path
from harness.diagnosis.tunnel import diagnose_tunnel, diagnose_underlay
from harness.engine.base import send_datagram
from harness.net import echo
from harness.scenario.steps.basic import HandshakeArgs, PingArgs
from harness.steps.registry import runs
from harness.steps.result import Measurement, StepResult

POLL = 0.01  # seconds between status reads while waiting for a handshake


@runs("sleep")
def sleep(network, index: int, seconds: float) -> StepResult:
    time.sleep(seconds)
    return StepResult(index, "sleep", f"sleep {seconds:g}s", True)


@runs("handshake")
def handshake(network, index: int, args: HandshakeArgs) -> StepResult:
    a, b = args.between
    plan = network.plan
    title = f"handshake {a} ↔ {b} within {args.within:g}s"
    # the side that knows an endpoint initiates; data towards the peer triggers it
    initiator, responder = (a, b) if plan.wireguard[a].peer(b) and plan.wireguard[a].peer(b).endpoint else (b, a)
    def done() -> bool:
        peer_ab, peer_ba = network.wireguard.peer_status(a, b), network.wireguard.peer_status(b, a)
        return bool(peer_ab and peer_ab.latest_handshake and peer_ba and peer_ba.latest_handshake)

    started = time.monotonic()
    target = plan.tunnel_address(responder, 4) or plan.tunnel_address(responder, 6)
    deadline = started + args.within
    passed = False
    next_probe = started
    while True:
        if done():
            passed = True
            break
        now = time.monotonic()
        if now >= deadline:
            break
        if now >= next_probe and target is not None:
            send_datagram(network.node(initiator), str(target))
            next_probe = now + 1.0
        time.sleep(POLL)
    elapsed = time.monotonic() - started
    result = StepResult(index, "handshake", title, passed, args.expect)
    if passed:
        result.message = f"handshake after {elapsed * 1000:.0f} ms"
        result.measurements["time_to_handshake"] = Measurement(round(elapsed, 4), "s")
    else:
        diagnosis = diagnose_tunnel(network, initiator, responder, str(target) if target else None, since=time.time())
        result.message = f"no handshake within {args.within:g}s: {diagnosis.summary}"
        result.diagnosis = str(diagnosis)
    return result


@runs("ping")
def ping(network, index: int, args: PingArgs, diagnose: bool = True) -> StepResult:
    """ICMP echo from inside a node (harness/net/echo.py); `diagnose=False` for callers that retry (wait_until)."""
    plan = network.plan
    address = plan.target_address(args.from_, args.to, args.via, args.family)
    family = address.version
    title = f"ping {args.from_} → {args.to} ({address}, {args.via}, IPv{family}, {args.count}×)"
    watch = None
    if args.source:  # send from this address: the receiver's counters tell what became of it
        title = title.replace(f", {args.via},", f" from {args.source}, {args.via},")
        watch = watch_delivery(network, args.from_, address, args.source) if args.via == "tunnel" else None
    outcome = network.node(args.from_).apply(
        echo.ping, str(address), count=args.count, interval=args.interval, timeout=args.timeout,
        size=args.size, source=args.source,
    )
    if watch is not None:
        watch.finish()
    passed = outcome.sent > 0 and outcome.received > 0 and outcome.loss_percent <= args.max_loss + 1e-9
    result = StepResult(index, "ping", title, passed, args.expect)
    prefix = f"{args.record}." if args.record else ""
    result.measurements[f"{prefix}loss"] = Measurement(round(outcome.loss_percent, 3), "%")
    if outcome.rtt_avg is not None:
        for name in ("min", "avg", "max", "mdev"):
            result.measurements[f"{prefix}rtt_{name}"] = Measurement(getattr(outcome, f"rtt_{name}"), "ms")
    if len(outcome.rtts) > 1:  # every reply's RTT: the distribution behind min/avg/max
        result.measurements[f"{prefix}rtt"] = Measurement(None, "ms", samples=list(outcome.rtts))
    if outcome.error:
        result.message = f"ping failed: {outcome.error}"
    else:
        result.message = f"{outcome.received}/{outcome.sent} replies, loss {outcome.loss_percent:.1f}% (max {args.max_loss:g}%)"
        if outcome.rtt_avg is not None:
            result.message += f", rtt avg {outcome.rtt_avg:.3f} ms"
    if not passed and diagnose:
        if args.via == "tunnel":
            diagnosis = diagnose_path(network, args.from_, address, source=args.source, since=outcome.last_sent_at)
            if watch is not None:
                watch.explain(diagnosis)
            # a large ping lost whole while small ones pass: measure the path MTU
            diagnosis = mtu.refine(network, args.from_, address, args.size, outcome.received, diagnosis)
            if outcome.received and diagnosis.code == "handshake-no-data":
                # some replies came back: data does arrive, so that is not the cause, and
                # nothing the scenario configured explains the rest (a reply later than
                # the timeout, or a drop on a starved machine): no cause named, so an
                # overloaded machine may explain it (harness.steps.checks retries it)
                diagnosis.code, diagnosis.cause = "", (
                    f"{outcome.received} of {outcome.sent} replies came back, so the tunnel carries data; nothing "
                    f"configured explains losing the rest (a reply later than {args.timeout:g}s, or a drop on a busy machine)"
                )
        else:
            diagnosis = diagnose_underlay(network, args.from_, str(address))
        result.message += f": {diagnosis.summary}"
        result.diagnosis = str(diagnosis)
    return result
