"""Throughput: iperf3 between two nodes, in the foreground or in the background."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.scenario.fields import CheckArgs, Duration, Label, NodeName, Percent, Rate
from harness.scenario.steps.checking import StepCheck, known
from harness.scenario.steps.registry import step


class Iperf3Args(CheckArgs):
    """Throughput with iperf3 between two nodes; its JSON report is kept as an artifact."""

    from_: NodeName = Field(alias="from", description="The sending client (with reverse: the receiver).")
    to: NodeName = Field(description="Where the iperf3 server runs.")
    via: Literal["tunnel", "underlay"] = "tunnel"
    family: Literal[4, 6] = 4
    protocol: Literal["tcp", "udp"] = "tcp"
    seconds: Duration = Field(3.0, description="Length of the test.")
    bitrate: Rate | None = Field(None, description="Target rate (UDP: default 1 Mbit/s as iperf3's; TCP: unlimited).")
    parallel: int = Field(1, ge=1, le=64)
    reverse: bool = Field(False, description="The server sends.")
    min_rate: Rate | None = Field(None, description="Fail below this received throughput.")
    max_loss: Percent | None = Field(None, description="UDP: fail above this loss.")
    record: Label | None = None
    ratio_to: Label | None = Field(
        None,
        description="The `record:` of an earlier iperf3 step (e.g. the bare path, via: underlay): records "
        "<record>.ratio, this throughput over that one (the tunnel's cost).",
    )
    min_ratio: float | None = Field(None, gt=0, description="With ratio_to: fail below this ratio (0.9 = 90% of it).")
    background: Label | None = Field(
        None, description="Run in the background under this name while the next steps happen; `stop: {iperf3: name}` collects it."
    )


def _check_iperf3(args: Iperf3Args, c: StepCheck) -> None:
    nodes, wg = c.spec.nodes, c.spec.wireguard
    if args.background is not None:
        if c.started("iperf3", args.background) is not None:
            c.problem(f"iperf3 '{args.background}' is already running", "background")
        c.start("iperf3", args.background, "background", f"background iperf3 '{args.background}' is never collected: add `- stop: {{iperf3: {args.background}}}`")
    for field, node in (("from", args.from_), ("to", args.to)):
        if node not in nodes:
            c.problem(f"unknown node '{node}'{known(nodes, node)}", field)
        elif args.via == "tunnel" and node not in wg:
            c.problem(f"'{node}' has no WireGuard interface (use via: underlay)", field)
    if args.from_ == args.to:
        c.problem("iperf3 needs two different nodes", "to")
    if args.max_loss is not None and args.protocol != "udp":
        c.problem("`max_loss` is measured with protocol: udp", "max_loss")
    records = c.round.records
    if args.ratio_to is not None and args.ratio_to not in records:
        c.problem(f"no earlier foreground iperf3 step records '{args.ratio_to}' (recorded: {', '.join(sorted(records)) or 'none yet'})", "ratio_to")
    if args.min_ratio is not None and args.ratio_to is None:
        c.problem("`min_ratio` needs `ratio_to: <an earlier iperf3's record>`", "min_ratio")
    if args.record is not None and args.background is None:
        records.add(args.record)


def measures_rate(args: Iperf3Args) -> bool:
    """Whether the step's verdict or a named measurement depends on the rate, which a
    shared CPU would distort: a floor, a UDP loss bound, a ratio, or a `record:` that a
    report or `wgh compare` will read. An iperf3 that only shows TCP gets through (or
    stalls, as in an MTU black hole) is a function check and shares the machine."""
    return any(value is not None for value in (args.min_rate, args.max_loss, args.ratio_to, args.min_ratio, args.record))


step("iperf3", Iperf3Args, check=_check_iperf3, exclusive=measures_rate, on_stall="retry")
