"""A worker process builds a network and answers for its nodes over frames on a pipe:
exactly what `ssh host wgh worker` carries, without SSH. The controller's steps and
diagnosis act through the remote handles; the worker removes what it built when asked,
when its connection ends, and (by its watchdog) when it is killed."""

from __future__ import annotations

import errno
from pathlib import Path
import os
import signal
import time

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from harness.errors import HarnessError
from harness.net.echo import ping
from harness.plan.naming import new_run_id
from harness.plan.network import build_plan
from harness.remote.client import RemoteEngine, WorkerConnection
from harness.run import run_case
from harness.scenario.load import load_data

from .leftovers import assert_same_verdicts, harness_objects
from .placement import host_only

# the workers, SSH and placement are the harness's own machinery, the same on any
# kernel: on the host (the emulated VM would repeat them at 10-50x the cost)
pytestmark = [pytest.mark.requires("root"), host_only]

UNDERLAY = {
    "name": "remote-underlay",
    "nodes": {"a": {}, "r": {"router": True}, "b": {}},
    "links": [{"ends": ["a", "r"], "name": "left"}, {"ends": ["r", "b"]}],
    "steps": [
        {"ping": {"from": "a", "to": "b", "via": "underlay", "count": 3, "interval": "50ms"}},
        {"link": {"name": "left", "up": False}},
        {"ping": {"from": "a", "to": "b", "via": "underlay", "count": 1, "timeout": "300ms", "expect": "fail", "cause": "no-route"}},
        {"link": {"name": "left", "up": True}},
        {"wait_until": {"within": "5s", "ping": {"from": "a", "to": "b", "via": "underlay", "count": 1, "timeout": "300ms"}}},
    ],
}


def _namespaces(run_id: str) -> list[str]:
    return [name for name in os.listdir("/run/netns") if run_id in name] if os.path.isdir("/run/netns") else []


def _plan():
    (case,) = load_data(UNDERLAY)
    return case, build_plan(case.spec, new_run_id(), "wireguard-go", None)


def test_a_scenario_through_a_worker_passes_as_on_a_local_engine():
    (case,) = load_data(UNDERLAY)
    remote = run_case(case, engine_factory=lambda name: RemoteEngine(WorkerConnection(), name))
    local = run_case(case)
    assert remote.status == "passed", remote.report()
    assert [s.outcome for s in remote.steps] == [s.outcome for s in local.steps]
    assert remote.steps[2].diagnosed == "no-route"  # the diagnosis asked the remote node for its route
    assert remote.run_id and not remote.leftovers and not any(harness_objects({remote.run_id}).values())


def test_remote_node_answers_in_plain_data():
    _, plan = _plan()
    connection = WorkerConnection()
    engine = RemoteEngine(connection)
    try:
        engine.build(plan, None)
        assert connection.info["pid"] == connection.process.pid
        a, b = engine.node("a"), engine.node("b")
        # one machine, one monotonic clock: the offset measured at hello is ~0, within its bound
        assert abs(a.clock_offset) <= connection.clock_uncertainty + 0.002 and connection.clock_uncertainty < 0.5
        address = str(plan.ports["b"][0].addresses[0].ip)
        outcome = a.apply(ping, address, count=2, interval=0.05, timeout=1.0)  # a raw socket, opened where a is
        assert outcome.received == 2
        assert b.read_proc_net("snmp").count("Icmp:") == 2
        route = a.route_to(address)
        assert route is not None and route.oif == a.interface_index(plan.ports["a"][0].ifname)
        assert a.run(["sh", "-c", "echo $((6 * 7))"]).stdout.strip() == "42"
        assert _namespaces(plan.run_id)
        with pytest.raises(HarnessError, match="exists only there"):
            a.socket(2, 2)
        with pytest.raises(HarnessError, match="harness functions only"):
            a._ask("apply", "os:system", "true")
    finally:
        assert engine.close() == []
    assert not _namespaces(plan.run_id)
    assert connection.process.returncode == 0


def test_an_error_on_the_worker_comes_back_as_itself():
    _, plan = _plan()
    connection = WorkerConnection()
    engine = RemoteEngine(connection)
    try:
        engine.build(plan, None)
        with pytest.raises(NetlinkError) as raised:  # pyroute2's own, with the kernel's errno
            engine.node("a").interface_mtu(999999)
        assert raised.value.code == errno.ENODEV
        with pytest.raises(KeyError, match="nowhere"):
            connection.request("node", "nowhere", "run", (["true"],), {})
        with pytest.raises(HarnessError, match="does not answer 'popen'"):
            connection.request("node", "a", "popen", (["true"],), {})
    finally:
        engine.close()


def test_another_version_is_refused_at_hello():
    connection = WorkerConnection()
    try:
        with pytest.raises(HarnessError, match="install the same version there"):
            connection.request("hello", "0.0.1", "0" * 16)
    finally:
        connection.close()


@pytest.mark.parametrize("how", ["connection closed", "SIGTERM", "SIGKILL"])
def test_a_worker_leaves_nothing_when_its_controller_is_gone(how):
    _, plan = _plan()
    connection = WorkerConnection()
    RemoteEngine(connection).build(plan, None)
    assert _namespaces(plan.run_id)
    if how == "connection closed":  # the controller died, or SSH broke: EOF on the worker's stdin
        connection.process.stdin.close()
    elif how == "SIGTERM":  # a cancelled job, a host shutting down: it tears down itself
        os.kill(connection.process.pid, signal.SIGTERM)
    else:  # the worker itself is killed: its watchdog reaps its run
        os.kill(connection.process.pid, signal.SIGKILL)
    connection.process.wait(timeout=60)
    deadline = time.monotonic() + 30
    while _namespaces(plan.run_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _namespaces(plan.run_id)


# what a node elsewhere must do as a local one does: NAT and keepalive, probe streams
# through a roam, a capture's leak check, the MTU probe and iperf3, restarts and new keys,
# a DNS server and endpoints by name, reach across a LAN
LIBRARY = [
    "nat.yaml", "roaming.yaml", "wire-check.yaml", "mtu-blackhole.yaml", "peer-restart.yaml", "key-rotation.yaml", "dns-endpoint.yaml", "lan.yaml",
]


@pytest.mark.parametrize("file", LIBRARY)
def test_library_scenarios_through_a_worker_give_the_local_verdicts(file, wgh_backend):
    from harness.scenario.load import load_file

    path = Path(__file__).resolve().parents[2] / "scenarios" / file
    remote, local = [], []
    for case in load_file(path):
        remote.append(run_case(case, backend=wgh_backend, engine_factory=lambda name: RemoteEngine(WorkerConnection(), name)))
        local.append(run_case(case, backend=wgh_backend))
    assert_same_verdicts(remote, local)
