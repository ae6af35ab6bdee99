"""wg-quick(8) files (wg0.conf): [Interface] and any number of [Peer] sections. Keys are
matched without regard to case, as wg(8) and wg-quick do; `#` starts a comment anywhere.
Every value is checked and kept with its line, for file:line errors now and for the
scenario built from the file later."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.configs.ini import ConfigFileError, Section, Setting, parse_sections, read_text
from harness.endpoint import split_host_port, valid_port

KEY_BYTES = 32
HOOKS = ("PreUp", "PostUp", "PreDown", "PostDown")
INTERFACE_KEYS = ("PrivateKey", "Address", "ListenPort", "MTU", "Table", "FwMark", "DNS", "SaveConfig", *HOOKS)
PEER_KEYS = ("PublicKey", "PresharedKey", "AllowedIPs", "Endpoint", "PersistentKeepalive")
LISTS = ("Address", "AllowedIPs", "DNS", *HOOKS)  # may repeat; their values add up


@dataclass(frozen=True)
class PeerEntry:
    public_key: bytes
    line: int  # of its [Peer] header
    preshared_key: bytes | None = field(default=None, repr=False)
    allowed_ips: tuple[Any, ...] = ()
    endpoint: str | None = None  # host:port as written (a DNS name, an address, [v6])
    persistent_keepalive: int = 0
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)  # field → line


@dataclass(frozen=True)
class InterfaceEntry:
    private_key: bytes | None = field(default=None, repr=False)
    addresses: tuple[Any, ...] = ()
    listen_port: int | None = None
    mtu: int | None = None
    table: str | None = None  # auto, off, main, or a table number or name
    fwmark: int | None = None
    dns: tuple[str, ...] = ()
    hooks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    save_config: bool = False
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class WgQuickConfig:
    file: str
    interface: InterfaceEntry
    peers: tuple[PeerEntry, ...]
    warnings: tuple[str, ...] = ()  # file:line: what would bite on a real machine

    @property
    def name(self) -> str:
        """The node a file stands for: server.conf → server."""
        return Path(self.file).stem


def load_wg_quick(path: str | Path) -> WgQuickConfig:
    return parse_wg_quick(read_text(path), str(path))


def parse_wg_quick(text: str, file: str = "<wg-quick>") -> WgQuickConfig:
    sections = parse_sections(text, file)
    interfaces = [s for s in sections if s.name.lower() == "interface"]
    for section in sections:
        if section.name.lower() not in ("interface", "peer"):
            raise ConfigFileError(file, section.line, f"[{section.name}]: wg-quick knows [Interface] and [Peer]")
    if len(interfaces) != 1:
        raise ConfigFileError(file, interfaces[1].line if interfaces else None, "a wg-quick file has exactly one [Interface]")
    peers = tuple(_peer(file, s) for s in sections if s.name.lower() == "peer")
    seen: dict[bytes, int] = {}
    for peer in peers:
        if peer.public_key in seen:
            raise ConfigFileError(file, peer.line, f"PublicKey: the same peer as the [Peer] at line {seen[peer.public_key]}")
        seen[peer.public_key] = peer.line
    return WgQuickConfig(file, _interface(file, interfaces[0]), peers)


# --- sections ---------------------------------------------------------------------


def _settings(file: str, section: Section, known: tuple[str, ...]) -> dict[str, list[Setting]]:
    """The section's settings by canonical key; unknown keys and repeated single ones refused."""
    canonical = {k.lower(): k for k in known}
    found: dict[str, list[Setting]] = {}
    for setting in section.settings:
        key = canonical.get(setting.key.lower())
        if key is None:
            raise ConfigFileError(file, setting.line, f"{setting.key}: not a key of [{section.name}] (known: {', '.join(known)})")
        if key in found and key not in LISTS:
            raise ConfigFileError(file, setting.line, f"{key}: given twice (also at line {found[key][0].line})")
        found.setdefault(key, []).append(setting)
    return found


def _interface(file: str, section: Section) -> InterfaceEntry:
    found = _settings(file, section, INTERFACE_KEYS)
    one = _single(file, found)
    return InterfaceEntry(
        private_key=one("PrivateKey", _key),
        addresses=_listed(file, found, "Address", _interface_address),
        listen_port=one("ListenPort", _port),
        mtu=one("MTU", _bounded(576, 65535)),
        table=one("Table", _table),
        fwmark=one("FwMark", _fwmark),
        dns=_listed(file, found, "DNS", str),
        hooks={hook: tuple(s.value for s in found[hook]) for hook in HOOKS if hook in found},
        save_config=one("SaveConfig", _boolean) or False,
        lines={key: settings[0].line for key, settings in found.items()},
    )


def _peer(file: str, section: Section) -> PeerEntry:
    found = _settings(file, section, PEER_KEYS)
    if "PublicKey" not in found:
        raise ConfigFileError(file, section.line, "[Peer] without a PublicKey")
    one = _single(file, found)
    return PeerEntry(
        public_key=one("PublicKey", _key),
        line=section.line,
        preshared_key=one("PresharedKey", _key),
        allowed_ips=_listed(file, found, "AllowedIPs", _network),
        endpoint=one("Endpoint", _endpoint),
        persistent_keepalive=one("PersistentKeepalive", _keepalive) or 0,
        lines={key: settings[0].line for key, settings in found.items()},
    )


def _single(file: str, found: dict[str, list[Setting]]) -> Callable[[str, Callable[[str], Any]], Any]:
    def one(key: str, convert: Callable[[str], Any]) -> Any:
        if key not in found:
            return None
        setting = found[key][0]
        return _converted(file, setting, key, convert)

    return one


def _listed(file: str, found: dict[str, list[Setting]], key: str, convert: Callable[[str], Any]) -> tuple[Any, ...]:
    values = []
    for setting in found.get(key, []):
        # a hook is one shell command, commas and all; the other lists are comma-separated
        for item in [setting.value] if key in HOOKS else setting.value.split(","):
            item = item.strip()
            if item:
                values.append(_converted(file, setting, key, convert, item))
    return tuple(values)


def _converted(file: str, setting: Setting, key: str, convert: Callable[[str], Any], value: str | None = None) -> Any:
    try:
        return convert(setting.value if value is None else value)
    except ValueError as exc:
        raise ConfigFileError(file, setting.line, f"{key}: {exc}") from None


# --- values -----------------------------------------------------------------------


def _key(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a base64 key (44 characters, as `wg genkey` prints)") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"a key is {KEY_BYTES} bytes, this one {len(raw)}")
    return raw


def _interface_address(text: str) -> Any:
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an address with a prefix, e.g. 10.0.0.1/24") from None


def _network(text: str) -> Any:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not a network, e.g. 10.0.0.0/24") from None


def _port(text: str) -> int:
    port = valid_port(text)
    if port is None:
        raise ValueError(f"{text!r} is not a port (1-65535)")
    return port


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        if not text.isdigit() or not low <= int(text) <= high:
            raise ValueError(f"{text!r} is not a number from {low} to {high}")
        return int(text)

    return convert


def _keepalive(text: str) -> int:
    return 0 if text.lower() == "off" else _bounded(0, 65535)(text)


def _fwmark(text: str) -> int | None:
    if text.lower() == "off":
        return None
    try:
        value = int(text, 0)
    except ValueError:
        raise ValueError(f"{text!r} is not a mark (a number, 0x… for hex, or off)") from None
    if not 0 <= value < 2**32:
        raise ValueError(f"{text!r} is out of range for a mark")
    return value or None


def _table(text: str) -> str:
    if text.lower() in ("auto", "off", "main"):
        return text.lower()
    if text.isdigit() or (text.replace("_", "").replace("-", "").isalnum() and len(text) <= 32):
        return text
    raise ValueError(f"{text!r} is not auto, off, main, or a routing table number or name")


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "yes", "1"):
        return True
    if text.lower() in ("false", "no", "0"):
        return False
    raise ValueError(f"{text!r} is not true or false")


def _endpoint(text: str) -> str:
    host, port = split_host_port(text)
    if not host or port is None or valid_port(port) is None:
        raise ValueError(f"{text!r} is not host:port (an address, [an:ipv6::address] or a DNS name, and a port)")
    return text
