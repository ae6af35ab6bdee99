"""harness.net.nat: the nftables text and conntrack sysctls (pure parts)."""

import ipaddress
import re

import pytest

from harness.errors import MissingCapability
from harness.net.nat import (
    GUARD_TABLE,
    TABLE,
    conntrack_sysctls,
    guard_ruleset,
    iptables_commands,
    mapping_timeout,
    nft_ruleset,
)
from harness.plan.network import NatPlan


def test_ruleset_masquerades_on_the_outside_device():
    text = nft_ruleset(NatPlan("eth1", None))
    assert f"table inet {TABLE} {{" in text
    assert "type nat hook postrouting priority srcnat; policy accept;" in text
    assert re.search(r'^\s*oifname "eth1" masquerade$', text, re.M)
    assert "eth0" not in text
    # one masquerade rule only, nothing that rewrites or filters anything else
    assert text.count("masquerade") == 1
    assert "drop" not in text and "dnat" not in text


def test_ruleset_follows_the_device():
    assert 'oifname "eth3" masquerade' in nft_ruleset(NatPlan("eth3", 5.0))
    assert 'oifname "eth1"' not in nft_ruleset(NatPlan("eth3", 5.0))


def test_ruleset_braces_balance():
    text = nft_ruleset(NatPlan("eth1", None))
    assert text.count("{") == text.count("}") == 2
    assert text.endswith("}\n")


def test_conntrack_sysctls_for_udp_timeout():
    assert conntrack_sysctls(NatPlan("eth1", 5.0)) == {
        "net.netfilter.nf_conntrack_timestamp": "1",
        "net.netfilter.nf_conntrack_udp_timeout": "5",
        "net.netfilter.nf_conntrack_udp_timeout_stream": "5",
    }


def test_conntrack_sysctls_round_and_floor_at_one_second():
    assert conntrack_sysctls(NatPlan("eth1", 2.6))["net.netfilter.nf_conntrack_udp_timeout"] == "3"
    assert conntrack_sysctls(NatPlan("eth1", 0.2))["net.netfilter.nf_conntrack_udp_timeout_stream"] == "1"


def test_only_start_times_without_timeout():
    """The kernel's timeouts stay; the mappings' start times are always recorded (the
    diagnosis needs them to judge a mapping made after a check began)."""
    assert conntrack_sysctls(NatPlan("eth1", None)) == {"net.netfilter.nf_conntrack_timestamp": "1"}


# --- NAT types, hairpin, the guard -----------------------------------------------------

PUBLIC = (ipaddress.ip_interface("198.18.3.1/24"), ipaddress.ip_interface("2001:2:0:3::1/64"))


def plan(nat_type="port-restricted", hairpin=False, timeout=None, addresses=PUBLIC):
    return NatPlan("eth2", timeout, nat_type, hairpin, addresses, ("eth0", "eth1"))


def chain(text: str, name: str) -> str:
    """The body of one chain."""
    start = text.index(f"chain {name} {{")
    return text[start : text.index("  }", start)]


ALL_TYPES = ["port-restricted", "restricted-cone", "full-cone", "symmetric"]


@pytest.mark.parametrize("hairpin", [False, True])
@pytest.mark.parametrize("nat_type", ALL_TYPES)
def test_every_type_is_one_table_with_balanced_braces(nat_type, hairpin):
    text = nft_ruleset(plan(nat_type, hairpin))
    assert text.startswith(f"table inet {TABLE} {{\n") and text.endswith("}\n")
    assert text.count("table ") == 1
    assert text.count("{") == text.count("}")
    assert f"# {nat_type}:" in text  # says what it is
    assert re.search(r'^\s*oifname "eth2" masquerade( fully-random)?$', text, re.M)


def test_port_restricted_is_plain_masquerade_even_with_the_new_fields():
    text = nft_ruleset(plan("port-restricted"))
    assert text.count("chain ") == 1 and "map " not in text and "dnat" not in text
    assert re.search(r'^\s*oifname "eth2" masquerade$', text, re.M)


def test_symmetric_draws_a_new_port_per_flow():
    text = nft_ruleset(plan("symmetric"))
    assert re.search(r'^\s*oifname "eth2" masquerade fully-random$', text, re.M)
    assert "map " not in text and "dnat" not in text


def test_full_cone_records_mappings_and_lets_anyone_in():
    text = nft_ruleset(plan("full-cone", timeout=5.0))
    mappings = text[text.index("map mappings {") :]
    assert "type inet_service : ipv4_addr . inet_service" in mappings
    assert "flags dynamic,timeout" in mappings and "timeout 5s" in mappings
    assert "set contacted" not in text
    pre = chain(text, "prerouting")
    assert "type nat hook prerouting priority dstnat;" in pre
    assert 'iifname "eth2" meta nfproto ipv4 dnat ip to udp dport map @mappings' in pre
    record = chain(text, "record")
    # after masquerade (srcnat), so the packet carries its external port
    assert "type filter hook postrouting priority srcnat + 10;" in record
    assert (
        'oifname "eth2" meta nfproto ipv4 ct direction original ct status snat meta l4proto udp '
        "update @mappings { udp sport : ct original ip saddr . ct original proto-src }"
    ) in record
    assert "ct direction reply ct status dnat" in record  # answers keep a mapping alive
    assert "hairpin" not in text


def test_restricted_cone_only_lets_in_contacted_addresses():
    text = nft_ruleset(plan("restricted-cone", timeout=7.0))
    contacted = text[text.index("set contacted {") :]
    assert "type inet_service . ipv4_addr" in contacted and "timeout 7s" in contacted
    pre = chain(text, "prerouting")
    assert 'iifname "eth2" udp dport . ip saddr @contacted dnat ip to udp dport map @mappings' in pre
    assert 'iifname "eth2" dnat' not in pre  # no full-cone rule
    assert "update @contacted { udp sport . ip daddr }" in chain(text, "record")


def test_cone_mapping_timeout_defaults_to_the_conntrack_stream_timeout():
    assert mapping_timeout(plan("full-cone")) == 120
    assert "timeout 120s" in nft_ruleset(plan("full-cone"))
    assert mapping_timeout(plan("full-cone", timeout=0.2)) == 1


@pytest.mark.parametrize("nat_type", ALL_TYPES)
def test_hairpin_dnats_inside_traffic_to_the_public_address_and_snats_it(nat_type):
    text = nft_ruleset(plan(nat_type, hairpin=True))
    assert "# hairpin" in text
    assert (
        'iifname != "eth2" ip daddr 198.18.3.1 dnat ip to udp dport map @mappings'
        in chain(text, "prerouting")
    )
    post = chain(text, "postrouting")
    random = " fully-random" if nat_type == "symmetric" else ""
    assert f'iifname != "eth2" oifname != "eth2" ct status dnat snat ip to 198.18.3.1{random}' in post
    # hairpin SNAT comes before the masquerade
    assert post.index("snat ip to") < post.index("masquerade")
    assert "update @mappings" in chain(text, "record")


def test_no_hairpin_without_an_ipv4_outside_address():
    text = nft_ruleset(plan("port-restricted", hairpin=True, addresses=(PUBLIC[1],)))
    assert "dnat" not in text and "snat ip" not in text


def test_unknown_type_is_refused():
    with pytest.raises(ValueError, match="unknown NAT type"):
        nft_ruleset(plan("cone-ish"))


def test_guard_drops_unsolicited_udp_for_the_router_but_not_for_its_sockets():
    text = guard_ruleset(plan())
    assert text.startswith(f"table inet {GUARD_TABLE} {{\n") and text.endswith("}\n")
    assert GUARD_TABLE != TABLE and text.count("{") == text.count("}")
    body = chain(text, "input")
    assert "type filter hook input priority filter; policy accept;" in body
    drop = body.index('iifname "eth2" meta l4proto udp ct state new drop')
    assert body.index("socket transparent 0 accept") < drop
    assert body.index("socket transparent 1 accept") < drop
    assert "eth0" not in text  # the inside is not touched


def test_iptables_fallback_covers_the_plain_types_only():
    assert iptables_commands(plan())[0] == ["-t", "nat", "-A", "POSTROUTING", "-o", "eth2", "-j", "MASQUERADE"]
    assert iptables_commands(plan("symmetric"))[0][-1] == "--random-fully"
    assert iptables_commands(plan())[-1][-2:] == ["-j", "DROP"]
    for unsupported in (plan("full-cone"), plan("restricted-cone"), plan(hairpin=True)):
        with pytest.raises(MissingCapability, match="needs nftables"):
            iptables_commands(unsupported)


# --- the NAT type table ----------------------------------------------------------------


def test_every_nat_type_is_one_row_read_by_the_format_the_rendering_and_the_probe():
    from harness.nattypes import NAT_TYPES, by_behaviour
    from harness.scenario.model import NatSpec
    from harness.steps.natprobe import NatClassification

    assert NatSpec.model_json_schema()["properties"]["type"]["enum"] == list(NAT_TYPES)
    for kind in NAT_TYPES.values():
        assert by_behaviour(kind.mapping, kind.filtering) is kind
        assert NatClassification(kind.mapping, kind.filtering).name == kind.name  # what the probe calls it
        text = nft_ruleset(NatPlan("eth1", None, kind.name, outside_addresses=(ipaddress.ip_interface("198.18.2.1/24"),)))
        assert f"# {kind.name}: {kind.description}" in text
        assert ("fully-random" in text) == kind.new_port_per_destination
        assert ("map mappings" in text) == kind.cone
        if not kind.needs_nftables:
            assert iptables_commands(NatPlan("eth1", None, kind.name))
        else:
            with pytest.raises(MissingCapability, match="needs nftables"):
                iptables_commands(NatPlan("eth1", None, kind.name))


def test_an_unknown_type_in_a_plan_is_refused():
    with pytest.raises(ValueError, match="unknown NAT type 'carrier-grade'"):
        nft_ruleset(NatPlan("eth1", None, "carrier-grade"))


def test_the_nat_probe_waits_longer_on_a_slow_machine():
    """CI14: under load the first datagram to B took longer than three 0.3 s waits, and
    the probe said the path was down. Expected answers get growing waits; a datagram
    that may rightly never come is waited for a few of the slowest round trips seen."""
    from harness.steps.natprobe import _Pacing

    pacing = _Pacing(0.3)
    assert pacing.expected() == pytest.approx([0.3, 0.6, 1.2, 2.4])
    assert pacing.negative == 0.3  # nothing seen yet: the floor
    pacing.saw(0.01)
    assert pacing.negative == 0.3  # a fast path does not shorten the floor
    pacing.saw(0.2)
    assert pacing.negative == pytest.approx(0.8)
    pacing.saw(5.0)
    assert pacing.negative == pytest.approx(2.4)  # bounded: a filtered probe costs at most 8 x timeout
