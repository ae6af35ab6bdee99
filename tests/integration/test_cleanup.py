"""Cleanup holds on success, failure, Ctrl-C, SIGTERM, timeout and SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from harness.cleanup import REGISTRY_DIR

from .leftovers import built_nodes, harness_objects, left_by_finished_runs, nothing_left
from .placement import host_only

pytestmark = pytest.mark.requires("root", "wireguard")

SLOW = textwrap.dedent(
    """
    name: slow
    nodes: {a: {}, nat: {nat: {outside: b}}, b: {}}
    links: [{ends: [a, nat]}, {ends: [nat, b]}]
    wireguard:
      a: {peers: {b: {endpoint: b, persistent_keepalive: 1}}}
      b: {}
    steps:
      - handshake: {between: [a, b], within: 30s}
      - sleep: 60s
    """
)


def _start(wgh_cli, tmp_path: Path, text: str = SLOW, engine: str = "netns") -> tuple[subprocess.Popen, str]:
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(text)
    proc = subprocess.Popen(
        [wgh_cli.path, "run", "--no-results", "--engine", engine, str(scenario)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120  # generous: a cold start under VM emulation takes seconds
    while time.monotonic() < deadline:
        for record in REGISTRY_DIR.glob("*.json"):
            try:
                data = json.loads(record.read_text())
            except (OSError, ValueError):
                continue
            if data["pid"] == proc.pid:
                run = data["run_id"]
                if len(built_nodes(run)) == 3:
                    time.sleep(0.5)  # well into the scenario: handshake done, sleeping
                    return proc, run
        if proc.poll() is not None:  # it ended before it was built: say why
            out, err = proc.communicate()
            raise AssertionError(f"the scenario ended (exit {proc.returncode}) before it was built:\n{out}\n{err}")
        time.sleep(0.05)
    proc.kill()
    out, err = proc.communicate()
    raise AssertionError(f"the scenario was not built within 120 s:\n{out}\n{err}")


def test_sigkill_leftovers_removed_by_wgh_clean(wgh_cli, tmp_path):
    proc, run = _start(wgh_cli, tmp_path)
    proc.kill()
    proc.wait()
    left = harness_objects({run})
    assert left["namespaces"], "a SIGKILLed run cannot clean up: its namespaces must still be there"
    result = wgh_cli("clean")
    assert result.returncode == 0, result.stderr
    if not _reaped_elsewhere():
        assert run in result.stdout, result.stdout
    assert nothing_left({run}), harness_objects({run})
    assert not (REGISTRY_DIR / f"{run}.json").exists()


@host_only
def test_sigkill_leftovers_reaped_by_next_run(wgh_cli, tmp_path):
    proc, run = _start(wgh_cli, tmp_path)
    proc.kill()
    proc.wait()
    assert harness_objects({run})["namespaces"]
    result = wgh_cli("run", "--no-results", "scenarios/direct.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert nothing_left({run}), harness_objects({run})


@host_only
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_tears_down(wgh_cli, tmp_path, signum):
    proc, run = _start(wgh_cli, tmp_path)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert nothing_left({run}), harness_objects({run})


@host_only
def test_timeout_tears_down(wgh_cli, tmp_path):
    scenario = tmp_path / "timeout.yaml"
    # a sleep far longer than any slow start: the budget must end it, however slow the machine
    scenario.write_text(SLOW.replace("sleep: 60s", "sleep: 900s") + "timeout: 2s\n")
    result = wgh_cli("run", "--no-results", str(scenario), timeout=450)  # TimeoutExpired: the sleep ran on
    assert result.returncode == 1
    assert "time budget of 2s" in result.stdout + result.stderr
    assert "could not remove" not in result.stdout + result.stderr
    assert not any(left_by_finished_runs().values()), left_by_finished_runs()


def test_failing_scenario_tears_down(wgh_cli, tmp_path):
    scenario = tmp_path / "fails.yaml"
    scenario.write_text(SLOW.replace("- sleep: 60s", "- ping: {from: a, to: b, via: underlay, count: 1, timeout: 300ms, family: 4, to: 100.64.99.1}").replace("to: b, via", "via"))
    result = wgh_cli("run", "--no-results", str(scenario))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "could not remove" not in result.stdout + result.stderr
    assert not any(left_by_finished_runs().values()), left_by_finished_runs()


@host_only
def test_parallel_runs_do_not_collide(wgh_cli):
    procs = [
        subprocess.Popen([wgh_cli.path, "run", "--no-results", "scenarios/direct.yaml", "scenarios/nat.yaml"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
        for _ in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
    assert not any(left_by_finished_runs().values()), left_by_finished_runs()


@host_only
def test_a_run_that_lost_its_record_is_reaped_with_every_process_inside_it(wgh_cli):
    """With its record gone (/run wiped), an orphaned run is found by its names; every
    process inside its namespaces goes first, whatever the program (a userspace
    implementation from a template, dnsmasq, iperf3), or the namespace would stay alive."""
    from harness.net import nsexec
    from harness.plan.naming import namespace_name, new_run_id

    namespace = namespace_name(new_run_id(), "x")
    nsexec.create_namespace(namespace)
    # not a wireguard-go: a program the old name-based sweep would never have found
    sleeper = nsexec.popen(namespace, ["sleep", "300"])
    try:
        cleaned = wgh_cli("clean")
        assert cleaned.returncode == 0, cleaned.stderr
        if not _reaped_elsewhere():
            assert str(sleeper.pid) in cleaned.stdout and namespace in cleaned.stdout, cleaned.stdout
        sleeper.wait(timeout=10)
        assert not nsexec.netns_path(namespace).exists()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
        if nsexec.netns_path(namespace).exists():
            nsexec.remove_namespace(namespace)


@host_only
def test_a_sigkilled_mininet_run_takes_its_hosts_with_it(wgh_cli, tmp_path):
    """A Mininet host is a shell holding an unnamed namespace: it dies with the harness
    (SIGHUP), and its namespace, veths and wireguard-go go with it; `wgh clean` only
    removes the record."""
    proc, run = _start(wgh_cli, tmp_path, engine="mininet")
    assert len(harness_objects({run})["mininet hosts"]) == 3 and not harness_objects({run})["namespaces"]
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while harness_objects({run})["mininet hosts"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not harness_objects({run})["mininet hosts"], "the host shells outlived the harness"
    result = wgh_cli("clean")
    assert result.returncode == 0, result.stderr
    assert nothing_left({run}), harness_objects({run})
    assert not (REGISTRY_DIR / f"{run}.json").exists()


@host_only
def test_a_mininet_host_whose_run_lost_its_record_is_reaped_with_what_runs_inside(wgh_cli):
    """Unnamed namespaces have no name to sweep: an orphaned run's Mininet host is found
    by its shell's name (mininet:wgh-<run>-<node>), and every process in the shell's
    namespace goes too."""
    from harness.plan.naming import namespace_name, new_run_id

    name = namespace_name(new_run_id(), "h1")
    # a stand-in for a host shell that lost its harness: bash in a new namespace, named
    # as Mininet names its shells, with a child inside that namespace
    shell = subprocess.Popen(["unshare", "--net", "--", "bash", "-c", "sleep 300 & wait", f"mininet:{name}"])
    try:
        deadline = time.monotonic() + 10
        while not any(n == name for _, n in _shells()) and time.monotonic() < deadline:
            time.sleep(0.02)
        inside = [pid for pid, n in _shells() if n == name]
        assert inside, "the stand-in shell did not start"
        cleaned = wgh_cli("clean")
        assert cleaned.returncode == 0, cleaned.stderr
        shell.wait(timeout=10)
        assert not any(n == name for _, n in _shells())
        if not _reaped_elsewhere():  # another worker's `wgh clean` may have swept it first
            assert str(shell.pid) in cleaned.stdout, cleaned.stdout
    finally:
        if shell.poll() is None:
            shell.kill()


def _reaped_elsewhere() -> bool:
    """Every build reaps first: under pytest -n a run of another worker may have removed
    the leftovers before this test's `wgh clean` (the test then checks they are gone)."""
    return bool(os.environ.get("PYTEST_XDIST_WORKER"))


def _shells() -> list[tuple[int, str]]:
    from .leftovers import mininet_shells

    return mininet_shells()
