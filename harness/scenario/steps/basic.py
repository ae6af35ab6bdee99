"""Basic checks: a handshake, a ping, a pause."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.scenario.fields import CheckArgs, Duration, Label, NodeName, Percent
from harness.scenario.steps.checking import StepCheck, StepPlanCheck, is_address, known
from harness.scenario.steps.registry import step


class HandshakeArgs(CheckArgs):
    between: tuple[NodeName, NodeName]
    within: Duration = 5.0


class PingArgs(CheckArgs):
    from_: NodeName = Field(alias="from")
    to: str = Field(description="A node name or an IP address.")
    via: Literal["tunnel", "underlay"] = "tunnel"
    family: Literal[4, 6] = 4
    count: int = Field(3, ge=1, le=100000)
    interval: Duration = 0.2
    timeout: Duration = Field(2.0, description="How long to wait for the last reply.")
    size: int | None = Field(None, ge=0, le=65507, description="ICMP payload bytes.")
    max_loss: Percent = 0.0
    record: Label | None = Field(None, description="Name under which the RTT is recorded.")
    source: str | None = Field(
        None,
        description="Send from this address of `from` (ping -I): one of its tunnel addresses (via: tunnel) or "
        "underlay addresses (via: underlay). Default: the address the kernel picks.",
    )


def _check_handshake(args: HandshakeArgs, c: StepCheck) -> None:
    wg = c.spec.wireguard
    a, b = args.between
    for j, end in enumerate(args.between):
        if end not in wg:
            c.problem(f"'{end}' has no wireguard section{known(wg, end, 'WireGuard nodes')}", "between", j)
    if a in wg and b in wg:
        c.need_peers(a, b, "between")


def _check_ping(args: PingArgs, c: StepCheck) -> None:
    nodes, wg = c.spec.nodes, c.spec.wireguard
    if args.from_ not in nodes:
        c.problem(f"unknown node '{args.from_}'{known(nodes, args.from_)}", "from")
    elif args.via == "tunnel" and args.from_ not in wg:
        c.problem(f"'{args.from_}' has no WireGuard interface to ping through (use via: underlay)", "from")
    if args.to not in nodes and not is_address(args.to):
        c.problem(f"'{args.to}' is neither a node nor an IP address{known(nodes, args.to)}", "to")
    elif args.to in nodes and args.to == args.from_:
        c.problem("a node pinging itself proves nothing", "to")


def _check_ping_plan(args: PingArgs, c: StepPlanCheck) -> None:
    if args.to not in c.spec.nodes:
        return
    plan = c.plan
    # a node without WireGuard is reached through the tunnel by its underlay address (full tunnel)
    target = plan.target_address(args.from_, args.to, "tunnel", args.family)
    if args.via == "tunnel" and target is None:
        what = "tunnel address" if args.to in c.spec.wireguard else "address"
        c.problem(f"'{args.to}' has no IPv{args.family} {what}", "family")
    elif args.via == "tunnel" and args.expect == "pass" and plan.wireguard[args.from_].peer_for(target) is None:
        c.problem(
            f"no peer of '{args.from_}' has {target} ('{args.to}') in its allowed_ips, so this ping cannot pass "
            f"(peer them, add '{args.to}' to a peer's allowed_ips, or add `expect: fail`)",
            "to",
        )
    if args.via == "underlay" and plan.underlay_address(args.from_, args.to, args.family, reachable=args.expect == "pass") is None:
        reach = " that '" + args.from_ + "' can reach (add `expect: fail` if that is the point)" if args.expect == "pass" else ""
        c.problem(f"'{args.to}' has no IPv{args.family} underlay address{reach}", "to")


step("handshake", HandshakeArgs, check=_check_handshake, on_stall="once")
step("ping", PingArgs, check=_check_ping, check_plan=_check_ping_plan, on_stall="retry")
step("sleep", Duration)
