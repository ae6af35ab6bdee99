#!/usr/bin/env python3
"""How the harness scales: hub-and-spoke and full mesh at 100, 300 and 1 000 nodes
(3 000 where memory allows), side by side in one run.

For each topology and size it plans, builds, waits for the first convergence (a `reach`
over a sample of pairs that has every node send and answer, as the step does beyond 100
nodes), measures memory, and tears down, then prints per-node costs and their ratio to
the smallest size: a harness that scales keeps that ratio near 1.

- hub: a router `hub` with N-1 spokes, each on its own link and with `gateway: hub`;
  WireGuard on every node, each spoke's one peer the hub (allowed_ips the tunnel's /16),
  the hub's peers every spoke. Spoke → spoke traffic crosses the hub's tunnel twice.
- lan: the same hub and spokes on one LAN (a bridge in its own namespace, one
  subnet): one veth pair per node instead of a routed link each, no routes at all; up
  to 1 024 nodes (one bridge's ports).
- lans: the same hub and spokes on several LANs of up to 1 000 members (3 at 3 000
  nodes), each with a router that is its spokes' gateway and has a link to the hub:
  past one bridge's 1 023 ports.
- mesh: N peers behind one router (`gateway: switch`: a default route each, not N-1
  subnet routes), every one peering every other (N·(N-1) peers: a mesh of 1 000 is
  999 000, so it runs only up to --mesh-max).

Memory per node is the resident memory of the run's daemons (wireguard-go: its PSS, so
shared pages are not counted N times) plus the kernel's slab growth, over N. The
teardown figure is the harness's; what the kernel still owes after it (namespaces are
freed asynchronously) shows as slab not yet returned.

    sudo .venv/bin/python benchmarks/bench_scale.py [--sizes 100,300,1000] [--topologies hub,lan,lans,mesh] [--backend wireguard-go] [--out results/scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.network import Network
from harness.plan.naming import new_run_id
from harness.plan.network import build_plan
from harness.scenario.load import load_data
from harness.steps.checks import check

TUNNEL_PREFIX = "100.64.0.0/16"
LAN_MEMBERS = 1000  # per LAN in `lans` (one bridge holds at most 1 023 ports)


@dataclass
class Figures:
    topology: str
    nodes: int
    peers: int
    plan_s: float
    build_s: float
    converge_s: float | None
    pairs: int
    teardown_s: float
    daemon_mib: float
    daemon_cpu_s: float  # CPU time the daemons had used by the end of the build (0 for kernel WireGuard)
    harness_cpu_s: float  # the harness's own CPU time over the build (all its threads)
    slab_mib: float
    slab_left_mib: float

    @property
    def build_ms_per_node(self) -> float:
        return 1000 * self.build_s / self.nodes

    @property
    def teardown_ms_per_node(self) -> float:
        return 1000 * self.teardown_s / self.nodes

    @property
    def mib_per_node(self) -> float:
        return (self.daemon_mib + self.slab_mib) / self.nodes


def spec_of(topology: str, size: int) -> dict:
    if topology == "lan":
        return {
            "name": f"lan-{size}",
            "nodes": {"hub": {"router": True}, "spoke": {"count": size - 1}},
            "lans": [{"name": "office", "members": ["hub", "spoke"]}],
            "wireguard": {
                "hub": {"peers": {"spoke": {"allowed_ips": ["spoke"]}}},
                "spoke": {"peers": {"hub": {"endpoint": "hub", "allowed_ips": [TUNNEL_PREFIX]}}},
            },
        }
    if topology == "lans":
        # as many LANs as 1 000 members each need, spokes spread evenly; LAN x's router rx
        # is its spokes' gateway and has a link to the hub
        count = -(-(size - 1) // LAN_MEMBERS)
        names = [chr(ord("a") + i) for i in range(count)]
        spokes = size - 1 - count
        nodes: dict = {"hub": {"router": True}}
        for i, name in enumerate(names):
            nodes[f"r{name}"] = {"router": True}
            nodes[name] = {"count": spokes // count + (i < spokes % count), "gateway": f"r{name}"}
        return {
            "name": f"lans-{size}",
            "nodes": nodes,
            "links": [{"ends": [f"r{name}", "hub"]} for name in names],
            "lans": [{"name": f"lan-{name}", "members": [f"r{name}", name]} for name in names],
            "wireguard": {
                "hub": {"peers": {name: {"allowed_ips": [name]} for name in names}},
                **{name: {"peers": {"hub": {"endpoint": "hub", "allowed_ips": [TUNNEL_PREFIX]}}} for name in names},
            },
        }
    if topology == "hub":
        spokes = size - 1
        return {
            "name": f"hub-{size}",
            "nodes": {"hub": {"router": True}, "spoke": {"count": spokes, "gateway": "hub"}},
            "links": [{"ends": ["spoke", "hub"]}],
            "wireguard": {
                "hub": {"peers": {"spoke": {"allowed_ips": ["spoke"]}}},
                "spoke": {"peers": {"hub": {"endpoint": "hub", "allowed_ips": [TUNNEL_PREFIX]}}},
            },
        }
    return {
        "name": f"mesh-{size}",
        "nodes": {"switch": {"router": True}, "peer": {"count": size, "gateway": "switch"}},
        "links": [{"ends": ["peer", "switch"]}],
        "wireguard": {"peer": {"peers": {"peer": {"endpoint": "peer"}}}},
    }


def slab_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Slab:"):
            return int(line.split()[1])
    return 0


def settled_slab_kib(timeout: float = 60.0) -> int:
    """Slab once the kernel has stopped freeing what an earlier run left it to free
    (namespaces go asynchronously): it falls by under 1 MiB in half a second, or the
    timeout passes. Without this, a size's growth was once negative."""
    last = slab_kib()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = slab_kib()
        if last - now < 1024:
            return now
        last = now
    return last


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def pss_kib(pid: int) -> int:
    """Proportional set size (shared pages split among their sharers); 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def one(topology: str, size: int, backend: str, within: str) -> Figures:
    started = time.monotonic()
    case = load_data(spec_of(topology, size))[0]
    plan = build_plan(case.spec, new_run_id(), backend)
    plan_s = time.monotonic() - started
    peers = sum(len(wg.peers) for wg in plan.wireguard.values())
    slab_before = settled_slab_kib()
    network = Network(plan)
    converge_s = None
    pairs = 0
    try:
        started, cpu_started = time.monotonic(), time.process_time()
        network.build()
        build_s = time.monotonic() - started
        harness_cpu = time.process_time() - cpu_started
        daemon_cpu = sum(cpu_seconds(p.pid) for p in network.registry.record.processes)
        members = [n for n in plan.wireguard if n != "hub"]  # the spokes, or the mesh's peers
        result = check(network, {"reach": {"among": members, "within": within}})
        if not result.passed:
            sys.exit(f"{topology} {size}: did not converge: {result.message}")
        converge_s = result.measurements["convergence.time"].value
        pairs = result.measurements["convergence.pairs_answered"].value
        daemons = sum(pss_kib(p.pid) for p in network.registry.record.processes)
        slab_built = slab_kib()
    finally:
        started = time.monotonic()
        left = network.teardown()
        teardown_s = time.monotonic() - started
    if left:
        sys.exit(f"{topology} {size}: teardown left {left}")
    slab_after = slab_kib()
    return Figures(
        topology, size, peers, round(plan_s, 3), round(build_s, 3), converge_s, pairs, round(teardown_s, 3),
        round(daemons / 1024, 1), round(daemon_cpu, 1), round(harness_cpu, 1), round((slab_built - slab_before) / 1024, 1), round((slab_after - slab_before) / 1024, 1),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--topologies", default="hub,lan,mesh")
    parser.add_argument("--mesh-max", type=int, default=300, help="largest full mesh (N·(N-1) peers)")
    parser.add_argument("--backend", default="wireguard-go")
    parser.add_argument("--within", default="300s", help="convergence deadline")
    parser.add_argument("--out", help="write the figures as JSON")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    topologies = [t.strip() for t in args.topologies.split(",")]
    figures: list[Figures] = []
    for topology in topologies:
        for size in sizes:
            if topology == "mesh" and size > args.mesh_max:
                print(f"{topology} {size}: skipped (--mesh-max {args.mesh_max})", flush=True)
                continue
            f = one(topology, size, args.backend, args.within)
            figures.append(f)
            print(
                f"{topology} {size}: plan {f.plan_s:.2f} s, build {f.build_s:.2f} s, converged {f.converge_s} s "
                f"({f.pairs} pairs), teardown {f.teardown_s:.2f} s, daemons {f.daemon_mib} MiB, slab +{f.slab_mib} MiB "
                f"(+{f.slab_left_mib} MiB after teardown); CPU during the build: harness {f.harness_cpu_s} s, daemons {f.daemon_cpu_s} s",
                flush=True,
            )
    print(f"\nbackend {args.backend}; per node, and its ratio to the smallest size of the topology")
    print(f"{'topology':>8} {'nodes':>6} {'peers':>8} {'build ms/node':>13} {'ratio':>6} {'teardown ms/node':>16} {'ratio':>6} {'MiB/node':>8} {'ratio':>6} {'converge s':>10}")
    for topology in topologies:
        rows = [f for f in figures if f.topology == topology]
        if not rows:
            continue
        base = rows[0]
        for f in rows:
            print(
                f"{f.topology:>8} {f.nodes:>6} {f.peers:>8} {f.build_ms_per_node:13.1f} {f.build_ms_per_node / base.build_ms_per_node:6.2f} "
                f"{f.teardown_ms_per_node:16.1f} {f.teardown_ms_per_node / base.teardown_ms_per_node:6.2f} "
                f"{f.mib_per_node:8.2f} {f.mib_per_node / base.mib_per_node if base.mib_per_node else 0:6.2f} {f.converge_s!s:>10}"
            )
    if args.out:
        Path(args.out).write_text(json.dumps({"backend": args.backend, "figures": [asdict(f) for f in figures]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
