"""The NAT part of the diagnosis: a peer that moved behind its NAT is not an expired
mapping (pure: the conntrack table and the underlay probe are faked)."""

from __future__ import annotations

import textwrap

import pytest

from harness.engine.fake import FakeNetwork
from harness.plan.network import build_plan
from harness.scenario.load import load_text
from harness.diagnosis import tunnel as diagnose
from harness.diagnosis.tunnel import Diagnosis, _expired_nat_mapping
from harness.wg.status import PeerStatus
from harness.net.conntrack import UdpMapping

SCENARIO = """\
nodes:
  server: {}
  home: {nat: {outside: server, udp_timeout: 2s}}
  client: {}
links:
  - {ends: [client, home]}
  - {ends: [home, server]}
wireguard:
  server: {}
  client:
    peers:
      server: {endpoint: server, persistent_keepalive: KEEPALIVE}
"""
NAT_PUBLIC = "198.18.2.1:51820"  # home's address on its outside link, the client's mapped socket


def fake_network(keepalive: int) -> FakeNetwork:
    (case,) = load_text(textwrap.dedent(SCENARIO.replace("KEEPALIVE", str(keepalive))), "x.yaml")
    return FakeNetwork(build_plan(case.spec, "t00001", "wireguard-go"))


def server_view() -> PeerStatus:
    return PeerStatus(b"k" * 32, NAT_PUBLIC, latest_handshake=1.0, rx_bytes=100, tx_bytes=200)


def run(monkeypatch, keepalive: int, table: list[UdpMapping], inside_answers: bool, since: float | None = None):
    probed = []

    def probe(network, node, endpoint):
        probed.append((node, endpoint))
        return inside_answers, f"underlay: {endpoint} {'answers' if inside_answers else 'does not answer'} ping from {node}"

    monkeypatch.setattr(diagnose, "underlay_probe", probe)
    diag = Diagnosis()
    network = fake_network(keepalive)
    network.world.nat_mappings["home"] = table
    cause = _expired_nat_mapping(network, "server", "client", server_view(), 10.0, diag, since)
    return cause, diag, probed


def test_live_mapping_to_a_vanished_inside_address_is_an_unreachable_endpoint(monkeypatch):
    table = [UdpMapping("198.18.1.1:51820", NAT_PUBLIC, "198.18.2.2:51820", 1)]
    cause, diag, probed = run(monkeypatch, 1, table, inside_answers=False)
    assert probed == [("home", "198.18.1.1:51820")]  # asked from the NAT, which forwards there
    assert cause[0] == "endpoint-unreachable"
    assert "forwards that to 198.18.1.1:51820, which no longer answers" in cause[1]


def test_live_mapping_to_a_live_inside_address_is_no_nat_problem(monkeypatch):
    table = [UdpMapping("198.18.1.1:51820", NAT_PUBLIC, "198.18.2.2:51820", 1)]
    cause, diag, _ = run(monkeypatch, 1, table, inside_answers=True)
    assert cause is None
    assert any("mapping 198.18.1.1:51820 ↔ 198.18.2.1:51820 present" in line for line in diag.lines)


def test_gone_mapping_despite_a_short_keepalive_means_the_peer_stopped_reaching_the_nat(monkeypatch):
    cause, _, _ = run(monkeypatch, 1, [], inside_answers=True)
    assert cause[0] == "endpoint-unreachable"
    assert "keepalive every 1s is shorter than its UDP timeout 2s" in cause[1]


@pytest.mark.parametrize("keepalive", [0, 5])
def test_gone_mapping_without_a_keepalive_that_holds_it_has_expired(monkeypatch, keepalive):
    cause, _, _ = run(monkeypatch, keepalive, [], inside_answers=True)
    assert cause[0] == "nat-mapping-expired"


def test_a_mapping_made_after_the_checks_last_packet_is_not_what_its_packets_met(monkeypatch):
    """The NAT forgot the mapping; the check's packets were dropped; then the client's
    passive keepalive made a new one before the diagnosis read the table (a slow
    machine): the mapping had expired, and the diagnosis says so."""
    table = [UdpMapping("198.18.1.1:51820", NAT_PUBLIC, "198.18.2.2:51820", 1, started=1005.5)]
    cause, diag, probed = run(monkeypatch, 0, table, inside_answers=True, since=1000.0)
    assert cause[0] == "nat-mapping-expired"
    assert any("made 5.5s after the check's last packet" in line for line in diag.lines)
    assert probed == []  # not treated as a live mapping


def test_a_mapping_older_than_the_check_is_the_one_its_packets_met(monkeypatch):
    table = [UdpMapping("198.18.1.1:51820", NAT_PUBLIC, "198.18.2.2:51820", 1, started=990.0)]
    cause, diag, _ = run(monkeypatch, 0, table, inside_answers=True, since=1000.0)
    assert cause is None
    assert any("present, expires in 1s" in line for line in diag.lines)


def test_without_start_times_the_mapping_present_now_counts(monkeypatch):
    """A NAT that does not stamp its entries (a user's own network): as before."""
    table = [UdpMapping("198.18.1.1:51820", NAT_PUBLIC, "198.18.2.2:51820", 1)]
    cause, _, _ = run(monkeypatch, 0, table, inside_answers=True, since=1000.0)
    assert cause is None
