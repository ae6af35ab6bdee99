"""Hosts reached over OpenSSH, simulated here (tests/integration/simhosts.py: a
namespace per host, its sshd started by ProxyCommand in inetd mode): the master
connection, the worker's session over it, a scenario run through a worker on
another host, and what a lost controller or an unknown host key does."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from harness.hosts.ssh import HostConnection, SshError
from harness.processes import command_lines
from harness.remote.client import RemoteEngine
from harness.run import run_case
from harness.scenario.load import load_data

from .leftovers import harness_objects
from .placement import host_only
from .simhosts import namespace_of, simulated_hosts
from .test_remote_worker import UNDERLAY, _namespaces, _plan

# the workers, SSH and placement are the harness's own machinery, the same on any
# kernel: on the host (the emulated VM would repeat them at 10-50x the cost)
pytestmark = [pytest.mark.requires("root"), host_only]


def test_a_worker_over_ssh_runs_in_its_host_and_builds_a_scenario_there():
    with simulated_hosts(["alpha"]) as inventory:
        connection = HostConnection(inventory.hosts["alpha"]).open()
        try:
            assert connection.run(["sh", "-c", "echo $SSH_CONNECTION | wc -w"]).stdout.strip() == "4"
            (case,) = load_data(UNDERLAY)
            workers = []

            def engine(name):
                workers.append(connection.worker())
                return RemoteEngine(workers[-1], name)

            result = run_case(case, engine_factory=engine)
            assert result.status == "passed", result.report()
            assert workers[0].info["pid"] != workers[0].process.pid  # the worker is sshd's child there, not ours
            assert not result.leftovers and not any(harness_objects({result.run_id}).values())
        finally:
            connection.close()


def test_the_worker_lives_in_the_hosts_namespace():
    with simulated_hosts(["alpha"]) as inventory:
        connection = HostConnection(inventory.hosts["alpha"]).open()
        try:
            worker = connection.worker()
            host_namespace = [n for n in os.listdir("/run/netns") if n.endswith("-host-alpha")][0]
            assert namespace_of(worker.info["pid"]) == os.stat(f"/run/netns/{host_namespace}").st_ino
            worker.close()
        finally:
            connection.close()


def test_a_lost_controller_leaves_nothing_on_the_host():
    """The master connection dies (the controller was killed): the worker's session
    ends, the worker sees its stdin close and removes what it built."""
    _, plan = _plan()
    with simulated_hosts(["alpha"]) as inventory:
        connection = HostConnection(inventory.hosts["alpha"]).open()
        worker = connection.worker()
        RemoteEngine(worker).build(plan, None)
        assert _namespaces(plan.run_id)
        pid = worker.info["pid"]
        os.kill(connection.master.pid, signal.SIGKILL)  # as a SIGKILLed controller's child would be left
        deadline = time.monotonic() + 30
        while (_namespaces(plan.run_id) or os.path.exists(f"/proc/{pid}")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _namespaces(plan.run_id) and not os.path.exists(f"/proc/{pid}")
        worker.close(timeout=5)
        connection.close()


def test_an_unknown_host_key_is_refused_with_sshs_words(tmp_path):
    with simulated_hosts(["alpha"]) as inventory:
        empty = tmp_path / "known_hosts"
        empty.write_text("")
        from dataclasses import replace

        stranger = replace(inventory.hosts["alpha"], known_hosts=str(empty))
        refused = HostConnection(stranger)
        with pytest.raises(SshError, match="Host key verification failed"):
            refused.open(timeout=20)
        assert not refused.control_dir.exists() and refused.master is None


def _processes_of_run(run_id: str) -> list[tuple[int, str]]:
    """(pid, what) of a run's worker-side processes: its watchdog (which names the run's
    record) and the worker (found through its namespaces' owner: the record's pid)."""
    found = []
    for pid, argv in command_lines():
        line = " ".join(argv)
        if "harness.watchdog" in line and f"/{run_id}." in line:  # its record: <run>.worker-<pid>.json
            found.append((pid, "watchdog"))
    return found


# alone: any run's build reaps crashed runs first, and these are crashed runs on
# purpose (simulated hosts share this kernel): no other test may build meanwhile
@pytest.mark.alone
def test_wgh_clean_on_each_host_removes_what_a_dead_worker_and_its_watchdog_left():
    """Worst case: the worker and its watchdog both SIGKILLed (the host's OOM killer,
    say). Each host's own `wgh clean`, run over SSH, removes its leftovers and says so."""
    from harness.hosts.clean import clean_hosts
    from harness.hosts.inventory import load_inventory

    with simulated_hosts(["alpha", "beta"]) as inventory:
        plans, opened = {}, []
        for name in ("alpha", "beta"):  # both built before either dies: a build reaps dead runs
            _, plans[name] = _plan()
            connection = HostConnection(inventory.hosts[name]).open()
            worker = connection.worker()
            RemoteEngine(worker).build(plans[name], None)
            opened.append((name, connection, worker))
        for name, connection, worker in opened:
            for pid, _ in _processes_of_run(plans[name].run_id):
                os.kill(pid, signal.SIGKILL)  # the watchdog first: else it reaps at once
            os.kill(worker.info["pid"], signal.SIGKILL)
            worker.close(timeout=5)
            connection.close()
            assert _namespaces(plans[name].run_id)
        reports = {r.host: r for r in clean_hosts(load_inventory(inventory.file))}
        assert all(r.ok for r in reports.values()), reports
        # simulated hosts share this kernel: the first host's clean may reap both runs
        reaped = " ".join(r.report for r in reports.values())
        assert plans["alpha"].run_id in reaped and plans["beta"].run_id in reaped
        assert not _namespaces(plans["alpha"].run_id) and not _namespaces(plans["beta"].run_id)


def test_wgh_clean_hosts_names_a_host_it_cannot_reach_and_a_wrong_inventory(tmp_path, wgh_cli):
    with simulated_hosts(["alpha"]) as inventory:
        done = wgh_cli("clean", "--hosts", inventory.file, timeout=120)
        assert done.returncode == 0 and "host alpha: " in done.stdout, done.stderr
        broken = tmp_path / "hosts.yaml"
        text = Path(inventory.file).read_text().replace(inventory.hosts["alpha"].known_hosts, str(tmp_path / "empty"))
        (tmp_path / "empty").write_text("")
        broken.write_text(text)
        done = wgh_cli("clean", "--hosts", str(broken), timeout=120)
        assert done.returncode == 1 and "host alpha: not cleaned" in done.stderr and "Host key verification failed" in done.stderr
    (tmp_path / "wrong.yaml").write_text("hosts:\n  alpha: {port: 0}\n")
    done = wgh_cli("clean", "--hosts", str(tmp_path / "wrong.yaml"), timeout=60)
    assert done.returncode == 2 and "wrong.yaml:2" in done.stderr and "hosts.alpha.port" in done.stderr
