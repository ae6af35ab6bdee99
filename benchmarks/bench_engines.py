#!/usr/bin/env python3
"""Build and teardown time per engine, side by side in one run, for 2, 25 and 100 nodes.

Each size is a hub-and-spoke network: a router (the hub) and N-1 leaves, one link each,
WireGuard on every leaf with the hub as its peer (so 100 nodes means 99 WireGuard
devices and 99 veth pairs). Every round builds and tears down each (size, engine) in
turn, each engine going first in turn, so machine noise hits both alike; the medians
and the mininet/netns ratio are printed. One handshake per build is checked, so a
build that does not work is not timed as one.

    sudo .venv/bin/python benchmarks/bench_engines.py [--sizes 2,25,100] [--repeat 3] [--backend wireguard-go]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,25,100")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", default="wireguard-go")
    parser.add_argument("--engines", default=",".join(ENGINES))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
