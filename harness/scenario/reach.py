"""The `reach` step's nodes and pairs, and its checks before anything is built (pure)."""

from __future__ import annotations

import difflib
from typing import Callable, Iterable

from harness.scenario.model import ReachArgs, ScenarioSpec

MIN_MEMBERS = 2
SHOWN = 5  # pairs named in one message


def reach_nodes(wireguard: Iterable[str], args: ReachArgs) -> list[str]:
    """The nodes whose every ordered pair must reach each other (groups already expanded),
    given the WireGuard nodes in file order: a plan's (when it runs) or a spec's."""
    if args.among is None:
        return list(wireguard)
    if isinstance(args.among, str):
        return [args.among]
    return list(dict.fromkeys(args.among))


def reach_pairs(nodes: list[str]) -> list[tuple[str, str]]:
    """Every ordered pair: a → b and b → a are separate checks (each way has its own path)."""
    return [(a, b) for a in nodes for b in nodes if a != b]


def check_names(spec: ScenarioSpec, args: ReachArgs, path: tuple, problem: Callable[[tuple, str], None]) -> None:
    """Before planning: `among` names WireGuard nodes, at least two."""
    wg = spec.wireguard
    if isinstance(args.among, str):
        # a group's name was already replaced by its members (groups.py hints at near misses)
        problem(path + ("among",), f"'{args.among}' is not a node group (a node with `count:`): name a group or list the nodes, e.g. [a, b, c]")
        return
    if isinstance(args.among, list):
        seen: set[str] = set()
        for j, node in enumerate(args.among):
            if node in seen:
                problem(path + ("among", j), f"'{node}' is listed twice")
            seen.add(node)
            if node not in spec.nodes:
                hint = difflib.get_close_matches(node, list(spec.nodes), n=1)
                problem(path + ("among", j), f"unknown node '{node}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
            elif node not in wg:
                problem(path + ("among", j), f"'{node}' has no wireguard section")
    if len(reach_nodes(wg, args)) < MIN_MEMBERS:
        problem(path + (("among",) if args.among is not None else ()), "reach needs at least two WireGuard nodes")


def check_plan(plan, args: ReachArgs, path: tuple, problem: Callable[[tuple, str], None]) -> None:
    """After planning: every target has a tunnel address of the family, and (for a
    check that should pass) a peer of the source whose AllowedIPs carry it."""
    nodes = reach_nodes(plan.wireguard, args)
    missing = [n for n in nodes if plan.tunnel_address(n, args.family) is None]
    if missing:
        problem(path + ("family",), f"{', '.join(missing[:SHOWN])}{' …' if len(missing) > SHOWN else ''} ha{'s' if len(missing) == 1 else 've'} no IPv{args.family} tunnel address")
        return
    if args.expect != "pass":
        return
    unroutable = [(a, b) for a, b in reach_pairs(nodes) if not _routable(plan, a, b, args.family)]
    if unroutable:
        shown = ", ".join(f"{a} → {b}" for a, b in unroutable[:SHOWN])
        problem(
            path + (("among",) if args.among is not None else ()),
            f"{len(unroutable)} of {len(nodes) * (len(nodes) - 1)} pairs cannot pass: no peer of the sender has the target in "
            f"its allowed_ips ({shown}{' …' if len(unroutable) > SHOWN else ''}); peer them, or add `expect: fail`",
        )


def _routable(plan, a: str, b: str, family: int) -> bool:
    """Some peer of `a` carries b's tunnel address; b itself first (the mesh case), as a
    scan of every peer for every pair is quadratic in the mesh size."""
    target = plan.tunnel_address(b, family)
    direct = plan.wireguard[a].peer(b)
    if direct is not None and any(target in net for net in direct.allowed_ips):
        return True
    return plan.wireguard[a].peer_for(target) is not None
