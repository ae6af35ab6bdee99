"""Hosts reached over OpenSSH, simulated here (tests/integration/simhosts.py: a
namespace per host, its sshd started by ProxyCommand in inetd mode): the master
connection, the worker's session over it, a scenario run through a worker on
another host, and what a lost controller or an unknown host key does."""

from __future__ import annotations

import os
import signal
import time

import pytest

from harness.hosts.ssh import HostConnection, SshError
from harness.remote.client import RemoteEngine
from harness.run import run_case
from harness.scenario.load import load_data

from .leftovers import harness_objects
from .simhosts import namespace_of, simulated_hosts
from .test_remote_worker import UNDERLAY, _namespaces, _plan

pytestmark = pytest.mark.requires("root")


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
