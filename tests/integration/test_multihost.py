"""One topology over several (simulated) hosts: placed, each host's share built by
its worker over SSH, links between hosts carried by VXLAN, the same verdicts as on
one machine, nothing left on any host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.hosts.engine import MultiHostEngine
from harness.processes import command_lines
from harness.run import run_case
from harness.scenario.load import load_data, load_file

from .leftovers import assert_same_verdicts, harness_objects
from .placement import host_only
from .simhosts import simulated_hosts
from .test_remote_worker import UNDERLAY

# the workers, SSH and placement are the harness's own machinery, the same on any
# kernel: on the host (the emulated VM would repeat them at 10-50x the cost)
pytestmark = [pytest.mark.requires("root", "wireguard"), host_only]

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"


def test_a_link_between_hosts_carries_the_underlay_and_follows_the_timeline():
    """a on alpha, r and b on beta: the link a–r is a VXLAN tunnel; pulled down on
    both hosts, the diagnosis names the missing route; back up, a reaches b again."""
    (case,) = load_data(UNDERLAY)
    with simulated_hosts(["alpha", "beta"]) as inventory:
        engines = []

        def engine(name):
            engines.append(MultiHostEngine(inventory, fixed={"a": "alpha", "r": "beta", "b": "beta"}))
            return engines[-1]

        result = run_case(case, engine_factory=engine)
        assert result.status == "passed", result.report()
        assert engines[0].placement.host_of == {"a": "alpha", "r": "beta", "b": "beta"}
        assert_same_verdicts([result], [run_case(case)])


# lan.yaml: its office LAN (8 members) spans the three hosts, each member away from the
# bridge's host on a tunnel of its own (IPv4, IPv6, NAT and a rate on the bridge's port)
@pytest.mark.parametrize("file", ["nat.yaml", "hub-and-spoke.yaml", "lan.yaml"])
def test_library_scenarios_over_three_hosts_give_the_local_verdicts(file, wgh_backend):
    with simulated_hosts(["alpha", "beta", "gamma"]) as inventory:
        remote, local = [], []
        for case in load_file(SCENARIOS / file):
            remote.append(run_case(case, backend=wgh_backend, engine_factory=lambda name: MultiHostEngine(inventory)))
            local.append(run_case(case, backend=wgh_backend))
        assert_same_verdicts(remote, local)
        for result in remote:
            assert len(set(result.spread.placement.values())) > 1, result.spread.placement
            for lan in result.case.spec.lans:
                assert len({result.spread.placement[m] for m in lan.members}) > 1, "the LAN spans hosts"


def test_an_inner_mtu_the_hosts_network_cannot_carry_stops_the_build():
    spec = {**UNDERLAY, "links": [{"ends": ["a", "r"], "name": "left", "mtu": 1590}, {"ends": ["r", "b"]}], "steps": []}
    (case,) = load_data(spec)
    with simulated_hosts(["alpha", "beta"]) as inventory:
        result = run_case(case, engine_factory=lambda name: MultiHostEngine(inventory, fixed={"a": "alpha", "r": "beta", "b": "beta"}))
        assert result.status == "error" and "needs 1640 with VXLAN" in (result.error or ""), result.error
        assert "mtu: 1550" in result.error
        assert not any(harness_objects({result.run_id}).values())


def test_wgh_run_hosts_says_where_each_node_went(wgh_cli):
    with simulated_hosts(["alpha", "beta"]) as inventory:
        done = wgh_cli("run", "--hosts", inventory.file, "--no-results", "-q", "scenarios/nat.yaml", timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "nat: placed alpha: " in done.stderr and "nat: placed beta: " in done.stderr
        assert "between hosts (VXLAN)" in done.stderr


PLACED = """\
name: placed
nodes:
  a: {}
  r: {router: true}
  b: {}
links:
  - {ends: [a, r]}
  - {ends: [r, b]}
wireguard:
  a: {peers: {b: {endpoint: b}}}
  b: {peers: {a: {}}}
placement:
  beta: [a]
  alpha: [r, b]
steps:
  - handshake: {between: [a, b]}
  - ping: {from: a, to: b}
"""


def test_a_files_placement_is_kept_side_by_side_and_recorded(wgh_cli, tmp_path):
    """`placement:` puts the nodes on the hosts it names (a WireGuard pair split on
    purpose), with -j 2 (each case's worker its own controller of all the hosts), and
    results.json says where each node ran."""
    scenario = tmp_path / "placed.yaml"
    scenario.write_text(PLACED)
    with simulated_hosts(["alpha", "beta"]) as inventory:
        done = wgh_cli("run", "--hosts", inventory.file, "-j", "2", "--results-dir", str(tmp_path / "results"), "-q", str(scenario), "scenarios/nat.yaml", timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "placed: placed alpha: r, b (2 nodes)" in done.stderr and "placed: placed beta: a (1 node)" in done.stderr
        (results,) = (tmp_path / "results").glob("*/results.json")
        cases = {case["id"]: case for case in json.loads(results.read_text())["scenarios"]}
        assert cases["placed"]["placement"] == {"a": "beta", "r": "alpha", "b": "alpha"}
        assert set(cases["nat"]["placement"].values()) == {"alpha", "beta"}, "nat's nodes went to both hosts"


def test_a_placement_naming_a_host_the_inventory_lacks_is_refused_with_its_line(wgh_cli, tmp_path):
    scenario = tmp_path / "placed.yaml"
    scenario.write_text(PLACED.replace("  beta: [a]", "  gamma: [a]"))
    with simulated_hosts(["alpha", "beta"]) as inventory:
        done = wgh_cli("run", "--hosts", inventory.file, "--no-results", str(scenario), timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"{scenario}:13: placement.gamma: host 'gamma' is not in the inventory" in done.stderr


def test_the_pytest_plugin_spreads_scenarios_over_wg_hosts(tmp_path):
    """`pytest --wg-hosts FILE scenarios/…`: each scenario item over the hosts."""
    with simulated_hosts(["alpha", "beta", "gamma"]) as inventory:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--wg-hosts", inventory.file,
             "--results-dir", str(tmp_path), str(SCENARIOS / "nat.yaml")],
            capture_output=True, text=True, timeout=300, cwd=REPO,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    (results,) = tmp_path.glob("*/results.json")
    (case,) = json.loads(results.read_text())["scenarios"]
    assert case["status"] == "passed" and len(set(case["placement"].values())) > 1, case.get("placement")


def _our_ssh_processes(inventory_file: str) -> list[int]:
    """ssh processes of a run over these simulated hosts (their ProxyCommand names the
    hosts' private directory)."""
    private = str(Path(inventory_file).parent)
    return [pid for pid, argv in command_lines() if argv and Path(argv[0]).name == "ssh" and private in " ".join(argv)]


# alone: a controller killed on purpose leaves a crashed run, which any other test's
# build would reap first (this one must find it to `wgh clean --hosts`)
@pytest.mark.alone
@pytest.mark.parametrize("after", [0.5, 1.5, 3.0, 6.0])
def test_a_controller_killed_at_any_moment_leaves_nothing_on_any_host(after, wgh_cli):
    """SIGKILL `wgh run --hosts` while it builds, runs or tears down: its ssh processes
    die with it (a death signal), every worker sees its connection end and removes its
    share; what is left (the controller's own record) goes with `wgh clean --hosts`."""
    with simulated_hosts(["alpha", "beta", "gamma"]) as inventory:
        ours = set(os.listdir("/run/netns"))  # the simulated hosts' own
        wgh = str(Path(sys.executable).parent / "wgh")
        run = subprocess.Popen([wgh, "run", "--hosts", inventory.file, "--no-results", "-q", "scenarios/nat-keepalive.yaml"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        time.sleep(after)
        run.kill()
        run.wait()
        done = wgh_cli("clean", "--hosts", inventory.file, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (set(os.listdir("/run/netns")) - ours or _our_ssh_processes(inventory.file)):
            time.sleep(0.2)
        assert set(os.listdir("/run/netns")) - ours == set()
        assert _our_ssh_processes(inventory.file) == []
        assert not [p for p in Path("/tmp").glob("wgh-*-ssh-*")]
