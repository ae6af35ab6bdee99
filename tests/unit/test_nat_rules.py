"""harness.net.nat: the nftables text and conntrack sysctls (pure parts)."""

import re

from harness.net.nat import TABLE, conntrack_sysctls, nft_ruleset
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
        "net.netfilter.nf_conntrack_udp_timeout": "5",
        "net.netfilter.nf_conntrack_udp_timeout_stream": "5",
    }


def test_conntrack_sysctls_round_and_floor_at_one_second():
    assert conntrack_sysctls(NatPlan("eth1", 2.6))["net.netfilter.nf_conntrack_udp_timeout"] == "3"
    assert conntrack_sysctls(NatPlan("eth1", 0.2))["net.netfilter.nf_conntrack_udp_timeout_stream"] == "1"


def test_no_sysctls_without_timeout():
    assert conntrack_sysctls(NatPlan("eth1", None)) == {}
