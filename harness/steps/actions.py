"""Timeline steps: change the network while it runs (links, roaming, NAT rebinding,
restarts, keys, endpoints), and background probe streams that measure the effect."""

from __future__ import annotations

import time

from harness.plan.conditions import egress
from harness.plan.network import resolve_endpoint
from harness.scenario.steps.background import CaptureArgs, ProbeArgs, StopArgs, WaitUntilArgs
from harness.scenario.steps.basic import PingArgs
from harness.scenario.steps.timeline import EndpointArgs, LinkArgs, NatRebindArgs, RestartArgs, RoamArgs, RotateKeyArgs
from harness.diagnosis.path import diagnose_path
from harness.engine.base import send_datagram
from harness.steps.basic import ping
from harness.steps.probe import start_stream
from harness.steps.registry import runs
from harness.steps.result import Measurement, StepResult


def _link_index(network, name: str) -> int:
    index = network.plan.link_index(name)
    if index is None:  # validation checks names; this is a harness bug if reached
        raise LookupError(f"no link named {name!r}")
    return index


@runs("link")
def link(network, index: int, args: LinkArgs) -> StepResult:
    link_index = _link_index(network, args.name)
    veth = network.plan.veths[link_index]
    changes = []
    conditions = None
    if args.clear or not args.empty or args.towards:
        # each direction: what it has now (unless cleared), with this step's settings on top
        conditions = {}
        for sender, receiver in ((veth.a.node, veth.b.node), (veth.b.node, veth.a.node)):
            current = None if args.clear else network.engine.conditions(link_index, sender)
            conditions[sender] = egress(args, receiver, current)
            changes.append(f"towards {receiver}: {_describe(conditions[sender])}")
    if args.up is not None:
        changes.append("up" if args.up else "down")
    network.engine.set_link(link_index, up=args.up, conditions=conditions)
    network.mark_event(f"link {args.name} {'; '.join(changes)}")
    return StepResult(index, "link", f"link {args.name}: {'; '.join(changes) or 'unchanged'}", True)


def _describe(conditions) -> str:
    if conditions is None:
        return "clean"
    return " ".join(f"{k}={v}" for k, v in conditions.settings().items())


@runs("roam")
def roam(network, index: int, args: RoamArgs) -> StepResult:
    details = []
    if args.via is not None:
        target = _link_index(network, args.via)
        network.engine.attach(args.node, target)
        for port in network.plan.ports[args.node]:
            if port.link_index != target and port.link_index not in network.engine.down_links:
                network.engine.detach(args.node, port.link_index)
                details.append(f"left {network.plan.veths[port.link_index].name}")
        network.engine.reroute()
        details.append(f"now via {args.via}")
    if args.renumber:
        details.append(f"new address {network.engine.renumber(args.node, None if args.renumber is True else args.renumber)}")
    network.mark_event(f"roam {args.node}: {', '.join(details)}")
    from harness.net.dns import follow_addresses

    # DNS records naming the node follow it (dynamic DNS); after the event is marked:
    # recovery times count from the address change, not from the end of the DNS update
    details += follow_addresses(network)
    return StepResult(index, "roam", f"roam {args.node}: {', '.join(details)}", True)


@runs("nat_rebind")
def nat_rebind(network, index: int, args: NatRebindArgs) -> StepResult:
    count = network.engine.flush_nat(args.node)
    network.mark_event(f"nat_rebind {args.node}")
    return StepResult(index, "nat_rebind", f"NAT {args.node} forgot its {count} tracked flows", True)


@runs("restart")
def restart(network, index: int, args: RestartArgs) -> StepResult:
    network.wireguard.restart(args.node, new_key=args.key == "new")
    network.mark_event(f"restart {args.node}")
    return StepResult(index, "restart", f"restart {args.node}'s WireGuard interface ({args.key} key)", True)


@runs("rotate_key")
def rotate_key(network, index: int, args: RotateKeyArgs) -> StepResult:
    network.wireguard.rotate_key(args.node)
    network.mark_event(f"rotate_key {args.node}")
    return StepResult(index, "rotate_key", f"{args.node} has a new key pair; its peers were updated", True)


@runs("endpoint")
def endpoint(network, index: int, args: EndpointArgs) -> StepResult:
    target = resolve_endpoint(args.to, network.plan, args.node, ("steps", index, "endpoint", "to"))
    from harness.net.dns import resolved

    target = resolved(network, args.node, target)  # a DNS name is resolved now, inside the node, as `wg set` does
    network.wireguard.set_endpoint(args.node, args.peer, target)
    network.mark_event(f"endpoint {args.node}→{args.peer}")
    return StepResult(index, "endpoint", f"{args.node}'s endpoint for {args.peer} is now {target}", True)


@runs("probe")
def probe(network, index: int, args: ProbeArgs) -> StepResult:
    address = network.plan.target_address(args.from_, args.to, args.via, args.family)
    stream = network.node(args.from_).start(start_stream, str(address), args.interval, args.timeout)
    network.probes[args.name] = (stream, args, time.monotonic())
    return StepResult(index, "probe", f"probe {args.name}: {args.from_} → {args.to} ({address}) every {args.interval * 1000:g} ms", True)


@runs("capture")
def capture(network, index: int, args: CaptureArgs) -> StepResult:
    from harness.steps.capture import start_capture

    veth = network.plan.veths[_link_index(network, args.link)]
    port = veth.b if args.at == veth.b.node else veth.a
    network.captures[args.name] = network.node(port.node).start(start_capture, port.ifname)
    return StepResult(index, "capture", f"capture {args.name} on {args.link} at {port.node} ({port.ifname})", True)


def _stop_capture(network, index: int, args: StopArgs) -> StepResult:
    import os

    from harness.steps.capture import summarize

    cap = network.captures[args.capture]
    result = StepResult(index, "stop", f"stop capture {args.capture}", True, args.expect)
    problems = []
    if args.no_cleartext is not None:
        marker = f"wgh-cleartext-{os.urandom(8).hex()}".encode()
        before = len(cap.wireguard())
        target = network.plan.tunnel_address(args.no_cleartext.to, 4) or network.plan.tunnel_address(args.no_cleartext.to, 6)
        if target is None:  # a node without WireGuard beyond a full-tunnel peer: its own address
            target = network.plan.target_address(args.no_cleartext.from_, args.no_cleartext.to, "tunnel", 4)
        seen = cap.frame_count()
        send_datagram(network.node(args.no_cleartext.from_), str(target), marker)
        deadline = time.monotonic() + 1.0  # until the marker's packet crosses the link
        while cap.frame_count() == seen and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)  # and whatever follows it closely (a handshake, a reply)
        if cap.contains(marker):
            problems.append(f"the marker sent through the tunnel appears IN CLEAR on {args.capture}'s link")
        elif len(cap.wireguard()) <= before:
            problems.append("no WireGuard packet crossed the captured link after the marker was sent: the check proves nothing")
    del network.captures[args.capture]
    cap.close()
    summary = summarize(cap.wireguard())
    prefix = f"{args.record or args.capture}."
    for name, count in summary.counts.items():
        result.measurements[prefix + name] = Measurement(count, "packets")
    result.measurements[prefix + "largest_frame"] = Measurement(summary.largest_frame, "bytes")
    intervals = sorted(summary.keepalive_intervals.items())
    if intervals:
        result.measurements[prefix + "keepalive_interval"] = Measurement(round(intervals[0][1], 4), "s")
    if args.keepalive == 0:  # like persistent_keepalive: 0, "off": none may be on the wire
        if summary.counts["keepalive"]:
            problems.append(f"{summary.counts['keepalive']} keepalives seen, none expected")
    elif args.keepalive is not None:
        if not intervals:
            problems.append("no keepalives seen")
        for sender, interval in intervals:
            if abs(interval - args.keepalive) > 0.1 * args.keepalive:
                problems.append(f"keepalives from {sender} every {interval:.2f}s, not {args.keepalive:g}s ±10%")
    if args.max_frame is not None and summary.largest_frame > args.max_frame:
        problems.append(f"a {summary.largest_frame}-byte frame is larger than {args.max_frame}")
    if args.largest_frame is not None and summary.largest_frame != args.largest_frame:
        problems.append(f"the largest frame is {summary.largest_frame} bytes, not {args.largest_frame}")
    initiations = summary.counts["initiation"]
    if args.min_initiations is not None and initiations < args.min_initiations:
        problems.append(f"{initiations} handshake initiations, fewer than {args.min_initiations}")
    if args.max_initiations is not None and initiations > args.max_initiations:
        problems.append(f"{initiations} handshake initiations, more than {args.max_initiations}")
    result.passed = not problems
    counts = ", ".join(f"{n} {k}" for k, n in summary.counts.items() if n)
    result.message = f"{counts or 'no WireGuard packets'}" + (f": {'; '.join(problems)}" if problems else "")
    if (problems or args.keep_pcap) and network.artifacts_dir is not None:
        path = network.artifacts_dir / f"capture-{args.capture}.pcap"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(cap.pcap())
        result.artifacts.append(str(path))
        result.message += f" (pcap: {path.name})"
    return result


@runs("stop")
def stop(network, index: int, args: StopArgs) -> StepResult:
    if args.capture is not None:
        return _stop_capture(network, index, args)
    if args.iperf3 is not None:
        result = network.traffic.pop(args.iperf3).finish(network, index)
        result.kind, result.expect = "stop", args.expect
        return result
    if args.reresolve is not None:
        from harness.steps.reresolve import stop_reresolve

        return stop_reresolve(network, index, args)
    stream, probe_args, began = network.probes.pop(args.probe)
    report = stream.stop()
    prefix = f"{args.record or args.probe}."
    result = StepResult(index, "stop", f"stop probe {args.probe}", True, args.expect)
    m = result.measurements
    m[prefix + "sent"] = Measurement(report.sent, "probes")
    m[prefix + "loss"] = Measurement(round(report.loss_percent, 3), "%")
    m[prefix + "outage"] = Measurement(round(report.longest_outage, 4), "s")
    for q in (50, 90, 99):
        value = report.percentile(q)
        if value is not None:
            m[f"{prefix}rtt_p{q}"] = Measurement(round(value, 3), "ms")
    if report.rtts_ms:
        m[prefix + "rtt_max"] = Measurement(round(max(report.rtts_ms), 3), "ms")
        m[prefix + "rtt"] = Measurement(None, "ms", samples=[round(r, 3) for r in report.rtts_ms])
    # recovery: from the last event while the stream ran to the first answer after it
    events = [(at, what) for at, what in network.events if at >= began]
    if events:
        at, what = events[-1]
        # the event on this machine's monotonic clock, the stream on its node's: a node
        # on another machine reads ours through the offset measured when it connected
        offset = network.node(probe_args.from_).clock_offset
        first = stream.first_answer_since(at + offset)
        if first is not None:
            recovered = first - offset - at
            m[prefix + "recovery"] = Measurement(round(recovered, 4), "s")
            result.message = f"recovered {recovered * 1000:.0f} ms after {what}; "
        else:
            result.message = f"never recovered after {what}; "
    problems = []
    if report.loss_percent > args.max_loss + 1e-9:
        problems.append(f"loss {report.loss_percent:.1f}% > {args.max_loss:g}%")
    if args.max_outage is not None and report.longest_outage > args.max_outage:
        problems.append(f"longest outage {report.longest_outage * 1000:.0f} ms > {args.max_outage * 1000:.0f} ms")
    result.passed = not problems and report.received > 0
    if not result.passed and probe_args.via == "tunnel" and probe_args.to in network.plan.wireguard:
        address = network.plan.tunnel_address(probe_args.to, probe_args.family)
        diagnosis = diagnose_path(network, probe_args.from_, address)
        problems.append(diagnosis.summary)
        result.diagnosis = str(diagnosis)
    result.message += (
        f"{report.received}/{report.sent} answered, loss {report.loss_percent:.1f}%, longest outage {report.longest_outage * 1000:.0f} ms"
        + (f", rtt p50 {report.percentile(50):.2f} ms" if report.rtts_ms else "")
        + (f": {'; '.join(problems)}" if problems else "")
    )
    return result


@runs("wait_until")
def wait_until(network, index: int, args: WaitUntilArgs) -> StepResult:
    started_wall = time.time()
    started = time.monotonic()
    deadline = started + args.within
    # a handshake counts if it is newer than the start of the step that made the last
    # timeline event (the rekey, restart, roam this step waits for: the handshake may
    # complete while that step still runs), else than this step
    since_wall = started_wall - (started - network.event_step_started[-1]) if network.events else started_wall
    handshake_after = None
    attempts = 0
    last = None
    while True:
        attempts += 1
        if args.handshake is not None:
            a, b = args.handshake
            pa, pb = network.wireguard.peer_status(a, b), network.wireguard.peer_status(b, a)
            ok = bool(pa and pb and pa.latest_handshake >= since_wall and pb.latest_handshake >= since_wall)
            if ok:
                handshake_after = max(pa.latest_handshake, pb.latest_handshake) - since_wall
        else:
            probe_args = args.ping or PingArgs.model_validate({"from": "x", "to": "x"})
            last = ping(network, index, probe_args, diagnose=False)  # diagnosed once, at the deadline
            ok = last.passed
        if ok or time.monotonic() >= deadline:
            break
        time.sleep(0.05 if args.handshake else 0.0)
    elapsed = time.monotonic() - started
    what = f"handshake {args.handshake[0]} ↔ {args.handshake[1]}" if args.handshake else (last.title if last else "check")
    result = StepResult(index, "wait_until", f"wait until {what} (within {args.within:g}s)", ok, args.expect)
    if ok and handshake_after is not None:
        what_since = network.events[-1][1] if network.events else "this step"
        result.message = f"handshake {handshake_after * 1000:.0f} ms after the start of {what_since}"
        result.measurements[f"{args.record or 'wait_until'}.time"] = Measurement(round(handshake_after, 4), "s")
    elif ok:
        result.message = f"after {elapsed * 1000:.0f} ms ({attempts} attempt{'s' if attempts != 1 else ''})"
        result.measurements[f"{args.record or 'wait_until'}.time"] = Measurement(round(elapsed, 4), "s")
    else:
        if args.ping is not None:
            last = ping(network, index, args.ping)
        result.message = f"not within {args.within:g}s ({attempts} attempts)" + (f": {last.message}" if last else "")
        result.diagnosis = last.diagnosis if last else None
    return result
