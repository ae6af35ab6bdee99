"""The steps of format v1: handshake, ping, sleep."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Callable

from harness.net import nsexec
from harness.scenario.model import HandshakeArgs, PingArgs, step_args, step_kind
from harness.steps import mtu
from harness.steps.diagnose import Diagnosis, diagnose_tunnel, diagnose_underlay
from harness.steps.ping import parse_ping, ping_argv
from harness.steps.result import Measurement, StepResult

POLL = 0.01  # seconds between status reads while waiting for a handshake


def run_step(network, index: int, step) -> StepResult:
    kind = step_kind(step)
    args = step_args(step)
    started = time.monotonic()
    network.step_started = started
    result = _runners()[kind](network, index, args)
    result.seconds = time.monotonic() - started
    result.expect_cause(getattr(args, "cause", None))
    if result.outcome == "wrong-cause":
        result.message += f" (expected the failure to be about: {result.cause!r})"
    return result


def _sleep(network, index: int, seconds: float) -> StepResult:
    time.sleep(seconds)
    return StepResult(index, "sleep", f"sleep {seconds:g}s", True)


def _send_probe(namespace: str, address: str, payload: bytes = b"wgharness handshake probe") -> None:
    """One UDP datagram into the tunnel (discard port): enough to start a handshake."""

    def send() -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(payload, (address, 9))
            except OSError:
                pass  # no route / no peer: the diagnosis will say so

    nsexec.call_in(namespace, send)


def _handshake(network, index: int, args: HandshakeArgs) -> StepResult:
    a, b = args.between
    plan = network.plan
    title = f"handshake {a} ↔ {b} within {args.within:g}s"
    # the side that knows an endpoint initiates; data towards the peer triggers it
    initiator, responder = (a, b) if plan.wireguard[a].peer(b) and plan.wireguard[a].peer(b).endpoint else (b, a)
    key_a, key_b = network.public_key(a), network.public_key(b)

    def done() -> bool:
        peer_ab = network.devices[a].status().peer(key_b)
        peer_ba = network.devices[b].status().peer(key_a)
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
            _send_probe(network.namespace(initiator), str(target))
            next_probe = now + 1.0
        time.sleep(POLL)
    elapsed = time.monotonic() - started
    result = StepResult(index, "handshake", title, passed, args.expect)
    if passed:
        result.message = f"handshake after {elapsed * 1000:.0f} ms"
        result.measurements["time_to_handshake"] = Measurement(round(elapsed, 4), "s")
    else:
        diagnosis = diagnose_tunnel(network, initiator, responder, str(target) if target else None)
        result.message = f"no handshake within {args.within:g}s: {diagnosis.summary}"
        result.diagnosis = str(diagnosis)
    return result


def _ping(network, index: int, args: PingArgs, diagnose: bool = True) -> StepResult:
    """iputils ping from inside a node; `diagnose=False` for callers that retry (wait_until)."""
    plan = network.plan
    address = plan.target_address(args.from_, args.to, args.via, args.family)
    family = address.version
    title = f"ping {args.from_} → {args.to} ({address}, {args.via}, IPv{family}, {args.count}×)"
    argv = ping_argv(str(address), family=family, count=args.count, interval=args.interval, timeout=args.timeout, size=args.size)
    watch = None
    if args.source:  # send from this address: the receiver's counters tell what became of it
        from harness.steps.cryptokey import watch_delivery

        title = title.replace(f", {args.via},", f" from {args.source}, {args.via},")
        argv = argv[:-1] + ["-I", args.source] + argv[-1:]
        watch = watch_delivery(network, args.from_, address, args.source) if args.via == "tunnel" else None
    try:
        completed = network.run(args.from_, argv, timeout=args.count * args.interval + args.timeout + 10)
        output = completed.stdout + completed.stderr
    except subprocess.TimeoutExpired as exc:  # a starved machine (emulated VM): a failed attempt, not an error
        output = f"ping did not finish within {exc.timeout:g}s"
    if watch is not None:
        watch.finish()
    outcome = parse_ping(output)
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
            diagnosis = _diagnose_path(network, args.from_, address, source=args.source)
            if watch is not None:
                watch.explain(diagnosis)
            # a large ping lost whole while small ones pass: measure the path MTU
            diagnosis = mtu.refine(network, args.from_, address, args.size, outcome.received, diagnosis)
        else:
            diagnosis = diagnose_underlay(network, args.from_, str(address))
        result.message += f": {diagnosis.summary}"
        result.diagnosis = str(diagnosis)
    return result


def _runners() -> dict[str, Callable]:
    from harness.steps import actions, mesh, peers, throughput
    from harness.steps import reresolve, wgstate

    return {
        "handshake": _handshake,
        "ping": _ping,
        "sleep": _sleep,
        "iperf3": throughput.iperf3,
        "link": actions.link,
        "roam": actions.roam,
        "nat_rebind": actions.nat_rebind,
        "restart": actions.restart,
        "rotate_key": actions.rotate_key,
        "endpoint": actions.endpoint,
        "probe": actions.probe,
        "capture": actions.capture,
        "stop": actions.stop,
        "wait_until": actions.wait_until,
        "remove_peer": peers.remove_peer,
        "reuse_old_key": peers.reuse_old_key,
        "handshake_age": peers.handshake_age,
        "reach": mesh.reach,
        "transfer": wgstate.transfer,
        "learned_endpoint": wgstate.learned_endpoint,
        "listen_port": wgstate.listen_port,
        "reresolve": reresolve.reresolve,
    }


def _diagnose_path(network, src: str, address, source: str | None = None) -> Diagnosis:
    """Diagnose the first tunnel hop (the peer whose AllowedIPs carry `address`); when
    that hop looks healthy and forwards further (a hub), diagnose the next hop too."""
    plan = network.plan
    hop = plan.wireguard[src].peer_for(address)
    if hop is None:
        diagnosis = Diagnosis()
        diagnosis.set("allowed-ips-sender", f"no peer's AllowedIPs on {src} cover {address}: the packet has no peer to go to and is dropped")
        return diagnosis
    diagnosis = diagnose_tunnel(network, src, hop.node, str(address), source_address=source)
    next_hop = plan.wireguard[hop.node].peer_for(address)
    if next_hop is not None and next_hop.node != src and diagnosis.code == "handshake-no-data":
        second = diagnose_tunnel(network, hop.node, next_hop.node, str(address))
        diagnosis.lines += [f"next hop {hop.node} → {next_hop.node}:"] + ["  " + line for line in second.lines]
        diagnosis.set(second.code, f"{second.cause} (on the hop {hop.node} → {next_hop.node})")
    return diagnosis


def check(network, step: dict, index: int = 0) -> StepResult:
    """Run one step given as a dict, e.g. {"ping": {"from": "a", "to": "b"}}, on a built
    network: the building block for scenarios written as Python tests."""
    from pydantic import TypeAdapter

    from harness.scenario.model import Step

    return run_step(network, index, TypeAdapter(Step).validate_python(step))
