"""The `reach` step: every pair of a group of nodes reaches the other through the tunnel.
Its nodes and pairs (the runner's too), and its checks before anything is built (pure).

A group of N nodes has N·(N-1) ordered pairs: 9 900 at 100 nodes, 999 000 at 1 000.
Up to ALL_PAIRS_UP_TO nodes every pair is checked; above that (or when `pairs:` gives a
number) a sample is, drawn so that it still tests every node both ways: a random cycle
through all the nodes (each sends to one and answers one), the same cycle backwards,
then random pairs up to the number asked for. The draw is seeded (by `seed:`, or by
the nodes' names), so every run of a file checks the same pairs and a failure repeats.
"""

from __future__ import annotations

import difflib
import random
import zlib
from typing import Annotated, Any, Iterable, Literal, Union

from pydantic import BeforeValidator, Field, WithJsonSchema

from harness.scenario.fields import CheckArgs, Duration, Label, NodeName
from harness.scenario.steps.checking import StepCheck, StepPlanCheck
from harness.scenario.steps.registry import step

MIN_MEMBERS = 2
SHOWN = 5  # pairs named in one message
ALL_PAIRS_UP_TO = 100  # nodes: 9 900 pairs, about a second of probing; beyond, a sample
SAMPLED_PER_NODE = 4  # default sample: 4·N pairs (the cycle both ways, then 2·N at random)


def _pair_count(value: Any) -> Any:
    """`all`, a whole number ≥ 1, or absent: one message for anything else."""
    if value is None or value == "all" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError(f"expected 'all' or a whole number of pairs (at least 1), got {value!r}")


PairCount = Annotated[
    Union[Literal["all"], int, None],
    BeforeValidator(_pair_count),
    WithJsonSchema({"anyOf": [{"const": "all"}, {"type": "integer", "minimum": 1}, {"type": "null"}]}),
]


class ReachArgs(CheckArgs):
    """Every ordered pair of these nodes reaches the other through the tunnel; the time
    until the last pair answered is the convergence time."""

    among: Union[NodeName, list[NodeName], None] = Field(
        None, description="A node group's name, or a list of WireGuard nodes (default: every WireGuard node)."
    )
    within: Duration = Field(30.0, description="Deadline for every pair to answer.")
    family: Literal[4, 6] = 4
    interval: Duration = Field(0.5, description="Time between retries to a pair that has not answered yet.")
    record: Label | None = Field(None, description="Name of the measurements (default: convergence).")
    pairs: PairCount = Field(
        None,
        description=f"`all`, or how many ordered pairs to check, sampled so every node sends and answers "
        f"(default: all up to {ALL_PAIRS_UP_TO} nodes, {SAMPLED_PER_NODE} per node beyond).",
    )
    seed: int | None = Field(None, description="Seed of the sample (default: derived from the nodes' names).")


def reach_nodes(wireguard: Iterable[str], args: ReachArgs) -> list[str]:
    """The nodes whose every ordered pair must reach each other (groups already expanded),
    given the WireGuard nodes in file order: a plan's (when it runs) or a spec's."""
    if args.among is None:
        return list(wireguard)
    if isinstance(args.among, str):
        return [args.among]
    return list(dict.fromkeys(args.among))


def all_pairs(nodes: list[str]) -> list[tuple[str, str]]:
    """Every ordered pair: a → b and b → a are separate checks (each way has its own path)."""
    return [(a, b) for a in nodes for b in nodes if a != b]


def reach_pairs(nodes: list[str], args: ReachArgs | None = None) -> list[tuple[str, str]]:
    """The ordered pairs the step checks: all of them, or a seeded sample (module doc)."""
    total = len(nodes) * (len(nodes) - 1)
    wanted = sample_size(len(nodes), args)
    if wanted >= total:
        return all_pairs(nodes)
    rng = random.Random(sample_seed(nodes, args))
    cycle = rng.sample(nodes, len(nodes))
    chosen = dict.fromkeys((cycle[i - 1], cycle[i]) for i in range(len(cycle)))
    chosen.update(dict.fromkeys((b, a) for a, b in list(chosen)))
    if 2 * wanted > total:  # most pairs: draw from the rest rather than retry collisions
        rest = [p for p in all_pairs(nodes) if p not in chosen]
        chosen.update(dict.fromkeys(rng.sample(rest, max(0, wanted - len(chosen)))))
    while len(chosen) < wanted:
        a, b = rng.sample(nodes, 2)
        chosen[(a, b)] = None
    return list(chosen)[:wanted]


def sample_size(members: int, args: ReachArgs | None) -> int:
    """How many pairs the step checks (all of them when that is at most this)."""
    total = members * (members - 1)
    pairs = args.pairs if args is not None else "all"
    if pairs == "all" or (pairs is None and members <= ALL_PAIRS_UP_TO):
        return total
    return min(total, pairs if isinstance(pairs, int) else SAMPLED_PER_NODE * members)


def sample_seed(nodes: list[str], args: ReachArgs | None) -> int:
    """The sample's seed: the file's, or one the nodes' names fix (stable across runs and
    Python processes, unlike hash())."""
    if args is not None and args.seed is not None:
        return args.seed
    return zlib.crc32("\0".join(nodes).encode())


def _check_reach(args: ReachArgs, c: StepCheck) -> None:
    """Before planning: `among` names WireGuard nodes, at least two."""
    spec = c.spec
    wg = spec.wireguard
    if isinstance(args.among, str):
        # a group's name was already replaced by its members (groups.py hints at near misses)
        c.problem(f"'{args.among}' is not a node group (a node with `count:`): name a group or list the nodes, e.g. [a, b, c]", "among")
        return
    if isinstance(args.among, list):
        seen: set[str] = set()
        for j, node in enumerate(args.among):
            if node in seen:
                c.problem(f"'{node}' is listed twice", "among", j)
            seen.add(node)
            if node not in spec.nodes:
                hint = difflib.get_close_matches(node, list(spec.nodes), n=1)
                c.problem(f"unknown node '{node}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""), "among", j)
            elif node not in wg:
                c.problem(f"'{node}' has no wireguard section", "among", j)
    if len(reach_nodes(wg, args)) < MIN_MEMBERS:
        c.problem("reach needs at least two WireGuard nodes", *_among(args))


def _check_reach_plan(args: ReachArgs, c: StepPlanCheck) -> None:
    """After planning: every target has a tunnel address of the family, and (for a
    check that should pass) a peer of the source whose AllowedIPs carry it."""
    plan = c.plan
    nodes = reach_nodes(plan.wireguard, args)
    missing = [n for n in nodes if plan.tunnel_address(n, args.family) is None]
    if missing:
        c.problem(f"{', '.join(missing[:SHOWN])}{' …' if len(missing) > SHOWN else ''} ha{'s' if len(missing) == 1 else 've'} no IPv{args.family} tunnel address", "family")
        return
    if args.expect != "pass":
        return
    pairs = reach_pairs(nodes, args)
    unroutable = [(a, b) for a, b in pairs if not _routable(plan, a, b, args.family)]
    if unroutable:
        shown = ", ".join(f"{a} → {b}" for a, b in unroutable[:SHOWN])
        c.problem(
            f"{len(unroutable)} of {len(pairs)} pairs{' checked' if len(pairs) < len(nodes) * (len(nodes) - 1) else ''} cannot pass: no peer of the sender has the target in "
            f"its allowed_ips ({shown}{' …' if len(unroutable) > SHOWN else ''}); peer them, or add `expect: fail`",
            *_among(args),
        )


def _among(args: ReachArgs) -> tuple[str, ...]:
    """Where a problem with the whole group points: `among`, or the step if it has none."""
    return ("among",) if args.among is not None else ()


def _routable(plan: Any, a: str, b: str, family: int) -> bool:
    """Some peer of `a` carries b's tunnel address; b itself first (the mesh case), as a
    scan of every peer for every pair is quadratic in the mesh size."""
    target = plan.tunnel_address(b, family)
    direct = plan.wireguard[a].peer(b)
    if direct is not None and any(target in net for net in direct.allowed_ips):
        return True
    return plan.wireguard[a].peer_for(target) is not None


step("reach", ReachArgs, check=_check_reach, check_plan=_check_reach_plan, on_stall="once")  # a retry would find the mesh converged
