"""Reference checks for DNS: `dns:` on nodes, endpoints given by name, and the
`reresolve` background step (pure; called from validate.py)."""

from __future__ import annotations

from typing import Callable

from harness.scenario.model import ScenarioSpec, step_args, step_kind
from harness.scenario.steps.background import StopArgs
from harness.scenario.steps.dns import ReresolveArgs
from harness.scenario.steps.timeline import RoamArgs

Problem = Callable[[tuple, str], None]


def check_spec(spec: ScenarioSpec, problem: Problem) -> None:
    """What can be checked before planning: names refer to nodes, the servers have links."""
    linked = {end for link in spec.links for end in link.ends}
    servers = set()
    for name, node in spec.nodes.items():
        if not node.dns:
            continue
        servers.add(name)
        if name not in linked:
            problem(("nodes", name, "dns"), f"'{name}' has no link: its DNS server would have no address to listen on")
        for dns_name, target in node.dns.items():
            if target not in spec.nodes:
                problem(("nodes", name, "dns", dns_name), f"unknown node '{target}' (known nodes: {', '.join(sorted(spec.nodes))})")
            elif target not in linked:
                problem(("nodes", name, "dns", dns_name), f"'{target}' has no link, so no underlay address for '{dns_name}' to name")

    running: dict[str, int] = {}  # node → index of the reresolve step still running
    for i, step in enumerate(spec.steps):
        args = step_args(step)
        path = ("steps", i, step_kind(step))
        if isinstance(args, RoamArgs) and args.node in servers:
            problem(path + ("node",), f"'{args.node}' runs a DNS server (dnsmasq listens on its addresses): it cannot roam")
        elif isinstance(args, ReresolveArgs):
            if args.node not in spec.nodes:
                problem(path + ("node",), f"unknown node '{args.node}'")
            elif args.node not in spec.wireguard:
                problem(path + ("node",), f"'{args.node}' has no wireguard section: it has no peers to re-resolve")
            if args.node in running:
                problem(path + ("node",), f"'{args.node}' already re-resolves (since steps[{running[args.node]}])")
            running[args.node] = i
        elif isinstance(args, StopArgs) and args.reresolve is not None:
            if running.pop(args.reresolve, None) is None:
                problem(path + ("reresolve",), f"'{args.reresolve}' does not re-resolve: start it with `- reresolve: {{node: {args.reresolve}}}` first")
            if args.expect == "fail":
                problem(path + ("expect",), "stopping a re-resolution checks only that it ran without errors: `expect: fail` does not apply")


def check_plan(spec: ScenarioSpec, plan, problem: Problem) -> None:
    """What needs the plan: a re-resolving node must have a peer whose endpoint is a DNS name."""
    for i, step in enumerate(spec.steps):
        args = step_args(step)
        if isinstance(args, ReresolveArgs) and args.node in plan.wireguard:
            if not any(p.endpoint is not None and p.endpoint.name for p in plan.wireguard[args.node].peers):
                problem(
                    ("steps", i, "reresolve", "node"),
                    f"no peer of '{args.node}' has an endpoint given by DNS name ('name:port'): there is nothing to re-resolve",
                )
