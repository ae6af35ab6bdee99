"""Real namespaces and WireGuard peers on this host (wireguard-go where the kernel
lacks the module). Needs root."""

from __future__ import annotations

import ipaddress
import json
import os
import socket

import pytest

from harness.diagnosis.tunnel import diagnose_tunnel
from harness.net import nsexec
from harness.net.iface import IFA_F_NODAD
from harness.steps.checks import check

from .leftovers import built_nodes, harness_objects

pytestmark = pytest.mark.requires("root", "wireguard")
IFA_F_TENTATIVE = 0x40  # linux/if_addr.h

TWO_PEERS = {
    "name": "two-peers",
    "nodes": {"a": {}, "r": {"router": True}, "b": {}},
    "links": [{"ends": ["a", "r"]}, {"ends": ["r", "b"]}],
    "wireguard": {"a": {"peers": {"b": {"endpoint": "b"}}}, "b": {}},
}


def test_builds_namespaces_links_routes_and_tunnel(wgh_network):
    net = wgh_network(TWO_PEERS)
    run = net.plan.run_id
    assert built_nodes(run) == sorted(f"wgh-{run}-{n}" for n in ("a", "r", "b"))
    # the router forwards; the hosts do not
    assert nsexec.read_sysctl(net.node("r").netns_path, "net.ipv4.ip_forward") == "1"
    assert nsexec.read_sysctl(net.node("a").netns_path, "net.ipv4.ip_forward") == "0"
    # computed route: a reaches b's subnet through r
    routes = json.loads(net.run("a", ["ip", "-j", "route", "show", "198.18.2.0/24"]).stdout)
    assert routes and routes[0]["gateway"] == "198.18.1.2"
    result = check(net, {"handshake": {"between": ["a", "b"], "within": "3s"}})
    assert result.ok, result.message
    assert result.measurements["time_to_handshake"].value < 3
    ping = check(net, {"ping": {"from": "b", "to": "a", "family": 6, "count": 2, "interval": "50ms"}})
    assert ping.ok, ping.message
    assert ping.measurements["loss"].value == 0
    assert ping.measurements["rtt_avg"].unit == "ms"


def test_ipv6_addresses_are_usable_at_once(wgh_network):
    """Every IPv6 address the harness adds, underlay and tunnel, skips DAD: a tentative
    one drops what is sent to it until the kernel's DAD work gets the RTNL lock, which
    can take seconds while other namespaces come and go (lost in-tunnel pings in CI)."""
    net = wgh_network("scenarios/ipv6-underlay.yaml")
    seen = []
    for name in net.plan.nodes:
        ipr = net.node(name).netlink
        for message in ipr.get_addr(family=socket.AF_INET6):
            address = ipaddress.ip_address(message.get_attr("IFA_ADDRESS"))
            if address.is_link_local or address.is_loopback:
                continue
            flags = message.get_attr("IFA_FLAGS") or message["flags"]
            seen.append((name, str(address)))
            assert flags & IFA_F_NODAD and not flags & IFA_F_TENTATIVE, (name, address, hex(flags))
    tunnel = {str(a.ip) for wg in net.plan.wireguard.values() for a in wg.addresses if a.version == 6}
    assert tunnel and tunnel <= {address for _, address in seen}
    assert len(seen) > len(tunnel)  # the underlay's too


def test_teardown_removes_everything(wgh_network):
    net = wgh_network(TWO_PEERS)
    run = net.plan.run_id
    assert built_nodes(run)
    if "wireguard-go" in net.wireguard.backends.values():
        assert harness_objects({run})["processes"] and harness_objects({run})["sockets"]
    assert net.teardown() == []
    assert all(not found for found in harness_objects({run}).values()), harness_objects({run})


def test_keys_never_reach_results_or_command_lines(wgh_network):
    net = wgh_network(TWO_PEERS)
    private = {kp.private.hex() for kp in net.wireguard.keys.values()}
    import base64

    private |= {base64.b64encode(kp.private).decode() for kp in net.wireguard.keys.values()}
    assert "private" not in repr(net.wireguard.keys) or all(p not in repr(net.wireguard.keys) for p in private)
    for pid_line in harness_objects({net.plan.run_id})["processes"]:
        cmdline = open(f"/proc/{pid_line.split()[0]}/cmdline").read()
        assert not any(p in cmdline for p in private)


def test_a_preshared_key_is_used_and_never_shown(wgh_network):
    """Both ends hold the key (a handshake needs it), the devices report only a
    fingerprint, and the key is in no command line, log, status or diagnosis."""
    import base64

    spec = {**TWO_PEERS, "wireguard": {"a": {"peers": {"b": {"endpoint": "b", "preshared_key": "site"}}}, "b": {}}}
    net = wgh_network(spec)
    assert check(net, {"handshake": {"between": ["a", "b"], "within": "2s"}}).passed
    key = net.wireguard.preshared_key(net.plan.wireguard["a"].peer("b"))
    forms = {key.hex(), base64.b64encode(key).decode()}
    views = [repr(net.wireguard.devices[n].status()) for n in ("a", "b")]
    assert net.wireguard.peer_status("a", "b").preshared_key == net.wireguard.peer_status("b", "a").preshared_key is not None
    views.append(str(diagnose_tunnel(net, "a", "b")))
    views += [open(f"/proc/{line.split()[0]}/cmdline").read() for line in harness_objects({net.plan.run_id})["processes"]]
    views += [p.read_text(errors="replace") for p in net.work_dir.glob("*.log")]
    assert not [v for v in views for form in forms if form in v]


def test_diagnoses_udp_dropped_on_the_path(wgh_network):
    net = wgh_network(TWO_PEERS)
    # the router silently drops WireGuard's UDP: the classic invisible failure
    rules = "table inet wgh_block {\n chain forward {\n  type filter hook forward priority 0;\n  udp dport 51820 drop\n }\n}\n"
    assert nsexec.run(net.node("r").netns_path, ["nft", "-f", "-"], input=rules).returncode == 0
    result = check(net, {"handshake": {"between": ["a", "b"], "within": "1500ms"}})
    assert not result.passed
    assert "no handshake ever" in result.message and "UDP" in result.message
    assert "answers ping" in result.diagnosis  # the underlay itself works


def test_diagnoses_wrong_public_key(wgh_network):
    net = wgh_network(TWO_PEERS)
    from harness.wg.keys import KeyPair

    # b forgets a and trusts a stranger instead: a's handshakes are ignored
    net.wireguard.devices["b"].remove_peer(net.wireguard.public_key("a"))
    net.wireguard.devices["b"].update_peer(KeyPair.generate().public, allowed_ips=("100.64.0.1/32",))
    result = check(net, {"ping": {"from": "a", "to": "b", "count": 1, "timeout": "1s"}})
    assert not result.passed
    assert "b has no peer with a's public key" in result.message


def test_diagnoses_destination_outside_allowed_ips(wgh_network):
    net = wgh_network(TWO_PEERS)
    result = check(net, {"ping": {"from": "a", "to": "100.64.77.7", "count": 1, "timeout": "500ms"}})
    assert not result.passed
    assert "[allowed-ips-sender] no peer's AllowedIPs on a cover 100.64.77.7" in result.message


def test_diagnoses_unreachable_endpoint(wgh_network):
    net = wgh_network(TWO_PEERS)
    ipr = net.node("r").netlink
    ipr.link("set", index=ipr.link_lookup(ifname="eth1")[0], state="down")
    result = check(net, {"handshake": {"between": ["a", "b"], "within": "1s"}})
    assert not result.passed
    assert "unreachable on the underlay" in result.message


def test_hub_forwards_between_spokes(wgh_network):
    net = wgh_network("scenarios/hub-and-spoke.yaml")
    # spoke1 has no peer for spoke2 at all: the packet can only go through the hub
    assert [p.node for p in net.plan.wireguard["spoke1"].peers] == ["hub"]
    result = check(net, {"ping": {"from": "spoke1", "to": "spoke2", "count": 2, "interval": "50ms"}})
    assert result.ok, result.message


def test_a_namespace_is_entered_by_name_path_or_open_fd_alike(wgh_network):
    # an engine whose hosts have no /run/netns name (Mininet's, held by a process) hands
    # over a path or an fd: commands, sockets and sysctls must land in the same place
    net = wgh_network(TWO_PEERS)
    path = net.node("a").netns_path
    # a named namespace (the netns engine's) can also be entered by its name
    name = path.rsplit("/", 1)[1] if path.startswith(str(nsexec.NETNS_RUN_DIR) + "/") else path
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        links = {
            way: sorted(link["ifname"] for link in json.loads(nsexec.run(ns, ["ip", "-j", "link"], check=True).stdout))
            for way, ns in (("name", name), ("path", path), ("fd", fd))
        }
        assert links["name"] == links["path"] == links["fd"] and "eth0" in links["fd"]
        inode = {way: nsexec.call_in(ns, lambda: os.stat("/proc/thread-self/ns/net").st_ino) for way, ns in (("path", path), ("fd", fd))}
        assert inode["path"] == inode["fd"] == os.stat(path).st_ino
        assert inode["fd"] != os.stat("/proc/self/ns/net").st_ino  # not the host's
        assert nsexec.read_sysctl(fd, "net.ipv4.conf.all.forwarding") == nsexec.read_sysctl(name, "net.ipv4.conf.all.forwarding")
        os.fstat(fd)  # the caller's fd is still open after every use
    finally:
        os.close(fd)
