"""WireGuard in Mininet networks of a user's own (harness.mininet): a Topo written as
Mininet's documentation teaches, brought up by WgNet or by add_wireguard on any running
Mininet; the scenario files' checks run on it, a broken setup gets the same diagnosis
as in a scenario file, bad settings are refused with the host and field named, and
nothing the harness added is left."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("mininet")

from mininet.topo import SingleSwitchTopo  # noqa: E402

from harness.errors import BuildError  # noqa: E402
from harness.mininet import Bridge, WgNet, add_wireguard, check, diagnose  # noqa: E402
from harness.scenario.wireguard_section import SectionError  # noqa: E402

from .leftovers import harness_objects  # noqa: E402
from .placement import host_only  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))
from topos import TwoSiteWAN  # noqa: E402

pytestmark = pytest.mark.requires("root", "wireguard", "mininet")


def _shell_pids(net) -> list[int]:
    return [node.shell.pid for node in net.hosts + net.switches if node.shell is not None]


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


@pytest.fixture
def started(wgh_backend):
    """A started WgNet; stopped after the test, its shells then checked gone."""
    nets = []

    def start(topo, **kwargs):
        net = WgNet(topo=topo, backend=wgh_backend, **kwargs)
        nets.append((net, _shell_pids(net)))
        net.start()
        return net

    yield start
    for net, pids in nets:
        net.stop()
        assert not [pid for pid in pids if _alive(pid)], "Mininet shells outlived net.stop()"


@host_only  # in the VM, the file-driven test below covers the same topology with kernel WireGuard
def test_two_site_wan_through_the_nat(started):
    net = started(TwoSiteWAN(keepalive=1))
    wg = net.wireguard
    assert check(wg, {"handshake": {"between": ["branch", "hq"], "within": "2s"}}).ok
    for src, dst in (("branch", "hq"), ("hq", "branch")):
        result = check(wg, {"ping": {"from": src, "to": dst, "count": 2, "interval": "50ms"}})
        assert result.ok, result.message
    # hq knows branch only by the NAT's public address, found by reading the gateway's rules
    assert wg.plan.nodes["branchgw"].nat is not None and wg.plan.nodes["branchgw"].nat.outside_dev == "branchgw-eth0"
    status = wg.wireguard.peer_status("hq", "branch")
    assert status.endpoint.startswith("203.0.113.2:")
    # the underlay is as the Topo made it: the branch's private side is not reachable from hq
    assert check(wg, {"ping": {"from": "hq", "to": "branch", "via": "underlay", "count": 1, "timeout": "300ms", "expect": "fail"}}).ok


@host_only  # in the VM, two-site-wan.yaml's no-keepalive case checks the same diagnosis
def test_no_keepalive_behind_the_nat_gets_the_scenario_files_diagnosis(started):
    """As scenarios/nat-keepalive.yaml's no-keepalive case: nat-mapping-expired."""
    net = started(TwoSiteWAN(keepalive=0, udp_timeout=2))
    wg = net.wireguard
    assert check(wg, {"ping": {"from": "branch", "to": "hq", "count": 1, "timeout": "1s"}}).ok
    check(wg, {"sleep": "3s"})  # past the 2 s mapping lifetime, before the 10 s passive keepalive
    result = check(wg, {"ping": {"from": "hq", "to": "branch", "count": 2, "interval": "100ms", "timeout": "1s"}})
    assert not result.ok
    assert result.diagnosed == "nat-mapping-expired", result.diagnosis
    assert "NAT branchgw" in result.diagnosis
    assert diagnose(wg, "hq", "branch").code == "nat-mapping-expired"


def test_add_wireguard_on_mininets_own_topo(started, wgh_backend):
    """Any Topo (Mininet's SingleSwitchTopo, its default hosts and addresses), WireGuard
    added afterwards; a wrong AllowedIPs is diagnosed as in allowed-ips-mismatch.yaml,
    and closing removes every interface the harness added."""
    net = started(SingleSwitchTopo(k=3), switch=Bridge)
    assert net.wireguard is None  # no WgHost settings: the underlay alone
    mesh = {"h1": {"peers": {"h2": {"endpoint": "h2"}, "h3": {"endpoint": "h3"}}}, "h2": {"peers": {"h3": {"endpoint": "h3"}}}, "h3": {}}
    with add_wireguard(net, mesh, backend=wgh_backend) as wg:
        assert str(wg.plan.wireguard["h1"].peers[0].endpoint) == "10.0.0.2:51820"  # Mininet's own address of h2
        assert check(wg, {"reach": {"among": ["h1", "h2", "h3"]}}).ok
        ifnames = {name: wg.plan.wireguard[name].ifname for name in ("h1", "h2", "h3")}
    for name, ifname in ifnames.items():
        assert ifname not in net.get(name).cmd("ip -o link"), f"{ifname} left on {name}"
    assert not harness_objects({wg.plan.run_id})["processes"]

    broken = {"h1": {"peers": {"h2": {"endpoint": "h2"}}}, "h2": {"peers": {"h1": {"allowed_ips": ["100.64.9.0/24"]}}}}
    with add_wireguard(net, broken, backend=wgh_backend) as wg:
        assert check(wg, {"handshake": {"between": ["h1", "h2"], "within": "2s"}}).ok
        result = check(wg, {"ping": {"from": "h1", "to": "h2", "count": 2, "interval": "50ms", "timeout": "500ms"}})
        assert not result.ok and result.diagnosed == "allowed-ips-receiver", result.diagnosis


@host_only  # the harness's own checks: no kernel involved
def test_bad_settings_name_the_host_and_field(started):
    net = started(SingleSwitchTopo(k=2), switch=Bridge)
    with pytest.raises(SectionError) as caught:
        add_wireguard(net, {"h1": {"peers": {"h9": {}}, "listen_port": 70000}, "h7": {}})
    message = str(caught.value)
    assert "wireguard.h1.listen_port" in message
    assert "wireguard.h7: no host 'h7'" in message
    # an endpoint the underlay cannot resolve fails the bring-up, which removes what it added
    with pytest.raises(BuildError, match=r"wireguard\.h1\.peers\.h2\.endpoint"):
        add_wireguard(net, {"h1": {"peers": {"h2": {"endpoint": "nowhere.example:51820"}}}, "h2": {}})
    assert "wgh" not in net.get("h1").cmd("ip -o link")


def _our_mininet_shells() -> list[str]:
    """Mininet shells this test process started that are still alive."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            cmdline = (status.parent / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(os.getpid()) and "mininet:" in cmdline:
            found.append(cmdline.replace("\0", " "))
    return found


def test_the_same_topology_from_a_scenario_file(wgh_backend):
    """examples/two-site-wan.yaml: the Topo's hosts as nodes, the file's WireGuard and
    steps; no keepalive is diagnosed as in nat-keepalive.yaml; nothing is left."""
    from harness.results.verdicts import verdicts
    from harness.run import run_case
    from harness.scenario.load import load_file

    cases = load_file(EXAMPLES / "two-site-wan.yaml")
    results = [run_case(case, backend=wgh_backend) for case in cases]
    assert [r.status for r in results] == ["passed", "passed"], [r.report() for r in results]
    assert all(r.engine == "mininet" and not r.leftovers for r in results)
    no_keepalive = results[1].steps[3]
    assert no_keepalive.outcome == "expected-fail" and no_keepalive.diagnosed == "nat-mapping-expired"
    assert not _our_mininet_shells()
    assert verdicts({"scenarios": [r.to_json() for r in results]})["two-site-wan[no-keepalive]"][1][3] == ("expected-fail", ("nat-mapping-expired",))
