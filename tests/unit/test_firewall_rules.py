"""harness.net.firewall: the nftables text of a node's firewall (pure)."""

import pytest

from harness.net.firewall import TABLE, nft_ruleset
from harness.plan.network import FirewallPlan


def rule(drop=None, allow=None, port=None, in_dev=None):
    return FirewallPlan(drop, allow, port, in_dev)


def chain(text: str, name: str) -> list[str]:
    """The statements of one chain, without comments and the hook line."""
    start = text.index(f"chain {name} {{")
    body = text[start : text.index("  }", start)].splitlines()[2:]
    return [line.strip() for line in body if line.strip() and not line.strip().startswith("#")]


BASE_INPUT = [
    'iifname "lo" accept',
    "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept",
]


def test_one_table_with_input_and_forward():
    text = nft_ruleset([rule(drop="udp")])
    assert text.startswith(f"table inet {TABLE} {{\n") and text.endswith("}\n")
    assert TABLE == "wgh_filter"
    assert "type filter hook input priority filter; policy accept;" in text
    assert "type filter hook forward priority filter; policy accept;" in text
    assert "chain output" not in text
    assert text.count("{") == text.count("}")


def test_drop_udp_port_from_a_neighbour_in_both_chains():
    text = nft_ruleset([rule(drop="udp", port=51820, in_dev="eth0")])
    statement = 'iifname "eth0" meta l4proto udp udp dport 51820 drop'
    assert chain(text, "input") == BASE_INPUT + [statement]
    assert chain(text, "forward") == [statement]
    assert "# rule 1: drop udp port 51820 arriving on eth0" in text


def test_drop_tcp_any_port_any_interface():
    text = nft_ruleset([rule(drop="tcp")])
    assert chain(text, "forward") == ["meta l4proto tcp drop"]


def test_drop_icmp_both_families_and_own_errors():
    text = nft_ruleset([rule(drop="icmp")])
    assert chain(text, "forward") == ["meta l4proto { icmp, ipv6-icmp } drop"]
    output = chain(text, "output")
    assert output == [
        "icmp type { destination-unreachable, time-exceeded, parameter-problem } drop",
        "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } drop",
    ]
    # neighbour discovery is accepted before the ICMP drop, or IPv6 would stop working
    assert chain(text, "input")[:2] == BASE_INPUT


def test_drop_icmp_from_a_neighbour_drops_own_errors_towards_it():
    text = nft_ruleset([rule(drop="icmp", in_dev="eth1")])
    assert chain(text, "forward") == ['iifname "eth1" meta l4proto { icmp, ipv6-icmp } drop']
    assert all(line.startswith('oifname "eth1" ') for line in chain(text, "output"))


def test_drop_all():
    assert chain(nft_ruleset([rule(drop="all")]), "forward") == ["drop"]
    assert chain(nft_ruleset([rule(drop="all", in_dev="eth0")]), "forward") == ['iifname "eth0" drop']


def test_allow_established_accepts_replies_then_drops():
    assert chain(nft_ruleset([rule(allow="established")]), "input") == BASE_INPUT + [
        "ct state established,related accept",
        "drop",
    ]
    assert chain(nft_ruleset([rule(allow="established", in_dev="eth2")]), "forward") == [
        'iifname "eth2" ct state established,related accept',
        'iifname "eth2" drop',
    ]


def test_rules_keep_file_order():
    rules = [rule(drop="udp", port=53), rule(allow="established", in_dev="eth0"), rule(drop="tcp", port=22)]
    assert chain(nft_ruleset(rules), "forward") == [
        "meta l4proto udp udp dport 53 drop",
        'iifname "eth0" ct state established,related accept',
        'iifname "eth0" drop',
        "meta l4proto tcp tcp dport 22 drop",
    ]
    text = nft_ruleset(rules)
    assert text.index("# rule 1") < text.index("# rule 2") < text.index("# rule 3")


def test_loopback_is_never_filtered():
    text = nft_ruleset([rule(drop="all")])
    assert chain(text, "input")[0] == 'iifname "lo" accept'


@pytest.mark.parametrize("bad", [rule(), rule(drop="gre"), rule(allow="related")])
def test_malformed_rules_are_refused(bad):
    with pytest.raises(ValueError):
        nft_ruleset([bad])


def test_drop_fragments_before_reassembly_in_prerouting():
    text = nft_ruleset([rule(drop="fragments")])
    # conntrack's defragmentation hooks in at -400: the chain must come first, or
    # input/forward would only ever see reassembled packets
    assert "type filter hook prerouting priority -450; policy accept;" in text
    assert chain(text, "prerouting") == ["ip frag-off & 0x3fff != 0 drop", "exthdr frag exists drop"]
    # nothing in input/forward, no output chain: unfragmented traffic is untouched
    assert chain(text, "input") == BASE_INPUT
    assert chain(text, "forward") == []
    assert "chain output" not in text
    assert "# rule 1: drop fragments (in chain prerouting)" in text
    assert text.count("{") == text.count("}")


def test_drop_fragments_from_a_neighbour_and_icmp_make_a_black_hole():
    text = nft_ruleset([rule(drop="icmp"), rule(drop="fragments", in_dev="eth1")])
    assert chain(text, "prerouting") == [
        'iifname "eth1" ip frag-off & 0x3fff != 0 drop',
        'iifname "eth1" exthdr frag exists drop',
    ]
    assert chain(text, "forward") == ["meta l4proto { icmp, ipv6-icmp } drop"]
    assert len(chain(text, "output")) == 2


def test_no_prerouting_chain_without_a_fragments_rule():
    assert "chain prerouting" not in nft_ruleset([rule(drop="icmp"), rule(drop="all")])
