"""`wgh shell` through a real pseudo-terminal (pexpect): commands run inside nodes, the
harness's diagnosis and the remaining steps at the prompt, Mininet's CLI on that
engine; and whichever way the shell ends (exit, Ctrl-D, Ctrl-C at the prompt, a closed
terminal), nothing of the run is left."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest

from .leftovers import harness_objects, nothing_left
from .placement import host_only

pexpect = pytest.importorskip("pexpect")

pytestmark = [pytest.mark.requires("root", "wireguard"), host_only]  # the shell's mechanics, not the kernel's

SCENARIO = textwrap.dedent(
    """
    name: shelled
    nodes: {a: {}, r: {router: true}, b: {}}
    links: [{ends: [a, r]}, {ends: [r, b]}]
    wireguard:
      a: {peers: {b: {endpoint: b}}}
      b: {}
    steps:
      - handshake: {between: [a, b], within: 3s}
      - ping: {from: a, to: b, count: 2, interval: 50ms}
    """
)
PROMPT = "wgh> "


@pytest.fixture
def shell(wgh_cli, tmp_path: Path, wgh_engine):
    path = tmp_path / "shelled.yaml"
    path.write_text(SCENARIO)
    spawned = []

    def start(*args: str):
        engine = ("--engine", wgh_engine) if wgh_engine else ()
        child = pexpect.spawn(wgh_cli.path, ["shell", str(path), *engine, *args], encoding="utf-8", timeout=60, dimensions=(40, 200))
        spawned.append(child)
        child.expect(r"\(run ([a-z0-9]{6})\)")
        child.run_id = child.match.group(1)
        child.expect_exact(PROMPT)
        return child

    yield start
    for child in spawned:
        if child.isalive():
            child.terminate(force=True)


def _gone(run: str, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while not nothing_left({run}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return nothing_left({run})


def test_commands_run_inside_nodes_and_the_harness_answers_at_the_prompt(shell):
    child = shell("--until", "1")
    run = child.run_id
    assert harness_objects({run}), "the network is up while the prompt is"
    child.sendline("a ip -br addr show dev eth0")
    child.expect(r"198\.18\.1\.1/24")
    child.expect_exact(PROMPT)
    child.sendline("b ip -4 -o addr show | grep -c 100.64.0.2")  # through sh -c: pipes work
    child.expect(r"\r\n1\r\n")
    child.expect_exact(PROMPT)
    child.sendline("nodes")
    child.expect(r"r \(router\): underlay 198\.18\.1\.2/24, 198\.18\.2\.1/24")
    child.expect_exact(PROMPT)
    child.sendline("diagnose a b")
    child.expect(r"the tunnel a → b works: 2/2 replies")
    child.expect_exact(PROMPT)
    # break it by hand, as a user would to reproduce a failure: the diagnosis names the cause
    child.sendline("r nft 'add table inet x; add chain inet x f { type filter hook forward priority 0; udp dport 51820 drop; }'")
    child.expect_exact(PROMPT)
    child.sendline("steps")  # step 2: the ping, now through a router that drops WireGuard's UDP
    child.expect(r"\[(fail|unexpected-fail)\] step 2: ping a → b")
    child.expect_exact(PROMPT)
    child.sendline("nonsense")
    child.expect("unknown command or node 'nonsense'")
    child.expect_exact(PROMPT)
    child.sendline("exit")
    child.expect(f"torn down: everything run {run} built was removed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert _gone(run), harness_objects({run})


def test_ctrl_c_stops_a_command_not_the_shell(shell):
    child = shell()
    child.sendline("a sleep 30")
    time.sleep(0.5)
    child.sendintr()
    child.expect_exact(PROMPT, timeout=10)
    child.sendline("a echo still-here")
    child.expect("still-here")
    child.expect_exact(PROMPT)
    child.sendeof()  # Ctrl-D
    child.expect("torn down")
    child.expect(pexpect.EOF)
    assert _gone(child.run_id)


@pytest.mark.parametrize("ending", ["ctrl-c at the prompt", "closed terminal"])
def test_every_other_ending_tears_down(shell, ending):
    child = shell()
    run = child.run_id
    if ending == "ctrl-c at the prompt":
        child.sendintr()
        child.expect("torn down")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 130
    else:
        # the terminal goes away: the kernel hangs the shell up (SIGHUP), and it tears
        # down in its own time. Not child.close(): after 0.1 s that sends SIGINT as well,
        # and raises when a teardown under load takes longer (seen with Mininet in CI)
        child.ptyproc.fileobj.close()
        deadline = time.monotonic() + 60
        while child.ptyproc.isalive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not child.ptyproc.isalive(), "the shell did not end within 60 s of its terminal closing"
    assert _gone(run), f"{ending} left: {harness_objects({run})}"


def test_the_mininet_engine_offers_mininets_own_cli(wgh_cli, tmp_path):
    pytest.importorskip("mininet")
    path = tmp_path / "shelled.yaml"
    path.write_text(SCENARIO)
    child = pexpect.spawn(wgh_cli.path, ["shell", str(path), "--engine", "mininet"], encoding="utf-8", timeout=60, dimensions=(40, 200))
    try:
        child.expect(r"\(run ([a-z0-9]{6})\)")
        run = child.match.group(1)
        child.expect_exact(PROMPT)
        child.sendline("mininet")
        child.expect_exact("mininet> ")
        child.sendline("nodes")
        child.expect(re.escape(f"wgh-{run}-a wgh-{run}-b wgh-{run}-r"))
        child.expect_exact("mininet> ")
        child.sendline("exit")
        child.expect_exact(PROMPT)
        child.sendline("exit")
        child.expect("torn down")
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.terminate(force=True)
    assert _gone(run), harness_objects({run})
