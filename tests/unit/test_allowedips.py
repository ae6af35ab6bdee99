"""Longest-prefix match over AllowedIPs, and address:port text."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, strategies as st

from harness.allowedips import covering, peer_for
from harness.endpoint import Endpoint, format_endpoint, split_host_port

A = ipaddress.ip_address


def test_most_specific_network_wins_whatever_the_order():
    assert covering(["10.0.0.0/8", "10.1.2.0/24", "10.1.0.0/16"], A("10.1.2.3")) == ipaddress.ip_network("10.1.2.0/24")
    assert covering(["10.0.0.0/8"], A("11.0.0.1")) is None
    assert covering(["0.0.0.0/0", "::/0"], A("fd00::1")) == ipaddress.ip_network("::/0")


def test_the_peer_with_the_longest_prefix_carries_the_packet():
    peers = [("hub", ["100.64.0.0/24"]), ("direct", ["100.64.0.7/32"]), ("default", ["0.0.0.0/0"])]
    assert peer_for(peers, A("100.64.0.7"), lambda p: p[1])[0] == "direct"
    assert peer_for(peers, A("100.64.0.8"), lambda p: p[1])[0] == "hub"
    assert peer_for(peers, A("8.8.8.8"), lambda p: p[1])[0] == "default"
    assert peer_for(peers[:2], A("8.8.8.8"), lambda p: p[1]) is None


networks = st.builds(
    lambda address, prefix: ipaddress.ip_network(f"{ipaddress.IPv4Address(address)}/{prefix}", strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)


@given(st.lists(st.lists(networks, max_size=4), min_size=1, max_size=5), st.integers(0, 2**32 - 1))
def test_peer_for_agrees_with_brute_force(peers, address_number):
    address = ipaddress.IPv4Address(address_number)
    matches = [(net.prefixlen, -i) for i, nets in enumerate(peers) for net in nets if address in net]
    expected = -max(matches)[1] if matches else None
    found = peer_for(list(enumerate(peers)), address, lambda p: p[1])
    assert (found[0] if found else None) == expected


@pytest.mark.parametrize(
    "text, host, port",
    [("server", "server", None), ("server:51820", "server", "51820"), ("[fd00::2]:5", "fd00::2", "5"), ("fd00::2", "fd00::2", None), ("a.b.test:1", "a.b.test", "1")],
)
def test_split_host_port(text, host, port):
    assert split_host_port(text) == (host, port)


def test_format_brackets_only_ipv6():
    assert format_endpoint("198.18.1.2", 51820) == "198.18.1.2:51820"
    assert format_endpoint(A("fd00::2"), 1) == "[fd00::2]:1"
    assert str(Endpoint.parse("[fd00::2]:1")) == "[fd00::2]:1"


@pytest.mark.parametrize("text, message", [("::1:2", r"\[address\]:port"), ("n1:2", "not 'address:port'"), ("1.2.3.4:0", "1-65535"), ("1.2.3.4:x", "1-65535")])
def test_parse_names_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        Endpoint.parse(text)
