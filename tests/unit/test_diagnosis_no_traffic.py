"""`no-traffic` (the initiator sent nothing to its peer) is named only when the failed
check's own packets did not go into the initiator's WireGuard device. When they did
and the device still sent nothing, not even an initiation, the device was slow (a
starved VM under a busy host: CI18's dns-endpoint step 1): no cause, so the check is
measured again. Pure: the device status, route lookups and underlay probe are faked."""

from __future__ import annotations

import pytest

from harness.diagnosis import tunnel as diagnose
from harness.engine.fake import FakeNetwork


@pytest.fixture
def network(fake_library_network) -> FakeNetwork:
    """alice knows bob's endpoint and has sent nothing; bob has never heard of her."""
    network = fake_library_network("direct")
    endpoint = str(network.plan.wireguard["alice"].peer("bob").endpoint)
    network.set_peer("alice", "bob", endpoint=endpoint)
    network.set_peer("bob", "alice")
    return network


def bob(network: FakeNetwork) -> str:
    return str(network.plan.tunnel_address("bob", 4))


def test_nothing_sent_without_a_route_into_the_device_is_no_traffic(network):
    assert diagnose.diagnose_tunnel(network, "alice", "bob", bob(network)).code == "no-traffic"
    # nor when the check sent nothing itself (no address it sent to)
    network.world.routes[("alice", bob(network))] = 1000  # the fake's WireGuard interface
    assert diagnose.diagnose_tunnel(network, "alice", "bob").code == "no-traffic"


def test_the_checks_packets_routed_into_a_silent_device_name_no_cause(network):
    network.world.routes[("alice", bob(network))] = 1000
    diagnosis = diagnose.diagnose_tunnel(network, "alice", "bob", bob(network))
    assert diagnosis.code == ""
    assert f"alice routes {bob(network)} into its WireGuard device, which has sent nothing to bob yet" in str(diagnosis)
    # routed elsewhere (the underlay): the check's packets never reached the device
    network.world.routes[("alice", bob(network))] = 7
    assert diagnose.diagnose_tunnel(network, "alice", "bob", bob(network)).code == "no-traffic"
