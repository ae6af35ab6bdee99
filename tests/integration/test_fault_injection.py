"""Fault injection: `wgh run` killed with SIGINT, SIGTERM and SIGKILL at each phase
boundary (a test hook stops the run exactly there: WGH_TEST_PAUSE_AT) and at random
moments. After SIGINT/SIGTERM nothing of the run remains and the message says so
truthfully; after SIGKILL the watchdog or `wgh clean` removes everything; the host's
own namespace and settings are unchanged throughout."""

from __future__ import annotations

import glob
import os
import random
import signal
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from harness.cleanup import REGISTRY_DIR
from harness.processes import process_running, process_start_time

from .hoststate import differences, snapshot
from .leftovers import harness_objects, run_records
from .placement import host_only

pytestmark = [
    pytest.mark.requires("root", "wireguard"),
    # signals, process groups and cleanup are the harness's, not the kernel's: under VM
    # emulation these ~40 runs would cost ten minutes and show nothing new
    host_only,
]

# every kind of object a run makes: namespaces, veths, NAT rules (nftables), WireGuard
# devices (wireguard-go processes and sockets), a dnsmasq that drops privileges, a work dir
SCENARIO = textwrap.dedent(
    """
    name: fault
    nodes:
      client: {}
      home: {nat: {outside: isp}}
      isp: {router: true, dns: {server.wgh.test: server}}
      server: {}
    links:
      - {ends: [client, home]}
      - {ends: [home, isp]}
      - {ends: [isp, server]}
    wireguard:
      server: {}
      client: {peers: {server: {endpoint: "server.wgh.test:51820", persistent_keepalive: 1}}}
    steps:
      - handshake: {between: [client, server], within: 5s}
      - ping: {from: client, to: server, count: 2, interval: 50ms}
    """
)
PHASES = ["startup", "validate", "build", "steps", "teardown-start", "teardown-middle"]
KILLS = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}


@pytest.fixture(scope="module")
def host_before():
    """The host as it was before any fault was injected; compared once all have run."""
    before = snapshot()
    yield before
    assert differences(before, snapshot()) == {}, "a killed run changed the host"


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "fault.yaml"
    path.write_text(SCENARIO)
    return path


def _start(wgh_cli, scenario: Path, pause_at: str | None, signals: int = 1, pause_seconds: float | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WGH_TEST_PAUSE")}
    if pause_at:
        env["WGH_TEST_PAUSE_AT"] = pause_at
        env["WGH_TEST_PAUSE_SIGNALS"] = str(signals)
    if pause_seconds is not None:
        env["WGH_TEST_PAUSE_SECONDS"] = str(pause_seconds)
    return subprocess.Popen(
        [wgh_cli.path, "run", "--no-results", "--backend", "wireguard-go", str(scenario)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _wait_for_checkpoint(proc: subprocess.Popen, phase: str) -> str:
    """The run id the paused run announces (empty before a run id exists)."""
    lines = []
    deadline = time.monotonic() + 120  # cold starts under VM emulation are slow
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(f"WGH-CHECKPOINT {phase}"):
            parts = line.split()
            return parts[2] if len(parts) > 2 else ""
    proc.kill()
    raise AssertionError(f"the run never reached {phase}: {''.join(lines)}")


def _runs_of(proc_pid: int) -> set[str]:
    return {data["run_id"] for data in run_records() if data.get("pid") == proc_pid}


def _everything_of(run: str) -> dict[str, list[str]]:
    left = {k: v for k, v in harness_objects({run}).items() if v}
    if (REGISTRY_DIR / f"{run}.json").exists():
        left["record"] = [str(REGISTRY_DIR / f"{run}.json")]
    dirs = glob.glob(os.path.join(tempfile.gettempdir(), f"wgh-{run}-*"))
    if dirs:
        left["work dirs"] = dirs
    return left


def _wait_until_gone(run: str, seconds: float) -> dict[str, list[str]]:
    deadline = time.monotonic() + seconds
    while (left := _everything_of(run)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("kill", KILLS)
def test_killed_at_each_phase_leaves_nothing(wgh_cli, scenario, host_before, phase, kill):
    proc = _start(wgh_cli, scenario, phase)
    run = _wait_for_checkpoint(proc, phase)
    runs = ({run} if run else set()) | _runs_of(proc.pid)
    proc.send_signal(KILLS[kill])
    out, err = proc.communicate(timeout=60)
    if kill == "sigkill":
        assert proc.returncode == -signal.SIGKILL
        cleaned = wgh_cli("clean")  # the documented cleanup after a SIGKILL
        assert cleaned.returncode == 0, cleaned.stderr
    else:
        assert proc.returncode == 130, out + err
        assert "Traceback" not in err, err
        if phase not in ("startup", "validate"):  # nothing built yet
            assert "everything run" in err and "was torn down" in err, err
            assert "could not remove" not in err
    for run in runs:  # none at all: not a record, a namespace, a process, a socket or a directory
        assert _everything_of(run) == {}, f"{kill} at {phase} left: {_everything_of(run)}"


def test_sigkill_with_dnsmasq_is_reaped_at_once_by_the_watchdog(wgh_cli, scenario, host_before):
    """dnsmasq drops privileges, so PR_SET_PDEATHSIG no longer reaches it: the run's
    watchdog removes it (and everything else) without waiting for `wgh clean`."""
    proc = _start(wgh_cli, scenario, "steps")
    run = _wait_for_checkpoint(proc, "steps")
    assert harness_objects({run})["dnsmasq"], "the scenario runs a dnsmasq"
    proc.kill()
    proc.wait()
    assert _wait_until_gone(run, 10) == {}


def test_second_signal_during_teardown_is_deferred(wgh_cli, scenario, host_before):
    proc = _start(wgh_cli, scenario, "teardown-start")
    run = _wait_for_checkpoint(proc, "teardown-start")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "finishing the teardown first" in err
    assert _everything_of(run) == {}


def test_third_signal_aborts_the_teardown_and_says_what_is_left(wgh_cli, scenario, host_before):
    proc = _start(wgh_cli, scenario, "teardown-middle", signals=3)
    run = _wait_for_checkpoint(proc, "teardown-middle")
    for _ in range(3):
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "teardown aborted by a third signal" in err and f"run {run}" in err and "wgh clean" in err, err
    assert "namespaces (" in err, "the message names what the aborted teardown left"
    # what the abort left is the watchdog's (this run has one, for its dnsmasq); `wgh clean` is the fallback
    _wait_until_gone(run, 10)
    assert wgh_cli("clean").returncode == 0
    assert _everything_of(run) == {}


@pytest.mark.parametrize("attempt", range(8))
def test_killed_at_a_random_moment_leaves_nothing(wgh_cli, scenario, host_before, attempt):
    """A random moment of the run, counted from its startup checkpoint (announced, not
    paused at): before it, a signal lands in Python's own start-up, before any code of
    ours can run (a loaded soak sent SIGINT there: a traceback from inside an import).
    The import of the harness is test_interrupts' (harness.entry notes the signal)."""
    rng = random.Random(attempt)
    kill = rng.choice(list(KILLS))
    delay = rng.uniform(0.0, 2.5)
    proc = _start(wgh_cli, scenario, "startup", pause_seconds=0)
    _wait_for_checkpoint(proc, "startup")
    time.sleep(delay)
    runs = _runs_of(proc.pid)
    proc.send_signal(KILLS[kill])
    out, err = proc.communicate(timeout=60)
    if kill == "sigkill":
        assert wgh_cli("clean").returncode == 0
    else:
        assert proc.returncode in (0, 130), err  # 0: it had finished before the signal came
        assert "Traceback" not in err, err
    assert not _runs_of(proc.pid), "a record of the killed run remains"
    for run in runs:
        assert _everything_of(run) == {}, f"{kill} after {delay:.2f}s left: {_everything_of(run)}"


@pytest.mark.parametrize("phase", ["build", "steps", "teardown-start", "teardown-middle"])
@pytest.mark.parametrize("kill", ["sigint", "sigterm"])
def test_pytest_plugin_interrupted_leaves_nothing(tmp_path, host_before, phase, kill):
    """The same promise under `pytest scenarios/`: torn down, and the session stops."""
    import sys

    directory = tmp_path / "scenarios"  # the plugin collects YAML under a `scenarios` folder
    directory.mkdir()
    (directory / "fault.yaml").write_text(SCENARIO)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WGH_TEST_PAUSE", "PYTEST_"))}
    env.update(WGH_TEST_PAUSE_AT=phase, WGH_TEST_PAUSE_SIGNALS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "--no-results", "--wg-backend", "wireguard-go", str(directory)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )
    run = _wait_for_checkpoint(proc, phase)
    proc.send_signal(KILLS[kill])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err  # pytest's "interrupted"
    assert "was torn down" in err, out + err
    assert _everything_of(run) == {}, f"{kill} at {phase} under pytest left: {_everything_of(run)}"


def test_wgh_matrix_on_the_host_passes_the_signal_on_and_waits(wgh_cli, scenario, host_before, tmp_path):
    """`wgh matrix --kernels host` runs `wgh run` as a child: SIGTERM to the matrix must
    reach the child as a signal it tears down on (not a SIGKILL), and be waited for."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WGH_TEST_PAUSE")}
    env.update(WGH_TEST_PAUSE_AT="steps")
    proc = subprocess.Popen(
        [wgh_cli.path, "matrix", "--kernels", "host", "--backends", "wireguard-go", "--results-dir", str(tmp_path / "results"), str(scenario)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    run = _wait_for_checkpoint(proc, "steps")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "was torn down" in err, err
    assert _everything_of(run) == {}


# the same network with a throughput step: iperf3 is never recorded (it dies with the
# harness, and anything left is found inside the run's namespaces or by its owner)
WITH_IPERF3 = SCENARIO.replace(
    "  - ping: {from: client, to: server, count: 2, interval: 50ms}",
    "  - iperf3: {from: client, to: server, seconds: 1}",
)
assert WITH_IPERF3 != SCENARIO
DAEMONS = {"dnsmasq": SCENARIO, "wireguard-go": SCENARIO, "iperf3": WITH_IPERF3}


@pytest.mark.parametrize("offset", [None, 0.0, 0.003, 0.01, 0.03])
@pytest.mark.parametrize("daemon", DAEMONS)
def test_sigkill_around_a_daemon_start_leaves_nothing_after_wgh_clean(wgh_cli, tmp_path, host_before, daemon, offset):
    """SIGKILL just after the harness forked a daemon: exactly between its start and its
    record (offset None: the run waits there), or that long after the moment it was
    started. Whatever is left, `wgh clean` ends and says so (the watchdog may be first,
    for dnsmasq), and nothing of the run remains."""
    scenario = tmp_path / "fault.yaml"
    scenario.write_text(DAEMONS[daemon])
    proc = _start(wgh_cli, scenario, f"{daemon}-started", pause_seconds=None if offset is None else 0)
    run = _wait_for_checkpoint(proc, f"{daemon}-started")
    if offset:
        time.sleep(offset)
    proc.kill()
    proc.communicate(timeout=60)
    cleaned = wgh_cli("clean")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert _everything_of(run) == {}, f"SIGKILL {offset}s after {daemon} started left: {_everything_of(run)}; wgh clean said: {cleaned.stdout}"


def test_wgh_clean_ends_a_process_whose_harness_died_unrecorded(wgh_cli, marked_child_starter):
    """A process the harness started and never recorded, outside any namespace of a run
    (the case of a dnsmasq whose namespace the watchdog removed): found by the owner it
    carries in its environment, ended, and named."""
    owner, child = marked_child_starter()
    assert process_running(child, process_start_time(child))
    owner.kill()
    owner.wait()
    assert process_running(child, process_start_time(child)), "outlives its owner (no PDEATHSIG, as dnsmasq)"
    cleaned = wgh_cli("clean")
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"sleep {child} (started by harness process {owner.pid}, which is gone)" in cleaned.stdout, cleaned.stdout
    assert process_start_time(child) is None or not process_running(child, process_start_time(child))
