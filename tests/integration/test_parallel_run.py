"""`wgh run -j`: side by side, the same verdicts and diagnoses as one by one; a signal
stops every worker and tears every case down; a SIGKILLed parent's workers tear down
by themselves."""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from harness.cleanup import REGISTRY_DIR
from harness.processes import command_lines, parent_of, process_running, process_start_time
from harness.results.verdicts import verdicts

from .leftovers import harness_objects, run_records
from .placement import host_only

pytestmark = pytest.mark.requires("root", "wireguard")

# negative cases (diagnosed failures) among them: the causes must match too
FILES = [
    "scenarios/direct.yaml", "scenarios/no-endpoint.yaml", "scenarios/allowed-ips-mismatch.yaml",
    "scenarios/allowed-ips-source.yaml", "scenarios/handshake-not-traffic.yaml", "scenarios/nat.yaml",
    "scenarios/firewall-udp-blocked.yaml",
]

SLOW = textwrap.dedent(
    """
    name: slow-{n}
    nodes: {{a: {{}}, nat: {{nat: {{outside: b}}}}, b: {{}}}}
    links: [{{ends: [a, nat]}}, {{ends: [nat, b]}}]
    wireguard:
      a: {{peers: {{b: {{endpoint: b, persistent_keepalive: 1}}}}}}
      b: {{}}
    steps:
      - handshake: {{between: [a, b], within: 3s}}
      - sleep: 60s
    """
)


@host_only  # in the VM, CI's library runs side by side (pytest -n) and gets every declared verdict
def test_side_by_side_gives_the_verdicts_and_causes_of_one_by_one(wgh_cli):
    serial = wgh_cli("run", "--no-results", "--json", *FILES, timeout=300)
    parallel = wgh_cli("run", "--no-results", "--json", "-j", "4", *FILES, timeout=300)
    assert serial.returncode == parallel.returncode == 0, serial.stderr + parallel.stderr
    one, many = verdicts(json.loads(serial.stdout)), verdicts(json.loads(parallel.stdout))
    assert len(one) >= len(FILES)
    assert many == one
    assert any(cause for _, steps in one.values() for _, cause in steps), "some case failed for a named cause"


@host_only  # each shard runs its cases one by one: no kernel changes how they are dealt
def test_two_shards_merged_give_the_verdicts_and_causes_of_one_run(wgh_cli):
    one = verdicts(json.loads(wgh_cli("run", "--no-results", "--json", *FILES, timeout=300).stdout))
    shards = [wgh_cli("run", "--no-results", "--json", "--shard", f"{i}/2", *FILES, timeout=300) for i in (1, 2)]
    halves = [verdicts(json.loads(shard.stdout)) for shard in shards]
    assert all(halves), "both shards ran something"
    assert not set(halves[0]) & set(halves[1])
    assert {**halves[0], **halves[1]} == one


def _start_slow(wgh_cli, tmp_path: Path, count: int) -> tuple[subprocess.Popen, set[str]]:
    files = []
    for n in range(count):
        path = tmp_path / f"slow-{n}.yaml"
        path.write_text(SLOW.format(n=n))
        files.append(str(path))
    proc = subprocess.Popen([wgh_cli.path, "run", "--no-results", "-j", str(count), *files], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, _wait_for_cases(lambda pid: _descends_from(proc.pid, pid), count, proc)  # workers are forked by its zygote


def _wait_for_cases(ours, count: int, proc: subprocess.Popen) -> set[str]:
    """The runs of `count` cases, once all are built and sleeping, whose owner `ours` accepts."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        mine = {
            data["run_id"] for data in run_records()
            if ours(data["pid"]) and len(harness_objects({data["run_id"]})["namespaces"]) == 3
        }
        if len(mine) == count:
            time.sleep(0.5)  # handshakes done, sleeping
            return mine
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the cases never came up side by side")


def _descends_from(ancestor: int, pid: int | None) -> bool:
    while pid and pid > 1:
        if pid == ancestor:
            return True
        pid = parent_of(pid)
    return False


def _gone(runs: set[str], seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = {k: v for k, v in harness_objects(runs).items() if v}
        left.update({"records": [r for r in runs if (REGISTRY_DIR / f"{r}.json").exists()]} if any((REGISTRY_DIR / f"{r}.json").exists() for r in runs) else {})
        if not left:
            return {}
        time.sleep(0.1)
    return left


@host_only
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_every_worker_and_everything_is_torn_down(wgh_cli, tmp_path, signum):
    proc, runs = _start_slow(wgh_cli, tmp_path, 2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert "every case was torn down" in err, err
    assert _gone(runs, 5) == {}


@host_only
def test_a_sigkilled_parent_leaves_workers_that_tear_down_by_themselves(wgh_cli, tmp_path):
    proc, runs = _start_slow(wgh_cli, tmp_path, 2)
    zygotes = [(pid, process_start_time(pid)) for pid, argv in command_lines() if "harness.workers.zygote" in argv and parent_of(pid) == proc.pid]
    assert len(zygotes) == 1, "the workers were forked by the run's zygote"
    proc.kill()
    proc.wait()
    # no `wgh clean`: the zygote died with the parent, each worker got SIGTERM when the
    # zygote died, and tore its case down
    assert _gone(runs, 30) == {}
    deadline = time.monotonic() + 10
    while process_running(*zygotes[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_running(*zygotes[0]), "the zygote outlived the parent"


@host_only
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm-controller"])
def test_pytest_xdist_interrupted_tears_every_worker_down(tmp_path, how):
    """`pytest -n 2 scenarios/`: Ctrl-C at a terminal (SIGINT to the whole process group)
    or SIGTERM to pytest alone (a CI job cancelled): every worker's case is torn down,
    and nothing the run wrote is left in the temp directory (its own TMPDIR here)."""
    import os
    import sys

    pytest.importorskip("xdist")
    directory = tmp_path / "scenarios"
    directory.mkdir()
    for n in range(2):
        (directory / f"slow-{n}.yaml").write_text(SLOW.format(n=n))
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WGH_TEST_PAUSE", "PYTEST_"))}
    env["TMPDIR"] = str(private_tmp)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-results", "-n", "2",
         "--basetemp", str(tmp_path / "basetemp"), str(directory)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, start_new_session=True,
    )
    runs = _wait_for_cases(lambda pid: _descends_from(proc.pid, pid), 2, proc)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=90)
    assert _gone(runs, 30) == {}
    deadline = time.monotonic() + 10  # the workers may still be removing their last files
    while any(private_tmp.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(path.name for path in private_tmp.iterdir()) == []
