"""Full-tunnel policy routing on real namespaces, with either backend: wg-quick's
rules and table are installed, WireGuard's own packets leave by the underlay while
everything else enters the tunnel, a restart keeps it working, and the same network
without the rules loops (and is diagnosed so)."""

from __future__ import annotations

import base64
import socket

import pytest

from harness.net.policy import installed_rules
from harness.steps.checks import check
from harness.diagnosis.cryptokey import routing_loop, sends_into_tunnel
from harness.diagnosis.tunnel import diagnose_tunnel
from harness.wg import uapi
from harness.wg.backends import KernelDevice

pytestmark = pytest.mark.requires("root", "wireguard")


def full_tunnel(table: str = "auto") -> dict:
    return {
        "nodes": {"laptop": {"gateway": "isp"}, "isp": {"router": True}, "vpn": {"nat": {"outside": "web"}}, "web": {}},
        "links": [
            {"ends": ["laptop", "isp"], "ipv6": True},
            {"ends": ["isp", "vpn"], "ipv6": True},
            {"ends": ["vpn", "web"], "ipv6": True},
        ],
        "wireguard": {
            "vpn": {},
            "laptop": {"table": table, "peers": {"vpn": {"endpoint": "vpn", "allowed_ips": ["0.0.0.0/0", "::/0"]}}},
        },
    }


def device_fwmark(net, node: str) -> int:
    device = net.wireguard.devices[node]
    if isinstance(device, KernelDevice):
        return next(msg.get_attr("WGDEVICE_A_FWMARK") or 0 for msg in device.netlink.info(device.ifname))
    lines = uapi._exchange(device.ifname, "get=1\n\n")
    return int(next((line.split("=", 1)[1] for line in lines if line.startswith("fwmark=")), "0"))


def oif_name(net, node: str, **query) -> str:
    ipr = net.node(node).netlink
    route = ipr.route("get", **query)[0]
    return ipr.get_links(route.get_attr("RTA_OIF"))[0].get_attr("IFLA_IFNAME")


def _passed(result) -> bool:
    """A check that failed twice on an overloaded CPU is inconclusive (README, "Verdicts
    on a busy machine"): neither a pass nor a failure, so the test is skipped."""
    if result.inconclusive:
        pytest.skip(f"inconclusive: {result.message}")
    return result.ok


def test_full_tunnel_routes_everything_but_its_own_packets_into_the_tunnel(wgh_network):
    net = wgh_network(full_tunnel())
    wg = net.plan.wireguard["laptop"]
    ipr = net.node("laptop").netlink
    assert device_fwmark(net, "laptop") == 51820
    for version in (4, 6):
        rules = installed_rules(ipr, version)
        assert {"priority": 32765, "table": 51820, "fwmark": 51820, "inverted": True} in [
            {k: r[k] for k in ("priority", "table", "fwmark", "inverted")} for r in rules
        ]
        suppress = next(r for r in rules if r["priority"] == 32764)
        assert suppress["table"] == 254 and suppress["suppress_prefixlength"] == 0
    # unmarked traffic (anything a program sends) goes into the tunnel, IPv4 and IPv6...
    web4, web6 = net.plan.target_address("laptop", "web", "tunnel", 4), net.plan.target_address("laptop", "web", "tunnel", 6)
    assert oif_name(net, "laptop", dst=str(web4)) == wg.ifname
    assert oif_name(net, "laptop", dst=str(web6), family=socket.AF_INET6) == wg.ifname
    # ...while WireGuard's own, marked packets to the endpoint take the underlay
    endpoint = str(wg.peer("vpn").endpoint.address)
    assert oif_name(net, "laptop", dst=endpoint, mark=51820) == "eth0"
    assert routing_loop(net, "laptop", str(wg.peer("vpn").endpoint)) is None
    assert check(net, {"handshake": {"between": ["laptop", "vpn"], "within": 3}}).ok
    # (timeouts for a software-emulated VM, 10-50x slower: the first packet also sets up the NAT)
    ping4 = check(net, {"ping": {"from": "laptop", "to": "web", "count": 2, "interval": 0.05, "timeout": 5}})
    assert _passed(ping4), ping4.diagnosis
    ping6 = check(net, {"ping": {"from": "laptop", "to": "web", "family": 6, "count": 2, "interval": 0.05, "timeout": 5}})
    assert _passed(ping6), ping6.diagnosis
    # it really went through the tunnel: the server received the pings from the laptop
    status = net.wireguard.devices["vpn"].status().peer(net.wireguard.public_key("laptop"))
    assert status.rx_bytes > 2 * 84


def test_a_full_tunnel_peer_is_not_blamed_for_not_answering_underlay_pings(wgh_network):
    """The laptop answers a ping from the server through its tunnel (its default route),
    where the server drops it (not from the laptop's AllowedIPs): that silence is no
    evidence. A working full tunnel's diagnosis named endpoint-unreachable (a failed
    IPv6 ping on a loaded VM got that wrong cause instead of a retry)."""
    net = wgh_network(full_tunnel())
    assert check(net, {"handshake": {"between": ["laptop", "vpn"], "within": 3}}).ok
    assert sends_into_tunnel(net, "laptop", str(net.plan.wireguard["laptop"].peer("vpn").endpoint.address))
    diagnosis = diagnose_tunnel(net, "laptop", "vpn")
    text = "\n".join(diagnosis.lines)
    assert "not probed from vpn: laptop routes its answers to" in text, text
    assert "answers ping from laptop" in text, text  # the laptop's own probe, with WireGuard's mark
    assert diagnosis.code != "endpoint-unreachable", text


def test_restart_keeps_the_full_tunnel_working(wgh_network):
    net = wgh_network(full_tunnel())
    assert check(net, {"handshake": {"between": ["laptop", "vpn"], "within": 3}}).ok
    net.wireguard.restart("laptop")  # routes and fwmark again, the rules are already there
    assert device_fwmark(net, "laptop") == 51820
    assert len([r for r in installed_rules(net.node("laptop").netlink, 4) if r["priority"] in (32764, 32765)]) == 2
    # the new device's first initiation may be lost under load (the emulated VM with three
    # other pytest workers: CI9); WireGuard retries after REKEY_TIMEOUT (5 s), so wait past it
    ping = check(net, {"ping": {"from": "laptop", "to": "web", "count": 2, "interval": 0.05, "timeout": 6}})
    assert ping.ok, ping.message


def test_default_route_in_main_loops_and_is_diagnosed(wgh_network):
    net = wgh_network(full_tunnel(table="main"))
    wg = net.plan.wireguard["laptop"]
    assert device_fwmark(net, "laptop") == 0
    assert not [r for r in installed_rules(net.node("laptop").netlink, 4) if r["table"] == 51820]
    assert oif_name(net, "laptop", dst=str(wg.peer("vpn").endpoint.address)) == wg.ifname
    assert "loop" in routing_loop(net, "laptop", str(wg.peer("vpn").endpoint))
    result = check(net, {"handshake": {"between": ["laptop", "vpn"], "within": 1.5, "expect": "fail", "cause": "routing-loop"}})
    assert result.outcome == "expected-fail", result.message
    assert net.wireguard.devices["vpn"].status().peer(net.wireguard.public_key("laptop")).rx_bytes == 0  # nothing ever arrived


def test_delivery_evidence_tells_a_dropped_source_from_a_lost_reply(wgh_network):
    """The receiver's counters decide the cause: a source outside its AllowedIPs is
    dropped before its IP stack (allowed-ips-receiver)."""
    net = wgh_network(
        {
            "nodes": {"a": {}, "b": {}},
            "links": [{"ends": ["a", "b"]}],
            "wireguard": {
                "a": {"address": ["100.64.0.1/32", "100.64.0.9/32"], "peers": {"b": {"endpoint": "b"}}},
                "b": {"peers": {"a": {"allowed_ips": ["100.64.0.1/32"]}}},
            },
        }
    )
    assert check(net, {"handshake": {"between": ["a", "b"], "within": 2}}).ok
    allowed = check(net, {"ping": {"from": "a", "to": "b", "source": "100.64.0.1", "count": 1}})
    assert allowed.ok
    dropped = check(net, {"ping": {"from": "a", "to": "b", "source": "100.64.0.9", "count": 2, "interval": 0.05, "timeout": 0.5}})
    assert not dropped.ok
    assert "[allowed-ips-receiver]" in dropped.message and "decrypted" in dropped.message
    assert "echo requests reaching its IP stack +0" in dropped.diagnosis
    # keys never appear in a diagnosis: only short fingerprints
    assert base64.b64encode(net.wireguard.keys["a"].private).decode() not in dropped.diagnosis
