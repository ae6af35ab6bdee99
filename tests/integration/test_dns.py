"""DNS inside the test network: dnsmasq confined to its node, names resolved inside the
resolving node, records following a renumbered node, and no dnsmasq left behind after
success, failure, Ctrl-C or SIGKILL."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import textwrap
import time
from ipaddress import ip_address
from pathlib import Path

import pytest

from harness.cleanup import REGISTRY_DIR
from harness.net import dns, nsexec
from harness.net.dnswire import DnsError
from harness.run import run_case
from harness.scenario.load import load_text
from harness.steps.checks import check

from .leftovers import dnsmasq_processes, harness_objects, nothing_left
from .placement import host_only

pytestmark = pytest.mark.requires("root", "wireguard")

TOPOLOGY = """\
nodes:
  client: {}
  isp: {router: true, dns: {server.wgh.test: server}}
  server: {}
links:
  - {ends: [client, isp]}
  - {ends: [isp, server]}
wireguard:
  server: {}
  client: {peers: {server: {endpoint: "server.wgh.test:51820"}}}
"""


def _udp_tcp_listeners(pid: int, port: int) -> set[str]:
    """Local addresses with a socket bound to `port` in the process's namespace."""
    found = set()
    for table in ("udp", "tcp", "udp6", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local = line.split()[1]
            host, _, hex_port = local.rpartition(":")
            if int(hex_port, 16) != port:
                continue
            raw = bytes.fromhex(host)
            if len(raw) == 4:
                found.add(str(ip_address(raw[::-1])))
            else:  # /proc prints IPv6 as four host-order 32-bit words
                found.add(str(ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))))
    return found


def test_dnsmasq_is_confined_resolution_happens_inside_and_records_follow(wgh_network):
    import yaml

    net = wgh_network(yaml.safe_load(TOPOLOGY))
    (server,) = dns.servers(net)
    pid = server.pid()
    # inside the isp node's namespace, as user nobody, bound to isp's addresses only
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(nsexec.netns_path(net.node("isp").netns_path)).st_ino
    uids = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:")).split()[1:]
    assert set(map(int, uids)) == {pwd.getpwnam("nobody").pw_uid}
    isp_addresses = {str(a.ip) for p in net.plan.ports["isp"] for a in p.addresses}
    assert _udp_tcp_listeners(pid, 53) == isp_addresses  # no wildcard, no loopback

    old = net.plan.underlay_address("isp", "server")
    found = dns.resolve_in(net, "client", "server.wgh.test")
    assert (found.server, found.address) == ("isp", old)
    assert found.server_address == net.plan.underlay_address("client", "isp")
    # no upstream: a name it does not own is answered NXDOMAIN, never forwarded
    with pytest.raises(DnsError, match="NXDOMAIN"):
        dns.resolve(net.node("client").netns_path, found.server_address, "example.com")
    # the WireGuard endpoint was set from that resolution
    key = net.wireguard.public_key("server")
    assert net.wireguard.devices["client"].status().peer(key).endpoint == f"{old}:51820"

    new = net.engine.renumber("server")
    assert dns.follow_addresses(net) == [f"DNS server.wgh.test → {new} (on isp)"]
    assert dns.resolve_in(net, "client", "server.wgh.test").address == ip_address(new)
    assert dns.follow_addresses(net) == []  # nothing changed since
    # WireGuard does not follow by itself: the endpoint is still what was resolved at first
    assert net.wireguard.devices["client"].status().peer(key).endpoint == f"{old}:51820"
    # setting the endpoint again by name resolves it now, as `wg set ... endpoint name:port` does
    step = check(net, {"endpoint": {"node": "client", "peer": "server", "to": "server.wgh.test:51820"}})
    assert step.ok, step.message
    assert net.wireguard.devices["client"].status().peer(key).endpoint == f"{new}:51820"
    ping = check(net, {"ping": {"from": "client", "to": "server", "count": 2, "interval": "50ms"}})
    assert ping.ok, ping.message + (ping.diagnosis or "")


def _run_in_process(text: str, tmp_path: Path):
    """Run a scenario here, noting which dnsmasq processes existed while its steps ran."""
    (case,) = load_text(textwrap.dedent(text), str(tmp_path / "dns.yaml"))
    seen: set[tuple[int, str]] = set()
    result = run_case(case, on_step=lambda step: seen.update(dnsmasq_processes()))
    ours = {pid for pid, run in seen if run == result.run_id}
    return result, ours


def _gone(pids: set[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() and pid in {p for p, _ in dnsmasq_processes()} for pid in pids)


def test_no_dnsmasq_after_success(tmp_path):
    result, pids = _run_in_process(TOPOLOGY + "steps:\n  - handshake: {between: [client, server], within: 3s}\n", tmp_path)
    assert result.status == "passed", result.report()
    assert pids, "dnsmasq never ran: the check proves nothing"
    assert _gone(pids) and nothing_left({result.run_id}), harness_objects({result.run_id})


def test_no_dnsmasq_after_failure(tmp_path):
    failing = "steps:\n  - ping: {from: client, to: 198.18.9.9, via: underlay, count: 1, timeout: 300ms}\n"
    result, pids = _run_in_process(TOPOLOGY + failing, tmp_path)
    assert result.status == "failed", result.report()
    assert pids, "dnsmasq never ran: the check proves nothing"
    assert _gone(pids) and nothing_left({result.run_id}), harness_objects({result.run_id})


SLOW = TOPOLOGY + "steps:\n  - handshake: {between: [client, server], within: 3s}\n  - sleep: 60s\n"


def _start(wgh_cli, tmp_path: Path) -> tuple[subprocess.Popen, str]:
    scenario = tmp_path / "slow-dns.yaml"
    scenario.write_text(SLOW)
    proc = subprocess.Popen([wgh_cli.path, "run", "--no-results", str(scenario)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120  # a cold start under VM emulation takes seconds
    while time.monotonic() < deadline:
        for record in REGISTRY_DIR.glob("*.json"):
            try:
                data = json.loads(record.read_text())
            except (OSError, ValueError):
                continue
            if data["pid"] == proc.pid and any(p["what"] == "dnsmasq" for p in data["processes"]):
                run = data["run_id"]
                if harness_objects({run})["dnsmasq"]:
                    time.sleep(0.5)
                    return proc, run
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the scenario never came up")


@host_only
def test_no_dnsmasq_after_ctrl_c(wgh_cli, tmp_path):
    proc, run = _start(wgh_cli, tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert nothing_left({run}), harness_objects({run})


@host_only
def test_dnsmasq_of_a_killed_run_is_reaped(wgh_cli, tmp_path):
    proc, run = _start(wgh_cli, tmp_path)
    assert harness_objects({run})["dnsmasq"]
    proc.kill()
    proc.wait()
    # dnsmasq drops to user nobody, which clears the parent-death signal: the run's
    # watchdog removes it (and the rest of the run) as soon as the harness is gone,
    # without waiting for `wgh clean` or the next run
    deadline = time.monotonic() + 30  # slow under VM emulation; ~0.2 s on a host
    while not nothing_left({run}) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert nothing_left({run}), harness_objects({run})
    result = wgh_cli("clean")
    assert result.returncode == 0, result.stderr
