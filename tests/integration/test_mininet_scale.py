"""Scale on Mininet: Mininet's own TreeTopo with 100 hosts, WireGuard hub-and-spoke on
them (harness.mininet), builds, converges (every spoke's handshake with the hub) and
tears down, leaving nothing. Build times per engine are in benchmarks/bench_engines.py."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("mininet")

from mininet.topolib import TreeTopo  # noqa: E402

from harness.mininet import WgNet, add_wireguard, check  # noqa: E402

from .leftovers import harness_objects  # noqa: E402
from .placement import host_only  # noqa: E402

pytestmark = [pytest.mark.requires("root", "wireguard", "mininet"), host_only]  # 100 hosts: too slow for the emulated VM


def test_a_100_host_tree_converges_and_leaves_nothing(wgh_backend):
    net = WgNet(topo=TreeTopo(depth=2, fanout=10), backend=wgh_backend)
    shells = [node.shell.pid for node in net.hosts + net.switches]
    assert len(net.hosts) == 100 and len(net.switches) == 11
    net.start()
    try:
        hosts = [h.name for h in net.hosts]
        hub = hosts[0]
        settings = {hub: {}} | {h: {"peers": {hub: {"endpoint": hub, "persistent_keepalive": 25}}} for h in hosts[1:]}
        with add_wireguard(net, settings, backend=wgh_backend) as wg:
            assert len(wg.plan.wireguard[hub].peers) == 99
            slow = [s for s in hosts[1:] if not check(wg, {"handshake": {"between": [s, hub], "within": "30s"}}).passed]
            assert not slow, f"no handshake with the hub: {slow}"
            assert check(wg, {"ping": {"from": hosts[-1], "to": hub, "count": 1}}).ok
            run_id = wg.plan.run_id
        assert not any(harness_objects({run_id}).values())
    finally:
        net.stop()
    assert not [pid for pid in shells if Path(f"/proc/{pid}").exists()]
