"""LANs on a real host, on every engine: one bridge in a namespace of its own with a
port per member, every member addressed in one subnet and reaching the others
directly, conditions on the port they were written for, WireGuard across it, and
nothing left after teardown (the bridge's namespace or switch shell included)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from harness import caps, hostlimits
from harness.plan.naming import lan_namespace_name
from harness.steps.checks import check

from .leftovers import harness_objects

pytestmark = pytest.mark.requires("root", "wireguard")

OFFICE = {
    "name": "office",
    "nodes": {"hub": {"router": True}, "spoke": {"count": 4}},
    "lans": [
        {
            "name": "office",
            "members": ["hub", "spoke"],
            "ipv6": True,
            "towards": {"hub": {"rate": "20mbit"}},  # arrives at the hub: the bridge's port p0
            "from": {"spoke2": {"rate": "5mbit"}},  # sent by spoke2: its own eth0
        }
    ],
    "wireguard": {
        "hub": {"peers": {"spoke": {"allowed_ips": ["spoke"]}}},
        "spoke": {"peers": {"hub": {"endpoint": "hub", "allowed_ips": ["100.64.0.0/16", "fd00:64::/48"]}}},
    },
}


def _qdisc_kinds(netns_path: str, ifname: str) -> set[str]:
    done = subprocess.run(
        ["nsenter", f"--net={netns_path}", "tc", "-j", "qdisc", "show", "dev", ifname],
        capture_output=True, text=True, check=True, timeout=10,
    )
    return {q["kind"] for q in json.loads(done.stdout or "[]")}


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_lan_is_one_bridge_with_a_port_per_member_and_conditions_where_written(wgh_network, wgh_engine, wgh_backend):
    before = _open_files()
    net = wgh_network(OFFICE)
    # what the run holds stays within what the open-files check reserves for it
    kernel = sum(1 for wg in net.plan.wireguard.values() if caps.resolve_backend(wg.backend or wgh_backend) == "kernel")
    reserved = hostlimits.files_needed(len(net.plan.nodes) + len(net.plan.lans), kernel) - hostlimits.BASE_FILES
    assert _open_files() - before <= reserved
    run_id = net.plan.run_id
    (lan,) = net.plan.lans
    bridge = net.engine._bridges[lan.index]
    if wgh_engine in (None, "netns"):
        assert bridge.netns_path.endswith(lan_namespace_name(run_id, 1))
    links = {link.get_attr("IFLA_IFNAME"): link for link in bridge.netlink.get_links()}
    master = links["br0"]["index"]
    ports = [f"p{k}" for k in range(5)]
    assert all(links[p].get_attr("IFLA_MASTER") == master and links[p].get_attr("IFLA_OPERSTATE") == "UP" for p in ports)
    linkinfo = links["br0"].get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
    assert linkinfo.get_attr("IFLA_BR_STP_STATE") == 0
    # one subnet: the hub is host 1, spoke k host k+1, on the underlay, IPv4 and IPv6
    hub_v4, hub_v6 = (str(a.ip) for a in lan.member("hub").addresses)
    assert net.run("spoke4", ["ping", "-c1", "-W2", hub_v4]).returncode == 0
    assert net.run("spoke3", ["ping", "-6", "-c1", "-W2", hub_v6]).returncode == 0
    spoke1_v4 = str(lan.member("spoke1").addresses[0].ip)
    assert net.run("spoke4", ["ping", "-c1", "-W2", spoke1_v4]).returncode == 0  # member to member, no router
    # conditions: arriving at the hub on the bridge's p0; spoke2's own sending on its eth0; nothing elsewhere
    assert "tbf" in _qdisc_kinds(bridge.netns_path, "p0")
    assert "tbf" not in _qdisc_kinds(bridge.netns_path, "p1")
    assert "tbf" in _qdisc_kinds(net.node("spoke2").netns_path, "eth0")
    assert "tbf" not in _qdisc_kinds(net.node("spoke1").netns_path, "eth0")
    # WireGuard across it: every spoke reaches every other through the hub
    result = check(net, {"reach": {"among": [f"spoke{i}" for i in range(1, 5)], "within": "20s"}})
    assert result.ok, result.message
    assert not net.teardown()
    assert not any(harness_objects({run_id}).values())
