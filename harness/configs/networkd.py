"""systemd-networkd's WireGuard configuration: a `.netdev` ([NetDev] Kind=wireguard,
[WireGuard], [WireGuardPeer]…) and its `.network` ([Match] Name=, [Network] Address=).
systemd's rules, not wg-quick's: keys are case-sensitive, comments are whole lines
starting with '#' or ';', an empty assignment (`AllowedIPs=`) empties a list, keys may
come from files (PrivateKeyFile=, PresharedKeyFile=) that networkd reads as the
systemd-network user, and routes for AllowedIPs exist only where RouteTable= asks for
them. The result has wg-quick's shape (harness.configs.wgquick), so the rest of the
harness treats both alike."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from harness.configs import wgquick
from harness.configs.ini import ConfigFileError, Section, Setting, parse_sections, read_text
from harness.configs.wgquick import InterfaceEntry, PeerEntry, WgQuickConfig

NETDEV = {"NetDev": ("Name", "Kind", "MTUBytes", "Description"), "WireGuard": ("PrivateKey", "PrivateKeyFile", "ListenPort", "FirewallMark", "RouteTable", "RouteMetric")}
PEER = ("PublicKey", "PresharedKey", "PresharedKeyFile", "AllowedIPs", "Endpoint", "PersistentKeepalive", "RouteTable", "RouteMetric")
NETWORK_KEYS = {"Match": ("Name",), "Network": ("Address", "DNS")}
LISTS = ("AllowedIPs", "Address", "DNS")


def load_networkd(netdev: str | Path, network: str | Path | None = None) -> WgQuickConfig:
    """The .netdev (and the .network next to it, named alike, unless given) as one config."""
    netdev = Path(netdev)
    if network is None:
        sibling = netdev.with_suffix(".network")
        network = sibling if sibling.exists() else None
    return parse_networkd(read_text(netdev), str(netdev), read_text(network) if network else None, str(network) if network else None)


def parse_networkd(netdev_text: str, netdev_file: str, network_text: str | None = None, network_file: str | None = None) -> WgQuickConfig:
    sections = parse_sections(netdev_text, netdev_file, comments="#;")
    netdev = _one(sections, "NetDev", netdev_file)
    netdev_settings = _settings(netdev_file, netdev, NETDEV["NetDev"])
    kind = _value(netdev_settings, "Kind")
    if kind is None or kind.value != "wireguard":
        raise ConfigFileError(netdev_file, kind.line if kind else netdev.line, "Kind: a WireGuard .netdev says Kind=wireguard")
    name = _value(netdev_settings, "Name")
    wireguard = _settings(netdev_file, _one(sections, "WireGuard", netdev_file), NETDEV["WireGuard"])
    for section in sections:
        if section.name not in ("NetDev", "WireGuard", "WireGuardPeer"):
            raise ConfigFileError(netdev_file, section.line, f"[{section.name}]: a WireGuard .netdev has [NetDev], [WireGuard] and [WireGuardPeer]")
    peers = [(s, _settings(netdev_file, s, PEER)) for s in sections if s.name == "WireGuardPeer"]
    tables = {v.value for _, found in peers for v in [_value(found, "RouteTable")] if v is not None}
    own_table = _value(wireguard, "RouteTable")
    if own_table is not None:
        tables.add(own_table.value)
    if len(tables) > 1:
        raise ConfigFileError(netdev_file, None, f"RouteTable: peers route into different tables ({', '.join(sorted(tables))}); one table per interface is supported")
    lines = {key: settings[-1].line for key, settings in {**netdev_settings, **wireguard}.items() if settings}
    warnings: list[str] = []
    convert = _converter(netdev_file)
    interface = InterfaceEntry(
        private_key=_key_of(netdev_file, wireguard, "PrivateKey", "PrivateKeyFile", warnings),
        addresses=_network_addresses(network_text, network_file, name.value if name else None),
        listen_port=convert(wireguard, "ListenPort", wgquick._port),
        mtu=convert(netdev_settings, "MTUBytes", wgquick._bounded(576, 65535)),
        # networkd adds no route for AllowedIPs unless RouteTable= names a table
        table=wgquick._table(tables.pop()) if tables else "off",
        fwmark=convert(wireguard, "FirewallMark", wgquick._fwmark),
        lines=lines,
    )
    entries = []
    for section, found in peers:
        key = _value(found, "PublicKey")
        if key is None:
            raise ConfigFileError(netdev_file, section.line, "[WireGuardPeer] without a PublicKey")
        entries.append(
            PeerEntry(
                public_key=convert(found, "PublicKey", wgquick._key),
                line=section.line,
                preshared_key=_key_of(netdev_file, found, "PresharedKey", "PresharedKeyFile", warnings),
                allowed_ips=tuple(wgquick._converted(netdev_file, s, "AllowedIPs", wgquick._network, item.strip()) for s in _list(found, "AllowedIPs") for item in s.value.split(",") if item.strip()),
                endpoint=convert(found, "Endpoint", wgquick._endpoint),
                persistent_keepalive=convert(found, "PersistentKeepalive", wgquick._keepalive) or 0,
                lines={k: v[-1].line for k, v in found.items() if v},
            )
        )
    return WgQuickConfig(netdev_file, interface, tuple(entries), tuple(warnings))


def _one(sections: list[Section], name: str, file: str) -> Section:
    found = [s for s in sections if s.name == name]
    if len(found) != 1:
        raise ConfigFileError(file, found[1].line if len(found) > 1 else None, f"a WireGuard .netdev has exactly one [{name}]")
    return found[0]


def _settings(file: str, section: Section, known: tuple[str, ...]) -> dict[str, list[Setting]]:
    found: dict[str, list[Setting]] = {}
    for setting in section.settings:
        if setting.key not in known:
            close = [k for k in known if k.lower() == setting.key.lower()]
            hint = f" (systemd's keys are case-sensitive: {close[0]})" if close else f" (known: {', '.join(known)})"
            raise ConfigFileError(file, setting.line, f"{setting.key}: not a key of [{section.name}]{hint}")
        found.setdefault(setting.key, []).append(setting)
    return found


def _value(found: dict[str, list[Setting]], key: str) -> Setting | None:
    """A single-valued key: the last assignment wins, as in systemd; empty unsets it."""
    settings = found.get(key)
    if not settings or not settings[-1].value:
        return None
    return settings[-1]


def _list(found: dict[str, list[Setting]], key: str) -> list[Setting]:
    """A list key's assignments since the last empty one (which resets the list)."""
    kept: list[Setting] = []
    for setting in found.get(key, []):
        kept = [] if not setting.value else kept + [setting]
    return kept


def _converter(file: str) -> Any:
    def convert(found: dict[str, list[Setting]], key: str, function: Any) -> Any:
        setting = _value(found, key)
        return wgquick._converted(file, setting, key, function) if setting is not None else None

    return convert


def _key_of(file: str, found: dict[str, list[Setting]], inline: str, from_file: str, warnings: list[str]) -> bytes | None:
    given, path_setting = _value(found, inline), _value(found, from_file)
    if given is not None and path_setting is not None:
        raise ConfigFileError(file, path_setting.line, f"{from_file}: {inline} is set too (line {given.line}): give one")
    if given is not None:
        return wgquick._converted(file, given, inline, wgquick._key)
    if path_setting is None:
        return None
    path = Path(path_setting.value)
    if not path.is_absolute():
        path = Path(file).parent / path
    try:
        info = path.stat()
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigFileError(file, path_setting.line, f"{from_file}: cannot read {path}: {exc.strerror}") from None
    if info.st_mode & stat.S_IROTH:
        raise ConfigFileError(file, path_setting.line, f"{from_file}: {path} is readable by everyone: a key file is 0640 root:systemd-network")
    if not _networkd_can_read(info):  # the harness reads it as root; networkd would not
        warnings.append(
            f"{file}:{path_setting.line}: {from_file}: {path} is not readable by the systemd-network user, as which networkd "
            f"reads it: chgrp systemd-network and chmod 0640, or networkd brings the interface up without its key"
        )
    return wgquick._converted(file, Setting(from_file, text, path_setting.line), from_file, wgquick._key)


def _networkd_can_read(info: Any) -> bool:
    """Whether the systemd-network user may read a file with this stat (where that user
    does not exist, e.g. in a container, a group-readable file is given the benefit)."""
    import pwd

    try:
        user = pwd.getpwnam("systemd-network")
    except KeyError:
        return bool(info.st_mode & stat.S_IRGRP)
    return bool((info.st_uid == user.pw_uid and info.st_mode & stat.S_IRUSR) or (info.st_gid == user.pw_gid and info.st_mode & stat.S_IRGRP))


def _network_addresses(text: str | None, file: str | None, interface: str | None) -> tuple[Any, ...]:
    if text is None or file is None:
        return ()
    sections = parse_sections(text, file, comments="#;")
    addresses = []
    for section in sections:
        if section.name not in NETWORK_KEYS:
            continue  # [Route], [Link], …: not the harness's business
        found = _settings(file, section, NETWORK_KEYS[section.name])
        if section.name == "Match":
            name = _value(found, "Name")
            if interface is not None and name is not None and name.value != interface:
                raise ConfigFileError(file, name.line, f"Name: matches {name.value!r}, but the .netdev creates {interface!r}")
        else:
            for setting in _list(found, "Address"):
                addresses.append(wgquick._converted(file, setting, "Address", wgquick._interface_address))
    return tuple(addresses)
