"""wg-quick files as people write them: comments anywhere, keys in any case, repeated
Address and AllowedIPs lines, several [Peer] sections, IPv6 endpoints in brackets,
optional fields left out; and bad files refused at their line. Pure."""

from __future__ import annotations

import base64
import ipaddress
import textwrap

import pytest

from harness.configs.ini import ConfigFileError
from harness.configs.wgquick import load_wg_quick, parse_wg_quick

PRIVATE = base64.b64encode(bytes(range(32))).decode()
PEER_A = base64.b64encode(bytes([1]) * 32).decode()
PEER_B = base64.b64encode(bytes([2]) * 32).decode()
PSK = base64.b64encode(bytes([9]) * 32).decode()

SERVER = f"""\
# provisioned by ansible
[Interface]
PrivateKey = {PRIVATE}   # trailing comment
address = 10.0.0.1/24, fd00::1/64
Address = 10.0.1.1/24
ListenPort = 51820
MTU = 1420
Table = off
FwMark = 0xca6c
PostUp = iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE
SaveConfig = false

[Peer]
# laptop
PublicKey = {PEER_A}
PresharedKey = {PSK}
AllowedIPs = 10.0.0.2/32
AllowedIPs = fd00::2/128
Endpoint = [2001:db8::7]:51821
PersistentKeepalive = 25

[peer]
publickey = {PEER_B}
allowedips = 10.0.0.3/32,10.9.0.0/16
endpoint = vpn.example.com:51820
"""


def test_a_real_looking_file():
    config = parse_wg_quick(SERVER, "server.conf")
    interface = config.interface
    assert config.name == "server"
    assert interface.private_key == bytes(range(32))
    assert interface.addresses == tuple(map(ipaddress.ip_interface, ("10.0.0.1/24", "fd00::1/64", "10.0.1.1/24")))
    assert (interface.listen_port, interface.mtu, interface.table, interface.fwmark) == (51820, 1420, "off", 0xCA6C)
    assert interface.hooks["PostUp"] == ("iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE",)
    assert interface.save_config is False and interface.lines["ListenPort"] == 6
    laptop, phone = config.peers
    assert laptop.public_key == bytes([1]) * 32 and laptop.preshared_key == bytes([9]) * 32
    assert laptop.allowed_ips == (ipaddress.ip_network("10.0.0.2/32"), ipaddress.ip_network("fd00::2/128"))
    assert laptop.endpoint == "[2001:db8::7]:51821" and laptop.persistent_keepalive == 25 and laptop.line == 13
    assert phone.endpoint == "vpn.example.com:51820" and phone.persistent_keepalive == 0 and phone.preshared_key is None
    assert len(phone.allowed_ips) == 2


def test_optional_fields_may_be_missing(tmp_path):
    path = tmp_path / "client.conf"
    path.write_text(f"[Interface]\nPrivateKey={PRIVATE}\n[Peer]\nPublicKey={PEER_A}\n")
    config = load_wg_quick(path)
    assert config.interface.addresses == () and config.interface.listen_port is None
    assert config.peers[0].allowed_ips == () and config.peers[0].endpoint is None


def test_keys_never_show_in_a_repr():
    config = parse_wg_quick(SERVER, "server.conf")
    text = repr(config)
    assert PRIVATE not in text and PSK not in text and "bytes(range" not in text
    assert repr(bytes(range(32))) not in text and repr(bytes([9]) * 32) not in text


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("[Interface]\nListenPort = 70000\n", 2, "ListenPort: '70000' is not a port"),
        ("[Interface]\nAddress = 10.0.0.1/33\n", 2, "Address: '10.0.0.1/33' is not an address"),
        ("[Interface]\nPrivateKey = abc\n", 2, "PrivateKey: not a base64 key"),
        (f"[Interface]\nPrivateKey = {base64.b64encode(b'x' * 16).decode()}\n", 2, "a key is 32 bytes, this one 16"),
        ("[Interface]\nListenPort = 1\nlistenport = 2\n", 3, "ListenPort: given twice (also at line 2)"),
        ("[Interface]\nColour = blue\n", 2, "Colour: not a key of [Interface]"),
        ("[Interface]\n[Peer]\nAllowedIPs = 10.0.0.0/8\n", 2, "[Peer] without a PublicKey"),
        (f"[Interface]\n[Peer]\nPublicKey = {PEER_A}\nEndpoint = 10.0.0.1\n", 4, "Endpoint: '10.0.0.1' is not host:port"),
        (f"[Interface]\n[Peer]\nPublicKey = {PEER_A}\nPersistentKeepalive = soon\n", 4, "PersistentKeepalive: 'soon' is not a number"),
        (f"[Interface]\n[Peer]\nPublicKey = {PEER_A}\n[Peer]\nPublicKey = {PEER_A}\n", 4, "the same peer as the [Peer] at line 2"),
        ("ListenPort = 1\n", 1, "comes before any [section]"),
        ("[Interface]\njust words\n", 2, "is not 'Key = Value'"),
        ("[Interfaces]\n", 1, "wg-quick knows [Interface] and [Peer]"),
        ("[Interface]\n[Interface]\n", 2, "exactly one [Interface]"),
        ("[Interface\n", 1, "is not a section header"),
    ],
)
def test_bad_files_are_refused_at_their_line(text, line, words):
    with pytest.raises(ConfigFileError) as caught:
        parse_wg_quick(text, "wg0.conf")
    assert str(caught.value).startswith(f"wg0.conf:{line}: ") and words in str(caught.value), str(caught.value)


def test_unreadable_and_binary_files(tmp_path):
    with pytest.raises(ConfigFileError, match="cannot read it"):
        load_wg_quick(tmp_path / "missing.conf")
    binary = tmp_path / "bin.conf"
    binary.write_bytes(b"[Interface]\n\xff\xfe\n")
    with pytest.raises(ConfigFileError, match=r"bin.conf:2: not UTF-8"):
        load_wg_quick(binary)
