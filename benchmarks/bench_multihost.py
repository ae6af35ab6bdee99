#!/usr/bin/env python3
"""A hub of N nodes on one machine and spread over K simulated hosts, side by side in
one run: plan, build, first convergence (a `reach` among the spokes, sampled beyond 100
nodes as the step does), teardown, and what is left on any host.

The hosts are those of the multihost tests (tests/integration/simhosts.py: a namespace
each, its sshd behind ProxyCommand, a bridged physical network with an MTU of 1 600),
so every host shares this machine's CPUs: the ratios say what the workers, SSH and
VXLAN cost, not what more machines would gain.

    sudo .venv/bin/python benchmarks/bench_multihost.py [--nodes 1000] [--hosts 3] [--topology hub|lan] [--out results/multihost.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

from bench_scale import spec_of  # noqa: E402

from harness.hosts.engine import MultiHostEngine  # noqa: E402
from harness.network import Network  # noqa: E402
from harness.plan.naming import new_run_id  # noqa: E402
from harness.plan.network import build_plan  # noqa: E402
from harness.scenario.load import load_data  # noqa: E402
from harness.steps.checks import check  # noqa: E402
from tests.integration.leftovers import harness_objects  # noqa: E402
from tests.integration.simhosts import simulated_hosts  # noqa: E402


def one(size: int, engine, within: str, topology: str = "hub") -> dict:
    started = time.monotonic()
    case = load_data(spec_of(topology, size))[0]
    plan = build_plan(case.spec, new_run_id(), "wireguard-go")
    plan_s = time.monotonic() - started
    network = Network(plan, engine=engine)
    figures: dict = {"plan_s": round(plan_s, 3)}
    try:
        started = time.monotonic()
        network.build()
        figures["build_s"] = round(time.monotonic() - started, 3)
        spokes = [n for n in plan.wireguard if n != "hub"]
        result = check(network, {"reach": {"among": spokes, "within": within}})
        if not result.passed:
            sys.exit(f"{topology} {size}: did not converge: {result.message}")
        figures["converge_s"] = result.measurements["convergence.time"].value
        figures["pairs"] = result.measurements["convergence.pairs_answered"].value
        spread = network.engine.spread()
        if spread is not None:
            placement = engine.placement
            figures["placement"] = placement.describe()
            figures["links_between_hosts"] = len(placement.crossing(plan))
            figures["lan_ports_between_hosts"] = len(placement.crossing_lan_ports(plan))
    finally:
        started = time.monotonic()
        left = network.teardown()
        figures["teardown_s"] = round(time.monotonic() - started, 3)
    figures["left"] = left + [f"{kind}: {items}" for kind, items in harness_objects({plan.run_id}).items() if items]
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--within", default="300s", help="the reach step's deadline")
    parser.add_argument("--topology", choices=["hub", "lan"], default="hub", help="spokes on links of their own, or on one LAN with the hub")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    names = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"][: args.hosts]
    local = one(args.nodes, None, args.within, args.topology)
    print(f"one machine: {json.dumps(local)}", flush=True)
    with simulated_hosts(names) as inventory:
        spread = one(args.nodes, MultiHostEngine(inventory), args.within, args.topology)
    print(f"{args.hosts} hosts: {json.dumps(spread)}", flush=True)
    for key in ("build_s", "converge_s", "teardown_s"):
        if local.get(key) and spread.get(key):
            print(f"{key}: {spread[key]:.1f} over {args.hosts} hosts / {local[key]:.1f} on one = {spread[key] / local[key]:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"topology": args.topology, "nodes": args.nodes, "hosts": args.hosts, "one": local, "spread": spread}, indent=1))
    return 1 if local["left"] or spread["left"] else 0


if __name__ == "__main__":
    sys.exit(main())
