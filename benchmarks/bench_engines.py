#!/usr/bin/env python3
"""Build and teardown time per engine, side by side in one run, for 2, 25 and 100 nodes;
the library's 25-peer mesh per engine; and Mininet's own 100-host TreeTopo with
WireGuard on the leaves (harness.mininet).

Each size is a hub-and-spoke network: a router (the hub) and N-1 leaves, one link each,
WireGuard on every leaf with the hub as its peer (so 100 nodes means 99 WireGuard
devices and 99 veth pairs). Every round builds and tears down each (size, engine) in
turn, each engine going first in turn, so machine noise hits both alike; the medians
and the mininet/netns ratio are printed. One handshake per build is checked, so a
build that does not work is not timed as one.

The mesh is scenarios/mesh.yaml's 25-peer case, run as `wgh run` runs it (build, then
the `reach` step's convergence of all 600 ordered pairs). The tree is
`TreeTopo(depth=2, fanout=10)`: 100 hosts under 11 Bridges (Linux bridges in their own
namespaces), WireGuard hub-and-spoke on the hosts (h1 the hub), converged when every
spoke has a handshake with the hub.

    sudo .venv/bin/python benchmarks/bench_engines.py [--sizes 2,25,100] [--repeat 3] [--backend wireguard-go] [--no-mesh] [--no-tree]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from harness.engine import make_engine
from harness.engines import ENGINES
from harness.network import Network
from harness.plan.naming import new_run_id
from harness.plan.network import build_plan
from harness.scenario.load import load_data
from harness.steps.checks import check


def spec_of(size: int) -> dict:
    leaves = size - 1
    return {
        "name": f"star-{size}",
        "nodes": {"hub": {"router": True}, "leaf": {"count": leaves}},
        "links": [{"ends": ["leaf", "hub"]}],
        "wireguard": {"hub": {}, "leaf": {"peers": {"hub": {"endpoint": "hub"}}}},
    }


def one(size: int, engine: str, backend: str) -> tuple[float, float]:
    case = load_data(spec_of(size))[0]
    plan = build_plan(case.spec, new_run_id(), backend)
    network = Network(plan, engine=make_engine(engine))
    started = time.monotonic()
    try:
        network.build()
        built = time.monotonic() - started
        result = check(network, {"handshake": {"between": ["leaf1", "hub"], "within": "5s"}})
        if not result.passed:
            sys.exit(f"{engine}, {size} nodes: the built network does not work: {result.message}")
    finally:
        torn = time.monotonic()
        left = network.teardown()
    if left:
        sys.exit(f"{engine}, {size} nodes: teardown left {left}")
    return built, time.monotonic() - torn


def mesh(engine: str, backend: str) -> tuple[float, float, float]:
    """scenarios/mesh.yaml's 25-peer case on `engine`: build, convergence, teardown."""
    from pathlib import Path

    from harness.run import run_case
    from harness.scenario.load import load_file

    case = next(c for c in load_file(Path(__file__).resolve().parents[1] / "scenarios" / "mesh.yaml") if c.spec.nodes.get("peer25"))
    result = run_case(case, backend=backend, engine=engine)
    if result.status != "passed":
        sys.exit(f"mesh 25 on {engine}: {result.status}: {result.summary()}")
    return result.build_seconds, result.steps_seconds, result.teardown_seconds


def tree(backend: str) -> tuple[float, float, float, float]:
    """Mininet's TreeTopo(depth=2, fanout=10) with WireGuard hub-and-spoke on its 100
    hosts: Mininet's build, WireGuard's bring-up, convergence, teardown (seconds)."""
    from mininet.topolib import TreeTopo

    from harness.mininet import WgNet, add_wireguard

    started = time.monotonic()
    net = WgNet(topo=TreeTopo(depth=2, fanout=10), backend=backend)
    net.start()
    built = time.monotonic() - started
    try:
        hosts = [h.name for h in net.hosts]
        settings = {hosts[0]: {}} | {h: {"peers": {hosts[0]: {"endpoint": hosts[0], "persistent_keepalive": 25}}} for h in hosts[1:]}
        started = time.monotonic()
        wg = add_wireguard(net, settings, backend=backend)
        wireguard = time.monotonic() - started
        try:
            started = time.monotonic()
            for spoke in hosts[1:]:  # every spoke's keepalive starts its handshake; all wait together
                result = check(wg, {"handshake": {"between": [spoke, hosts[0]], "within": "30s"}})
                if not result.passed:
                    sys.exit(f"tree: {spoke} did not converge: {result.message}")
            converged = time.monotonic() - started
        finally:
            wg.close()
    finally:
        started = time.monotonic()
        net.stop()
        teardown = time.monotonic() - started
    return built, wireguard, converged, teardown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,25,100")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", default="wireguard-go")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--no-mesh", action="store_true", help="skip the 25-peer mesh per engine")
    parser.add_argument("--no-tree", action="store_true", help="skip Mininet's 100-host TreeTopo")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    engines = [e.strip() for e in args.engines.split(",")]
    times: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for round_ in range(args.repeat):
        for size in sizes:
            order = engines[round_ % len(engines):] + engines[: round_ % len(engines)]
            for engine in order:
                times.setdefault((size, engine), []).append(one(size, engine, args.backend))
                build, teardown = times[(size, engine)][-1]
                print(f"round {round_ + 1}: {size:>4} nodes {engine:>8}: build {build:6.2f} s, teardown {teardown:5.2f} s", flush=True)
    print(f"\nmedians of {args.repeat} round(s), backend {args.backend}")
    print(f"{'nodes':>5} {'engine':>8} {'build s':>8} {'teardown s':>10} {'build ratio':>11}")
    for size in sizes:
        base = statistics.median(b for b, _ in times[(size, engines[0])])
        for engine in engines:
            build = statistics.median(b for b, _ in times[(size, engine)])
            teardown = statistics.median(t for _, t in times[(size, engine)])
            print(f"{size:>5} {engine:>8} {build:8.2f} {teardown:10.2f} {build / base:11.2f}")
    if not args.no_mesh:
        print("\nscenarios/mesh.yaml, 25 peers (600 ordered pairs), one run per engine")
        print(f"{'engine':>8} {'build s':>8} {'converge s':>10} {'teardown s':>10}")
        for engine in engines:
            build, steps, teardown = mesh(engine, args.backend)
            print(f"{engine:>8} {build:8.2f} {steps:10.2f} {teardown:10.2f}", flush=True)
    if not args.no_tree:
        built, wireguard, converged, teardown = tree(args.backend)
        print("\nMininet TreeTopo(depth=2, fanout=10): 100 hosts, 11 Bridges, WireGuard hub-and-spoke on the hosts")
        print(f"  Mininet build+start {built:.2f} s, WireGuard bring-up {wireguard:.2f} s, converged {converged:.2f} s, teardown {teardown:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
