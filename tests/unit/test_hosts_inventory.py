"""The hosts inventory and the ssh command lines built from it (pure)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.hosts.inventory import DEFAULT_WGH, Host, from_environment, load_inventory, parse_inventory, placement_problems
from harness.hosts.ssh import master_argv, session_argv

GOOD = """\
hosts:
  alpha: {address: 192.0.2.10}
  beta:
    address: beta.lab.example
    port: 2222
    user: admin
    identity: ~/.ssh/wgh_ed25519
    known_hosts: /etc/wgh/known_hosts
    underlay: 192.0.2.11
    wgh: /opt/wgharness/.venv/bin/wgh
    ssh_options: {ConnectTimeout: 5, ProxyJump: bastion}
  gamma: {}
"""


def test_hosts_with_defaults_and_every_field():
    inventory = parse_inventory(GOOD, "hosts.yaml")
    assert inventory.names == ["alpha", "beta", "gamma"]
    alpha, beta, gamma = (inventory.hosts[n] for n in inventory.names)
    assert alpha == Host("alpha", "192.0.2.10", underlay="192.0.2.10")  # root, port 22, `wgh worker`
    assert beta.port == 2222 and beta.user == "admin" and beta.underlay == "192.0.2.11"
    assert beta.command("worker") == ("/opt/wgharness/.venv/bin/wgh", "worker")
    assert beta.ssh_options == (("ConnectTimeout", "5"), ("ProxyJump", "bastion"))
    assert gamma.address == "gamma" and gamma.underlay is None and gamma.wgh == DEFAULT_WGH and gamma.command("clean") == ("wgh", "clean")


@pytest.mark.parametrize(
    "text, where, words",
    [
        ("hosts:\n  Alpha: {}\n", "hosts.yaml:2 hosts.Alpha", "lower-case"),
        ("hosts:\n  a: {adress: x}\n", "hosts.yaml:2 hosts.a.adress", "unknown field"),
        ("hosts:\n  a: {port: 70000}\n", "hosts.yaml:2 hosts.a.port", "1 to 65535"),
        ("hosts:\n  a:\n    underlay: not-an-ip\n", "hosts.yaml:3 hosts.a.underlay", "an IP address"),
        ("hosts:\n  a: {address: -oProxyCommand=x}\n", "hosts.yaml:2 hosts.a.address", "not an option"),
        ("hosts:\n  a:\n    ssh_options: {BatchMode: 'no'}\n", "hosts.yaml:3 hosts.a.ssh_options.BatchMode", "the harness's own"),
        ("hosts:\n  a:\n    ssh_options: {StrictHostKeyChecking: accept-new}\n", "hosts.a.ssh_options.StrictHostKeyChecking", "known host keys only"),
        ("hosts:\n  a: {wgh: \"/opt/wgh 'x\"}\n", "hosts.a.wgh", "not a command line"),
        ("hosts:\n  a: {underlay: 10.0.0.1}\n  b: {underlay: 10.0.0.1}\n", "hosts.b.underlay", "a's underlay address too"),
        ("nodes: {}\n", "hosts.yaml:1", "one key, `hosts:`"),
        ("hosts: {}\n", "hosts.yaml:1 hosts", "maps each host's name"),
    ],
)
def test_mistakes_are_named_with_file_line_and_field(text, where, words):
    with pytest.raises(ScenarioError) as raised:
        parse_inventory(text, "hosts.yaml")
    message = str(raised.value)
    assert where.split()[-1] in message and words in message
    if ":" in where.split()[0]:
        assert where.split()[0] in message


def test_from_a_file_or_wgh_hosts(tmp_path):
    path = tmp_path / "hosts.yaml"
    path.write_text(GOOD)
    assert load_inventory(path).names == ["alpha", "beta", "gamma"]
    assert from_environment({"WGH_HOSTS": str(path)}).names == ["alpha", "beta", "gamma"]
    assert from_environment({}) is None
    with pytest.raises(ScenarioError, match="cannot read the hosts file"):
        load_inventory(tmp_path / "missing.yaml")


def test_ssh_never_asks_and_checks_host_keys_and_shares_one_connection():
    beta = parse_inventory(GOOD, "h.yaml").hosts["beta"]
    control = Path("/run/wgh-x/beta.sock")
    master = master_argv(beta, control)
    options = [master[i + 1] for i, word in enumerate(master) if word == "-o"]
    assert {"BatchMode=yes", "StrictHostKeyChecking=yes", f"ControlPath={control}", "ControlMaster=yes"} <= set(options)
    assert options.index("BatchMode=yes") < options.index("ConnectTimeout=5")  # ours first: ssh keeps the first value
    assert master[master.index("-p") + 1] == "2222" and master[master.index("-l") + 1] == "admin"
    assert "IdentitiesOnly=yes" in options and master[master.index("-i") + 1].endswith("/.ssh/wgh_ed25519")
    assert master[-3:] == ["-T", "--", "beta.lab.example"] and "-N" in master
    session = session_argv(beta, control, ("/opt/wgh x/wgh", "worker"))
    assert "ControlMaster=no" in session and session[-2] == "beta.lab.example"
    assert shlex.split(session[-1]) == ["/opt/wgh x/wgh", "worker"]  # one word for the remote shell, quoted


def test_a_scenarios_placement_names_hosts_of_the_inventory_with_its_line(tmp_path):
    from harness.scenario.load import load_file

    scenario = tmp_path / "spread.yaml"
    scenario.write_text("nodes:\n  a: {}\n  b: {}\nlinks:\n  - ends: [a, b]\nplacement:\n  alpha: [a]\n  delta: [b]\n")
    inventory = parse_inventory(GOOD, "hosts.yaml")
    (problem,) = placement_problems(load_file(scenario), inventory)
    assert (problem.file, problem.line, problem.field) == (str(scenario), 8, "placement.delta")
    assert "host 'delta' is not in the inventory hosts.yaml (alpha, beta, gamma)" in problem.message
