"""The userspace backend: any UAPI-speaking implementation started from a command
template, proven here with wireguard-go behind the template (and with commands that
fail in each way a real implementation can)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.backends import USERSPACE, UserspaceCommand
from harness.run import run_case
from harness.scenario.load import load_data

from .placement import host_only

pytestmark = pytest.mark.requires("root", "wireguard_go")
# the template's mechanics do not depend on the kernel: on the host only, except for
# interop with kernel WireGuard, which only a VM has (saves ~2 min of emulated VM time)

WIREGUARD_GO = UserspaceCommand.parse("wireguard-go -f {ifname}")


def _pair(**a_settings) -> dict:
    return {
        "nodes": {"a": {}, "b": {}},
        "links": [{"ends": ["a", "b"]}],
        "wireguard": {"a": {"peers": {"b": {"endpoint": "b"}}, **a_settings}, "b": {}},
        "steps": [{"handshake": {"between": ["a", "b"]}}, {"ping": {"from": "a", "to": "b", "count": 2, "interval": "50ms"}}],
    }


def _run(data: dict, backend: str = USERSPACE, userspace: UserspaceCommand | None = WIREGUARD_GO):
    return run_case(load_data(data)[0], backend=backend, userspace=userspace)


@host_only
def test_wireguard_go_behind_the_template_passes_and_is_recorded_as_userspace():
    result = _run(_pair())
    assert result.status == "passed", result.report()
    assert result.backends == {"a": USERSPACE, "b": USERSPACE}
    assert result.leftovers == []


@host_only
def test_a_node_can_ask_for_userspace_while_its_peer_uses_the_run_backend():
    result = _run(_pair(backend=USERSPACE), backend="wireguard-go")
    assert result.status == "passed", result.report()
    assert result.backends == {"a": USERSPACE, "b": "wireguard-go"}


@host_only
def test_without_a_command_or_with_a_missing_program_the_case_is_skipped_and_says_why():
    no_command = _run(_pair(), userspace=None)
    assert no_command.status == "skipped" and "--userspace" in no_command.error
    missing = _run(_pair(), userspace=UserspaceCommand.parse("no-such-wireguard --fg {ifname}"))
    assert missing.status == "skipped" and "'no-such-wireguard' is not on PATH" in missing.error


@host_only
def test_a_daemon_that_exits_at_once_is_a_build_error_that_names_it():
    result = _run(_pair(), userspace=UserspaceCommand.parse("false {ifname}"))
    assert result.status == "error"
    assert "userspace for wgh" in result.error and "exited with 1" in result.error
    assert result.leftovers == []
    forked = _run(_pair(), userspace=UserspaceCommand.parse("true {ifname}"))  # as a daemon that went to the background
    assert forked.status == "error" and "exited with 0; it must stay in the foreground" in forked.error


@host_only
def test_a_daemon_that_never_serves_its_socket_is_stopped_at_teardown():
    # sh runs `sleep` with the interface name as $0: alive, but no UAPI socket ever
    result = _run(_pair(), userspace=UserspaceCommand.parse("sh -c 'exec sleep 60' {ifname}"))
    assert result.status == "error" and "did not listen on its UAPI socket" in result.error
    assert result.leftovers == []


@host_only
def test_wgh_run_records_the_template_in_results(tmp_path):
    scenario = tmp_path / "pair.yaml"
    scenario.write_text(json.dumps(_pair()))
    completed = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--backend", USERSPACE, "--userspace", WIREGUARD_GO.template,
         "--results-dir", str(tmp_path / "results"), "--run-id", "r1", "-q", str(scenario)],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads((tmp_path / "results" / "r1" / "results.json").read_text())
    assert results["environment"]["backend_requested"] == USERSPACE
    assert results["environment"]["userspace_command"] == WIREGUARD_GO.template
    assert results["scenarios"][0]["backends"] == {"a": USERSPACE, "b": USERSPACE}


@host_only
def test_wgh_run_refuses_a_template_without_the_interface(tmp_path):
    scenario = tmp_path / "pair.yaml"
    scenario.write_text(json.dumps(_pair()))
    completed = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--backend", USERSPACE, "--userspace", "wireguard-go -f wg0", str(scenario)],
        capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 2
    assert "--userspace" in completed.stderr and "{ifname}" in completed.stderr


@pytest.mark.requires("kernel_wireguard")
def test_userspace_interoperates_with_kernel_wireguard():
    result = _run(_pair(backend=USERSPACE), backend="kernel")
    assert result.status == "passed", result.report()
    assert result.backends == {"a": USERSPACE, "b": "kernel"}
