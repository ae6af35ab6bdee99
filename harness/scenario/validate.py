"""Checks across fields: every name must refer to something that exists, and the
plan must be buildable. Runs before anything is created (pure)."""

from __future__ import annotations

import difflib
import ipaddress
import re

from harness.diagnosis.causes import CAUSES
from harness.endpoint import Endpoint
from harness.errors import Problem
from harness.plan.network import PlanError, PlanErrors, build_plan, resolve_endpoint
from harness.scenario.model import (
    CaptureArgs,
    EndpointArgs,
    HandshakeAgeArgs,
    HandshakeArgs,
    Iperf3Args,
    LinkArgs,
    NatRebindArgs,
    PingArgs,
    ProbeArgs,
    ReachArgs,
    RemovePeerArgs,
    RestartArgs,
    ReuseOldKeyArgs,
    RoamArgs,
    RotateKeyArgs,
    ScenarioSpec,
    StopArgs,
    WaitUntilArgs,
    step_args,
)
from harness.scenario.model import LearnedEndpointArgs, ListenPortArgs, TransferArgs
from harness.scenario import reach as reach_step
from harness.scenario import dns_checks, routing_checks
from harness.scenario.yamlsource import SourceDoc


def check_references(spec: ScenarioSpec, doc: SourceDoc) -> list[Problem]:
    problems: list[Problem] = []

    def problem(path: tuple, message: str) -> None:
        problems.append(doc.problem(path, message))

    nodes = spec.nodes
    neighbours: dict[str, set[str]] = {name: set() for name in nodes}
    for i, link in enumerate(spec.links):
        for j, end in enumerate(link.ends):
            if end not in nodes:
                problem(("links", i, "ends", j), f"unknown node '{end}'{_known(nodes, end)}")
        if link.ends[0] == link.ends[1]:
            problem(("links", i, "ends"), "a link joins two different nodes")
        elif all(end in nodes for end in link.ends):
            neighbours[link.ends[0]].add(link.ends[1])
            neighbours[link.ends[1]].add(link.ends[0])
        if link.addresses is not None:
            a, b = link.addresses
            if a.version != b.version:
                problem(("links", i, "addresses"), "both ends need addresses of the same IP version")
            elif a.network != b.network:
                problem(("links", i, "addresses"), f"{a} and {b} are not in one subnet")
            elif a.ip == b.ip:
                problem(("links", i, "addresses"), "both ends have the same address")

    names: dict[str, int] = {}  # link name → index, for the checks and for steps
    for i, link in enumerate(spec.links):
        label = link.name or f"{link.ends[0]}-{link.ends[1]}"
        if label in names:
            problem(("links", i, "name" if link.name else "ends"), f"two links are called '{label}' (links[{names[label]}] too): give one a `name:`")
        names.setdefault(label, i)
        for towards in link.towards:
            if towards not in link.ends:
                problem(("links", i, "towards", towards), f"'{towards}' is not an end of this link ({link.ends[0]}, {link.ends[1]})")
        for conditions, path in [(link, ("links", i))] + [(c, ("links", i, "towards", t)) for t, c in link.towards.items()]:
            problems.extend(doc.problem(path + (field,), message) for field, message in impairment_problems(conditions))

    for name, node in nodes.items():
        for j, rule in enumerate(node.firewall):
            path = ("nodes", name, "firewall", j)
            if (rule.drop is None) == (rule.allow is None):
                problem(path, "a rule is either `drop: udp|tcp|icmp|fragments|all` or `allow: established`")
            if rule.port is not None and rule.drop not in ("udp", "tcp"):
                problem(path + ("port",), "`port` goes with `drop: udp` or `drop: tcp`")
            if rule.from_ is not None and rule.from_ not in neighbours[name]:
                problem(path + ("from",), f"'{rule.from_}' is not a neighbour of '{name}'{_known(neighbours[name], rule.from_, 'neighbours')}")
        if node.nat is not None:
            if node.nat.outside not in neighbours[name]:
                problem(("nodes", name, "nat", "outside"), f"'{node.nat.outside}' is not a neighbour of '{name}'{_known(neighbours[name], node.nat.outside, 'neighbours')}")
            elif len(neighbours[name]) < 2:
                problem(("nodes", name, "nat"), "a NAT router needs an inside link besides its outside one")

    running: dict[str, int] = {}  # probe streams started and not yet stopped, by step
    wg = spec.wireguard
    for name, iface in wg.items():
        if name not in nodes:
            problem(("wireguard", name), f"unknown node '{name}'{_known(nodes, name)}")
        for peer in iface.peers:
            if peer == name:
                problem(("wireguard", name, "peers", peer), "a node cannot peer with itself")
            elif peer not in nodes:
                problem(("wireguard", name, "peers", peer), f"unknown node '{peer}'{_known(wg, peer, 'WireGuard nodes')}")
            elif peer not in wg:
                problem(("wireguard", name, "peers", peer), f"'{peer}' has no wireguard section{_known(wg, peer, 'WireGuard nodes')}")
    _check_sockets(spec, problem)
    routing_checks.check_names(spec, neighbours, problem)

    rekeyed: set[str] = set()  # nodes whose key an earlier step replaced (they have an old key)
    throughput_records: set[str] = set()  # records of earlier foreground iperf3 steps (for ratio_to)
    for i, step in enumerate(spec.steps):
        args = step_args(step)
        kind = next(iter(type(step).model_fields))
        if isinstance(args, RotateKeyArgs) or (isinstance(args, RestartArgs) and args.key == "new"):
            rekeyed.add(args.node)
        cause = getattr(args, "cause", None)
        if cause and args.expect != "fail":
            problem(("steps", i, kind, "cause"), "`cause` names why a check is expected to fail: it needs `expect: fail`")
        elif cause and _CAUSE_CODE.match(cause) and cause not in CAUSES:
            problem(("steps", i, kind, "cause"), f"unknown cause '{cause}'{_known(CAUSES, cause, 'causes')}")
        if isinstance(args, HandshakeArgs):
            a, b = args.between
            for j, end in enumerate(args.between):
                if end not in wg:
                    problem(("steps", i, kind, "between", j), f"'{end}' has no wireguard section{_known(wg, end, 'WireGuard nodes')}")
            if a in wg and b in wg and b not in wg[a].peers and a not in wg[b].peers:
                problem(("steps", i, kind, "between"), f"'{a}' and '{b}' are not peers")
        elif isinstance(args, (CaptureArgs, LinkArgs, RoamArgs, NatRebindArgs, RestartArgs, RotateKeyArgs, EndpointArgs, ProbeArgs, StopArgs, WaitUntilArgs)):
            _check_timeline_step(spec, args, ("steps", i, kind), names, neighbours, running, problem)
        elif isinstance(args, (RemovePeerArgs, ReuseOldKeyArgs, HandshakeAgeArgs)):
            _check_peer_step(spec, args, ("steps", i, kind), rekeyed, problem)
        elif isinstance(args, ReachArgs):
            reach_step.check_names(spec, args, ("steps", i, kind), problem)
        elif isinstance(args, (TransferArgs, LearnedEndpointArgs, ListenPortArgs)):
            _check_wg_state_step(spec, args, ("steps", i, kind), problem)
        elif isinstance(args, Iperf3Args):
            if args.background is not None:
                if ("iperf3", args.background) in running:
                    problem(("steps", i, kind, "background"), f"iperf3 '{args.background}' is already running")
                running[("iperf3", args.background)] = i
            for field, node in (("from", args.from_), ("to", args.to)):
                if node not in nodes:
                    problem(("steps", i, kind, field), f"unknown node '{node}'{_known(nodes, node)}")
                elif args.via == "tunnel" and node not in wg:
                    problem(("steps", i, kind, field), f"'{node}' has no WireGuard interface (use via: underlay)")
            if args.from_ == args.to:
                problem(("steps", i, kind, "to"), "iperf3 needs two different nodes")
            if args.max_loss is not None and args.protocol != "udp":
                problem(("steps", i, kind, "max_loss"), "`max_loss` is measured with protocol: udp")
            if args.ratio_to is not None and args.ratio_to not in throughput_records:
                known = ", ".join(sorted(throughput_records)) or "none yet"
                problem(("steps", i, kind, "ratio_to"), f"no earlier foreground iperf3 step records '{args.ratio_to}' (recorded: {known})")
            if args.min_ratio is not None and args.ratio_to is None:
                problem(("steps", i, kind, "min_ratio"), "`min_ratio` needs `ratio_to: <an earlier iperf3's record>`")
            if args.record is not None and args.background is None:
                throughput_records.add(args.record)
        elif isinstance(args, PingArgs):
            if args.from_ not in nodes:
                problem(("steps", i, kind, "from"), f"unknown node '{args.from_}'{_known(nodes, args.from_)}")
            elif args.via == "tunnel" and args.from_ not in wg:
                problem(("steps", i, kind, "from"), f"'{args.from_}' has no WireGuard interface to ping through (use via: underlay)")
            if args.to not in nodes and not _is_address(args.to):
                problem(("steps", i, kind, "to"), f"'{args.to}' is neither a node nor an IP address{_known(nodes, args.to)}")
            elif args.to in nodes and args.to == args.from_:
                problem(("steps", i, kind, "to"), "a node pinging itself proves nothing")

    for name, step_index in running.items():
        if isinstance(name, tuple) and name[0] == "capture":
            problem(("steps", step_index, "capture", "name"), f"capture '{name[1]}' is never stopped: add `- stop: {{capture: {name[1]}}}`")
        elif isinstance(name, tuple):
            problem(("steps", step_index, "iperf3", "background"), f"background iperf3 '{name[1]}' is never collected: add `- stop: {{iperf3: {name[1]}}}`")
        else:
            problem(("steps", step_index, "probe", "name"), f"probe '{name}' is never stopped: add `- stop: {{probe: {name}}}` to get its measurements")
    dns_checks.check_spec(spec, problem)
    if problems:
        return problems
    try:
        plan = build_plan(spec, "check0")
    except PlanErrors as exc:
        return [doc.problem(error.path, str(error)) for error in exc.errors]
    except PlanError as exc:
        return [doc.problem(exc.path, str(exc))]
    routing_checks.check_plan(spec, plan, problem)
    dns_checks.check_plan(spec, plan, problem)
    for i, step in enumerate(spec.steps):
        args = step_args(step)
        if isinstance(args, ReachArgs):
            reach_step.check_plan(plan, args, ("steps", i, "reach"), problem)
        if isinstance(args, EndpointArgs):
            try:
                resolve_endpoint(args.to, plan, args.node, ("steps", i, "endpoint", "to"))
            except PlanError as exc:
                problem(exc.path, str(exc))
        if isinstance(args, PingArgs) and args.to in nodes:
            # a node without WireGuard is reached through the tunnel by its underlay address (full tunnel)
            target = plan.target_address(args.from_, args.to, "tunnel", args.family)
            if args.via == "tunnel" and target is None:
                what = "tunnel address" if args.to in wg else "address"
                problem(("steps", i, "ping", "family"), f"'{args.to}' has no IPv{args.family} {what}")
            elif args.via == "tunnel" and args.expect == "pass" and plan.wireguard[args.from_].peer_for(target) is None:
                problem(
                    ("steps", i, "ping", "to"),
                    f"no peer of '{args.from_}' has {target} ('{args.to}') in its allowed_ips, so this ping cannot pass "
                    f"(peer them, add '{args.to}' to a peer's allowed_ips, or add `expect: fail`)",
                )
            if args.via == "underlay" and plan.underlay_address(args.from_, args.to, args.family, reachable=args.expect == "pass") is None:
                reach = " that '" + args.from_ + "' can reach (add `expect: fail` if that is the point)" if args.expect == "pass" else ""
                problem(("steps", i, "ping", "to"), f"'{args.to}' has no IPv{args.family} underlay address{reach}")
    return problems


_CAUSE_CODE = re.compile(r"^[a-z]+(-[a-z]+)+$")


def _check_timeline_step(spec, args, path, link_names, neighbours, running, problem) -> None:
    nodes, wg = spec.nodes, spec.wireguard

    def need_node(field: str, node: str, wireguard: bool = False) -> bool:
        if node not in nodes:
            problem(path + (field,), f"unknown node '{node}'{_known(nodes, node)}")
            return False
        if wireguard and node not in wg:
            problem(path + (field,), f"'{node}' has no wireguard section{_known(wg, node, 'WireGuard nodes')}")
            return False
        return True

    def need_link(field: str, name: str) -> int | None:
        if name not in link_names:
            problem(path + (field,), f"unknown link '{name}'{_known(link_names, name, 'links')}")
            return None
        return link_names[name]

    if isinstance(args, LinkArgs):
        need_link("name", args.name)
        for field, message in impairment_problems(args):
            problem(path + (field,), message)
        if args.up is None and args.empty and not args.towards and not args.clear:
            problem(path, "this step changes nothing: give `up:`, conditions (delay, loss, ...), `towards:` or `clear: true`")
    elif isinstance(args, RoamArgs):
        if need_node("node", args.node):
            if args.via is not None:
                index = need_link("via", args.via)
                if index is not None and args.node not in spec.links[index].ends:
                    problem(path + ("via",), f"'{args.via}' is not one of {args.node}'s links")
            if args.via is None and not args.renumber:
                problem(path, "say how the node roams: `via: <another link>` and/or `renumber: true`")
            if args.renumber is not True and args.renumber is not False and args.renumber.version != 4:
                problem(path + ("renumber",), "renumbering gives a new IPv4 address: write one such as 198.18.1.200/24")
    elif isinstance(args, NatRebindArgs):
        if need_node("node", args.node) and nodes[args.node].nat is None:
            problem(path + ("node",), f"'{args.node}' is not a NAT router")
    elif isinstance(args, (RestartArgs, RotateKeyArgs)):
        need_node("node", args.node, wireguard=True)
    elif isinstance(args, EndpointArgs):
        if need_node("node", args.node, wireguard=True) and need_node("peer", args.peer, wireguard=True):
            if args.peer not in wg[args.node].peers and args.node not in wg[args.peer].peers:
                problem(path + ("peer",), f"'{args.node}' and '{args.peer}' are not peers")
    elif isinstance(args, ProbeArgs):
        need_node("from", args.from_, wireguard=args.via == "tunnel")
        if args.to not in nodes and not _is_address(args.to):
            problem(path + ("to",), f"'{args.to}' is neither a node nor an IP address{_known(nodes, args.to)}")
        if args.name in running:
            problem(path + ("name",), f"probe '{args.name}' is already running (started in steps[{running[args.name]}])")
        running[args.name] = path[1]
    elif isinstance(args, CaptureArgs):
        index = need_link("link", args.link)
        if index is not None and args.at is not None and args.at not in spec.links[index].ends:
            problem(path + ("at",), f"'{args.at}' is not an end of link '{args.link}'")
        if ("capture", args.name) in running:
            problem(path + ("name",), f"capture '{args.name}' is already running")
        running[("capture", args.name)] = path[1]
    elif isinstance(args, StopArgs):
        chosen = [x for x in (args.probe, args.iperf3, args.capture, args.reresolve) if x is not None]
        capture_only = ("keepalive", "max_frame", "largest_frame", "min_initiations", "max_initiations", "no_cleartext", "keep_pcap")
        if len(chosen) != 1:
            problem(path, "stop exactly one thing: `probe: <name>`, `capture: <name>`, `iperf3: <name>` or `reresolve: <node>`")
        elif args.capture is not None:
            if ("capture", args.capture) not in running:
                problem(path + ("capture",), f"no running capture '{args.capture}': start it with `- capture: {{name: {args.capture}, link: ...}}` first")
            running.pop(("capture", args.capture), None)
            if args.no_cleartext is not None:
                for field, node in (("from", args.no_cleartext.from_), ("to", args.no_cleartext.to)):
                    # `to` may be a node beyond a full-tunnel peer, without WireGuard of its own
                    need_node("no_cleartext", node, wireguard=field == "from")
        elif any(getattr(args, f) not in (None, False) for f in capture_only):
            problem(path, f"{', '.join(f for f in capture_only if getattr(args, f) not in (None, False))} only apply when stopping a capture")
        elif args.probe is not None and args.probe not in running:
            problem(path + ("probe",), f"no running probe '{args.probe}': start it with `- probe: {{name: {args.probe}, from: ..., to: ...}}` first")
        elif args.iperf3 is not None and ("iperf3", args.iperf3) not in running:
            problem(path + ("iperf3",), f"no background iperf3 '{args.iperf3}': start it with `- iperf3: {{background: {args.iperf3}, ...}}` first")
        running.pop(args.probe if args.probe is not None else ("iperf3", args.iperf3), None)
    elif isinstance(args, WaitUntilArgs):
        if (args.handshake is None) == (args.ping is None):
            problem(path, "wait for exactly one thing: `handshake: [a, b]` or `ping: {...}`")
        if args.handshake is not None:
            a, b = args.handshake
            if need_node("handshake", a, True) and need_node("handshake", b, True) and b not in wg[a].peers and a not in wg[b].peers:
                problem(path + ("handshake",), f"'{a}' and '{b}' are not peers")
        if args.ping is not None:
            need_node("ping", args.ping.from_)


def _check_peer_step(spec, args, path, rekeyed: set[str], problem) -> None:
    """remove_peer, handshake_age: two WireGuard nodes that are peers; reuse_old_key: a node that has an old key."""
    wg = spec.wireguard
    ends = [("node", args.node)] + ([("peer", args.peer)] if hasattr(args, "peer") else [])
    known = True
    for field, node in ends:
        if node not in wg:
            where = "unknown node" if node not in spec.nodes else "no wireguard section for"
            problem(path + (field,), f"{where} '{node}'{_known(wg, node, 'WireGuard nodes')}")
            known = False
    if not known:
        return
    if hasattr(args, "peer") and args.peer not in wg[args.node].peers and args.node not in wg[args.peer].peers:
        problem(path + ("peer",), f"'{args.node}' and '{args.peer}' are not peers")
    if isinstance(args, ReuseOldKeyArgs) and args.node not in rekeyed:
        problem(path + ("node",), f"'{args.node}' has no old key: rotate it first (`- rotate_key: {{node: {args.node}}}`)")


def _check_sockets(spec, problem) -> None:
    """socket_in names another node; sockets sharing a namespace need distinct ports."""
    sockets: dict[tuple[str, int], str] = {}  # (socket node, port) → first WireGuard node there
    for name, iface in spec.wireguard.items():
        where = iface.socket_in or name
        if iface.socket_in is not None:
            if iface.socket_in not in spec.nodes:
                problem(("wireguard", name, "socket_in"), f"unknown node '{iface.socket_in}'{_known(spec.nodes, iface.socket_in)}")
                continue
            if iface.socket_in == name:
                problem(("wireguard", name, "socket_in"), f"'{name}' is its own node: socket_in names another node, whose namespace keeps the socket")
                continue
        first = sockets.setdefault((where, iface.listen_port), name)
        if first != name:
            problem(
                ("wireguard", name, "listen_port"),
                f"port {iface.listen_port} is taken in '{where}' by '{first}''s socket: sockets in one namespace need different listen_ports",
            )


def _check_wg_state_step(spec, args, path, problem) -> None:
    """transfer, learned_endpoint: a node's view of one of its peers; listen_port: a WireGuard node."""
    wg = spec.wireguard
    ends = [("node", args.node)] + ([("peer", args.peer)] if hasattr(args, "peer") else [])
    for field, node in ends:
        if node not in wg:
            where = "unknown node" if node not in spec.nodes else "no wireguard section for"
            problem(path + (field,), f"{where} '{node}'{_known(wg, node, 'WireGuard nodes')}")
            return
    if hasattr(args, "peer") and args.peer not in wg[args.node].peers and args.node not in wg[args.peer].peers:
        problem(path + ("peer",), f"'{args.node}' and '{args.peer}' are not peers")
    if isinstance(args, TransferArgs):
        if args.rx is None and args.tx is None:
            problem(path, "check something: `rx:` and/or `tx:` (bytes: exact, a list, or {min, max})")
        for field in ("rx", "tx"):
            bounds = getattr(args, field)
            if getattr(bounds, "min", None) is not None and getattr(bounds, "max", None) is not None and bounds.min > bounds.max:
                problem(path + (field,), f"min {bounds.min} is above max {bounds.max}")
            elif bounds is not None and not isinstance(bounds, (int, list)) and bounds.min is None and bounds.max is None:
                problem(path + (field,), "give `min:` and/or `max:`")
            elif isinstance(bounds, list) and not bounds:
                problem(path + (field,), "an empty list allows no value")
    if isinstance(args, LearnedEndpointArgs):
        try:
            Endpoint.parse(args.is_)
        except ValueError as exc:
            problem(path + ("is",), str(exc))


def impairment_problems(conditions) -> list[tuple[str, str]]:
    """(field, message) for settings netem cannot combine."""
    found = []
    if conditions.reorder is not None and conditions.delay is None:
        found.append(("reorder", "reordering works by delaying the other packets: it needs `delay`"))
    if conditions.jitter is not None and conditions.delay is None:
        found.append(("jitter", "jitter varies a delay: it needs `delay`"))
    if conditions.distribution is not None and conditions.jitter is None:
        found.append(("distribution", "a distribution shapes the jitter: it needs `jitter`"))
    if conditions.delay_correlation is not None and conditions.jitter is None:
        found.append(("delay_correlation", "correlation links successive jitter values: it needs `jitter`"))
    if conditions.loss_correlation is not None and conditions.loss is None:
        found.append(("loss_correlation", "correlation links successive losses: it needs `loss`"))
    if conditions.loss is not None and conditions.gilbert_elliott is not None:
        found.append(("gilbert_elliott", "use either `loss` or `gilbert_elliott`, not both"))
    if conditions.jitter is not None and conditions.delay is not None and conditions.jitter > conditions.delay and conditions.distribution is None:
        found.append(("jitter", "jitter larger than the delay makes uniform delays go negative (netem clamps them to 0): lower it"))
    return found


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _known(names, wrong: str, what: str = "nodes") -> str:
    """' (did you mean 'server'?)' or ' (known nodes: a, b)'."""
    names = sorted(names)
    close = difflib.get_close_matches(wrong, names, n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (known {what}: {', '.join(names)})" if names else ""
