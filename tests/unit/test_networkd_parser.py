"""systemd-networkd's WireGuard files: case-sensitive keys, whole-line comments,
repeated [WireGuardPeer]s, lists an empty assignment resets, keys from files (and the
systemd-network user who must be able to read them), routes only with RouteTable=,
and mistakes refused at their line. Pure (the key files are the test's own)."""

from __future__ import annotations

import base64
import ipaddress
import os
import textwrap

import pytest

from harness.configs.ini import ConfigFileError
from harness.configs.networkd import load_networkd, parse_networkd

try:
    import grp

    NETWORKD_GROUP: int | None = grp.getgrnam("systemd-network").gr_gid
except KeyError:
    NETWORKD_GROUP = None
PRIVATE = base64.b64encode(bytes(range(32))).decode()
PEER = base64.b64encode(bytes([1]) * 32).decode()

NETDEV = f"""\
# /etc/systemd/network/50-wg0.netdev
[NetDev]
Name=wg0
Kind=wireguard
MTUBytes=1420

[WireGuard]
PrivateKeyFile=wg0.key
ListenPort=51820
; RouteTable=main

[WireGuardPeer]
PublicKey={PEER}
AllowedIPs=10.0.0.9/32
AllowedIPs=
AllowedIPs=10.0.0.2/32,fd00::2/128
Endpoint=[2001:db8::7]:51820
PersistentKeepalive=25
"""

NETWORK = """\
[Match]
Name=wg0

[Network]
Address=10.0.0.1/24
Address=fd00::1/64

[Route]
Destination=10.9.0.0/16
"""


def _files(tmp_path, netdev=NETDEV, network=NETWORK, key_mode=0o640):
    (tmp_path / "wg0.key").write_text(PRIVATE + "\n")
    os.chmod(tmp_path / "wg0.key", key_mode)
    if NETWORKD_GROUP is not None:  # as a key file is set up for networkd: root:systemd-network
        try:
            os.chown(tmp_path / "wg0.key", -1, NETWORKD_GROUP)
        except PermissionError:  # not root: the warning below is then expected too
            pass
    (tmp_path / "wg0.netdev").write_text(netdev)
    (tmp_path / "wg0.network").write_text(network)
    return tmp_path / "wg0.netdev"


def test_a_real_looking_pair(tmp_path):
    config = load_networkd(_files(tmp_path))
    assert config.name == "wg0" and config.interface.private_key == bytes(range(32))
    assert config.warnings == () or os.geteuid() != 0
    assert config.interface.addresses == (ipaddress.ip_interface("10.0.0.1/24"), ipaddress.ip_interface("fd00::1/64"))
    assert (config.interface.listen_port, config.interface.mtu) == (51820, 1420)
    assert config.interface.table == "off"  # networkd routes AllowedIPs only with RouteTable=
    (peer,) = config.peers
    assert peer.allowed_ips == (ipaddress.ip_network("10.0.0.2/32"), ipaddress.ip_network("fd00::2/128"))  # the empty line reset the list
    assert peer.endpoint == "[2001:db8::7]:51820" and peer.persistent_keepalive == 25


def test_route_table_turns_routes_on(tmp_path):
    config = load_networkd(_files(tmp_path, NETDEV.replace("; RouteTable=main", "RouteTable=main")))
    assert config.interface.table == "main"


def test_a_key_file_networkd_cannot_read_is_a_warning(tmp_path):
    config = load_networkd(_files(tmp_path, key_mode=0o600))
    (warning,) = config.warnings
    assert warning.startswith(f"{tmp_path / 'wg0.netdev'}:8: PrivateKeyFile:") and "systemd-network" in warning
    assert PRIVATE not in warning


@pytest.mark.parametrize(
    "change, line, words",
    [
        (("Kind=wireguard", "Kind=bridge"), 4, "Kind=wireguard"),
        (("ListenPort=51820", "listenport=51820"), 9, "case-sensitive: ListenPort"),
        (("PersistentKeepalive=25", "PersistentKeepalive=often"), 18, "PersistentKeepalive: 'often'"),
        (("PrivateKeyFile=wg0.key", f"PrivateKeyFile=wg0.key\nPrivateKey={PRIVATE}"), 8, "give one"),
        (("PrivateKeyFile=wg0.key", "PrivateKeyFile=missing.key"), 8, "cannot read"),
        ((f"PublicKey={PEER}", "# no key"), 12, "[WireGuardPeer] without a PublicKey"),
    ],
)
def test_mistakes_are_refused_at_their_line(tmp_path, change, line, words):
    path = _files(tmp_path, NETDEV.replace(*change))
    with pytest.raises(ConfigFileError) as caught:
        load_networkd(path)
    assert str(caught.value).startswith(f"{path}:{line}: ") and words in str(caught.value), str(caught.value)


def test_a_world_readable_key_file_is_refused(tmp_path):
    with pytest.raises(ConfigFileError, match="readable by everyone"):
        load_networkd(_files(tmp_path, key_mode=0o644))


def test_the_network_file_must_match_the_interface(tmp_path):
    with pytest.raises(ConfigFileError, match=r"wg0.network:2: Name: matches 'wg1'"):
        load_networkd(_files(tmp_path, network=NETWORK.replace("Name=wg0", "Name=wg1")))


def test_without_a_network_file_there_are_no_addresses():
    config = parse_networkd(textwrap.dedent(NETDEV).replace("PrivateKeyFile=wg0.key", f"PrivateKey={PRIVATE}"), "x.netdev")
    assert config.interface.addresses == ()
