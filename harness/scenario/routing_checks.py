"""Reference checks for the routing side of a scenario: a node's `gateway`, a ping's
`source` address. Pure; called from validate.py in its two rounds (names, then plan)."""

from __future__ import annotations

import ipaddress
from typing import AbstractSet, Callable, Mapping

from harness.scenario.model import ScenarioSpec, step_args
from harness.scenario.steps.basic import PingArgs

Report = Callable[[tuple, str], None]


def check_names(spec: ScenarioSpec, neighbours: Mapping[str, AbstractSet[str]], problem: Report) -> None:
    """First round: what the fields name exists and has the right shape."""
    for name, node in spec.nodes.items():
        if node.gateway is not None and node.gateway not in neighbours.get(name, set()):
            known = ", ".join(sorted(neighbours.get(name, ()))) or "none"
            problem(("nodes", name, "gateway"), f"'{node.gateway}' is not a neighbour of '{name}' (neighbours: {known})")
    for i, step in enumerate(spec.steps):
        args = step_args(step)
        if isinstance(args, PingArgs) and args.source is not None:
            try:
                ipaddress.ip_address(args.source)
            except ValueError:
                problem(("steps", i, "ping", "source"), f"{args.source!r} is not an IP address")


def check_plan(spec: ScenarioSpec, plan, problem: Report) -> None:
    """Second round, on the plan: a ping's source is an address its node really has."""
    for i, step in enumerate(spec.steps):
        args = step_args(step)
        if not isinstance(args, PingArgs) or args.source is None:
            continue
        try:
            source = ipaddress.ip_address(args.source)
        except ValueError:
            continue  # reported in the first round
        path = ("steps", i, "ping", "source")
        if args.via == "tunnel":
            wg = plan.wireguard.get(args.from_)
            owned = [a.ip for a in wg.addresses] if wg is not None else []
            where = "tunnel addresses"
        else:
            owned = [a.ip for port in plan.ports[args.from_] for a in port.addresses]
            where = "underlay addresses"
        if source not in owned:
            listed = ", ".join(map(str, owned)) or "none"
            problem(path, f"{source} is not one of {args.from_}'s {where} ({listed}): ping can only send from its own address")
            continue
        target = plan.target_address(args.from_, args.to, args.via, args.family)
        if target is not None and target.version != source.version:
            problem(path, f"{source} is IPv{source.version} but the ping goes to {target} (IPv{target.version})")
