"""Users' own config files as scenario nodes: `wireguard.<node>.config: server.conf`
(wg-quick) or `server.netdev` (+ `.network`, systemd-networkd) become that node's
`wireguard:` section, before the scenario is validated, so the planner and the backends
treat imported and hand-written nodes alike.

Pure: files are read, nothing is built. What a file means here:
- Address, ListenPort, MTU, Table, FwMark, and per [Peer] AllowedIPs,
  PersistentKeepalive, Endpoint and PresharedKey, as wg-quick / networkd apply them.
- A [Peer] is a node when its PublicKey is derived from another imported file's
  PrivateKey, or `configs.peers` names it; one that is neither is left out, with a note.
- An Endpoint names its peer's node (`203.0.113.5:51820` of the server's peer → the
  server's underlay address, port as written, so a wrong port stays wrong), unless
  `configs.hosts` maps its host to another node (a NAT router's public address).
- Keys: by default every private and preshared key is replaced by a fresh one for the
  run (preshared keys keep who shares one with whom, and who disagrees); `keys: as-is`
  keeps the files' own, handed to the WireGuard fleet in memory only (ImportedSecrets).
- Settings given in YAML next to `config:` win over the file's.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from harness.configs.ini import ConfigFileError
from harness.configs.networkd import load_networkd
from harness.configs.wgquick import HOOKS, PeerEntry, WgQuickConfig, load_wg_quick
from harness.endpoint import split_host_port
from harness.scenario.yamlsource import beside_scenario
from harness.wg.keys import KeyPair, short


class ConfigImportError(ConfigFileError):
    """A problem with what the files say together (keys, peers, hooks), located by file
    and line; `file` is None when it is the scenario's `configs:` section that cannot work."""


@dataclass(frozen=True)
class ImportedSecrets:
    """The files' own keys, for `keys: as-is`: in memory only, never shown."""

    private_keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)  # node → private key
    preshared: Mapping[str, bytes] = field(default_factory=dict, repr=False)  # preshared key name → key

    def __repr__(self) -> str:
        return f"ImportedSecrets({len(self.private_keys)} private keys, {len(self.preshared)} preshared keys: hidden)"


@dataclass
class Imported:
    wireguard: dict[str, dict[str, Any]]  # the `wireguard:` section, files merged in
    notes: list[str] = field(default_factory=list)  # file:line: what the run leaves out or changes
    secrets: ImportedSecrets | None = None  # with keys: as-is only
    # where each imported value came from: ("wireguard", node, field…) → (file, line)
    origins: dict[tuple, tuple[str, int | None]] = field(default_factory=dict)


def public_of(private: bytes) -> bytes:
    return KeyPair.from_private(private).public


def config_files(paths: list[str], scenario_file: str) -> tuple[Path, ...]:
    """The files a node's `config:` names, inside the scenario's directory."""
    found = []
    cwd = Path.cwd().resolve()
    for relative in paths:
        try:
            path = beside_scenario(relative, scenario_file, "a config file")
        except ValueError as exc:
            raise ConfigFileError(None, None, str(exc)) from None
        found.append(path.relative_to(cwd) if path.is_relative_to(cwd) else path)  # as a person would type it
    return tuple(found)


def read_config(files: tuple[Path, ...]) -> WgQuickConfig:
    """A wg-quick file, or a networkd .netdev (with its .network, found or given)."""
    netdevs = [f for f in files if f.suffix == ".netdev"]
    networks = [f for f in files if f.suffix == ".network"]
    others = [f for f in files if f.suffix not in (".netdev", ".network")]
    if netdevs or networks:
        if len(netdevs) != 1 or len(networks) > 1 or others:
            raise ConfigFileError(str(files[0]), None, "config: a systemd-networkd interface is one .netdev, optionally with its .network")
        return load_networkd(netdevs[0], networks[0] if networks else None)
    if len(others) != 1:
        raise ConfigFileError(str(files[0]), None, "config: one wg-quick file per node (or a .netdev and its .network)")
    return load_wg_quick(others[0])


def import_configs(
    wireguard: Mapping[str, Any], configs: Mapping[str, WgQuickConfig], *, keys: str = "fresh", hosts: Mapping[str, str] | None = None,
    peers: Mapping[str, str] | None = None, hooks: str = "refuse", nodes: Iterable[str] = (),
) -> Imported:
    """The `wireguard:` section with every `config:` imported. `configs`: node →
    WgQuickConfig already read (see read_config). Raises ConfigImportError or ConfigFileError."""
    hosts = {_host_key(h): n for h, n in (hosts or {}).items()}
    by_key: dict[bytes, str] = {}
    origin: dict[bytes, str] = {}
    for text, node in (peers or {}).items():
        by_key[_key_bytes(text)] = node
        origin[_key_bytes(text)] = "configs.peers"
    for node, config in configs.items():
        private = config.interface.private_key
        if private is None:
            if keys == "as-is":
                raise ConfigImportError(config.file, None, "PrivateKey: keys: as-is needs each file's private key (PrivateKey, or PrivateKeyFile in a .netdev)")
            continue
        public = public_of(private)
        if public in by_key and by_key[public] != node:
            raise ConfigImportError(
                config.file, config.interface.lines.get("PrivateKey"),
                f"PrivateKey: the same key as {by_key[public]}'s ({origin[public]}): two devices with one key take each other's sessions; give each its own",
            )
        by_key[public], origin[public] = node, config.file
    notes: list[str] = []
    origins: dict[tuple, tuple[str, int | None]] = {}
    result: dict[str, dict[str, Any]] = {name: dict(section) if isinstance(section, dict) else section for name, section in wireguard.items()}
    entries: dict[tuple[str, str], PeerEntry] = {}
    for node, config in configs.items():
        notes += list(config.warnings)
        section, node_notes, matched = _node_section(node, config, by_key, {**{n: n for n in nodes}, **hosts}, hooks)
        notes += node_notes
        given = wireguard.get(node) or {}
        for path, where in _origins(node, config, section, matched).items():
            overridden = path[2] in given if path[2] != "peers" else isinstance(given.get("peers"), dict) and path[4] in (given["peers"].get(path[3]) or {})
            if not overridden:
                origins[path] = where
        entries.update({(node, other): entry for other, entry in matched.items()})
        result[node] = _merged(section, given)
    preshared = _preshared_names(configs, entries, result)
    if keys == "as-is":
        private_keys = {node: c.interface.private_key for node, c in configs.items() if c.interface.private_key is not None}
        missing = sorted({n for n in by_key.values() if n not in configs})
        if missing:
            raise ConfigImportError(
                None, None,
                f"keys: as-is, but {', '.join(missing)} has no config file here: the imported files expect the public key "
                f"given for it, and no private key for it is known; use keys: fresh",
            )
        secrets = ImportedSecrets(private_keys, preshared)
    else:
        secrets = None
    return Imported(result, notes, secrets, origins)


def _node_section(
    node: str, config: WgQuickConfig, by_key: dict[bytes, str], hosts: dict[str, str], hooks: str
) -> tuple[dict[str, Any], list[str], dict[str, PeerEntry]]:
    """The node's section from its file, the notes, and the [Peer] entries that are
    nodes (by node)."""
    interface, file = config.interface, config.file
    notes: list[str] = []
    section: dict[str, Any] = {}
    if interface.addresses:
        section["address"] = [str(a) for a in interface.addresses]
    else:
        notes.append(f"{file}: no Address: {node} gets the harness's tunnel addresses (100.64.0.N, fd00:64::N)")
    if interface.listen_port is not None:
        section["listen_port"] = interface.listen_port
    if interface.mtu is not None:
        section["mtu"] = interface.mtu
    if interface.table is not None:
        section["table"] = _table(interface.table, file, interface.lines.get("Table"))
    if interface.fwmark is not None:
        section["fwmark"] = interface.fwmark
    if interface.dns:
        notes.append(f"{file}:{interface.lines['DNS']}: DNS: ignored (wg-quick hands it to the host's resolvconf; a test node keeps its own resolver)")
    if interface.save_config:
        notes.append(f"{file}:{interface.lines['SaveConfig']}: SaveConfig: ignored (nothing is written back to the file)")
    for hook in (h for h in HOOKS if interface.hooks.get(h)):
        if hooks == "refuse":
            raise ConfigImportError(
                file, interface.lines[hook],
                f"{hook}: a hook runs a command as root, and a scenario never chooses those; test the config without "
                f"it with `configs: {{hooks: ignore}}` (what the hook sets up is then missing), or express it in the scenario",
            )
        notes.append(f"{file}:{interface.lines[hook]}: {hook}: not run (configs.hooks: ignore)")
    peers: dict[str, dict[str, Any]] = {}
    matched: dict[str, PeerEntry] = {}
    for entry in config.peers:
        other = by_key.get(entry.public_key)
        where = f"{file}:{entry.line}"
        if other is None:
            notes.append(
                f"{where}: [Peer] {short(entry.public_key)} is none of the scenario's nodes (no imported file has its private "
                f"key, configs.peers does not name it): left out"
            )
            continue
        if other == node:
            notes.append(f"{where}: [Peer] {short(entry.public_key)} is {node}'s own key: left out (WireGuard ignores it too)")
            continue
        if other in matched:
            raise ConfigImportError(file, entry.line, f"[Peer]: {other} again (its key also at line {matched[other].line})")
        matched[other] = entry
        peer: dict[str, Any] = {"allowed_ips": [str(n) for n in entry.allowed_ips]}
        if entry.persistent_keepalive:
            peer["persistent_keepalive"] = entry.persistent_keepalive
        if entry.endpoint is not None:
            host, port = split_host_port(entry.endpoint)
            target = hosts.get(_host_key(host), other)
            peer["endpoint"] = f"{target}:{port}"
        peers[other] = peer
    section["peers"] = peers
    return section, notes, matched


# the file's keys behind each field (wg-quick's, then networkd's)
_INTERFACE_FIELDS = {"address": ("Address",), "listen_port": ("ListenPort",), "mtu": ("MTU", "MTUBytes"), "table": ("Table", "RouteTable"), "fwmark": ("FwMark", "FirewallMark")}
_PEER_FIELDS = {"allowed_ips": "AllowedIPs", "endpoint": "Endpoint", "persistent_keepalive": "PersistentKeepalive", "preshared_key": "PresharedKey"}


def _origins(node: str, config: WgQuickConfig, section: dict[str, Any], matched: dict[str, PeerEntry]) -> dict[tuple, tuple[str, int | None]]:
    """Where each imported value is written: ("wireguard", node, field…) → (file, line)."""
    found: dict[tuple, tuple[str, int | None]] = {}
    lines = config.interface.lines
    for name, keys in _INTERFACE_FIELDS.items():
        if name in section:
            found[("wireguard", node, name)] = (config.file, next((lines[k] for k in keys if k in lines), None))
    for other, entry in matched.items():
        for name, key in _PEER_FIELDS.items():
            found[("wireguard", node, "peers", other, name)] = (config.file, entry.lines.get(key, entry.line))
    return found


def _preshared_names(configs: Mapping[str, WgQuickConfig], entries: dict[tuple[str, str], PeerEntry], result: dict[str, dict[str, Any]]) -> dict[str, bytes]:
    """Name every preshared key after the pair that uses it: one name for both ends when
    they agree, one per end when they do not (fresh keys then differ too), false on an
    imported end that has none while the other has one. Returns name → the file's key."""
    keys: dict[str, bytes] = {}
    for (node, other), entry in entries.items():
        reverse = entries.get((other, node))
        peer = result[node]["peers"].get(other)
        if peer is None or "preshared_key" in peer:  # overridden in YAML, or named already
            continue
        mine, theirs = entry.preshared_key, reverse.preshared_key if reverse else None
        pair = ".".join(sorted((node, other)))
        if mine is None:  # none in the file: the other end's name must not become this end's
            peer["preshared_key"] = False
            continue
        name = f"psk.{pair}" if mine == theirs else f"psk.{node}.for.{other}"
        peer["preshared_key"] = name
        keys[name] = mine
    return keys


def _merged(imported: dict[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The file's settings, then what YAML gives next to `config:` (peer by peer)."""
    merged = dict(imported)
    for key, value in given.items():
        if key == "peers" and isinstance(value, dict):
            peers = dict(merged.get("peers", {}))
            for node, settings in value.items():
                if isinstance(settings, dict) and isinstance(peers.get(node), dict):
                    peers[node] = {**peers[node], **settings}
                else:
                    peers[node] = settings
            merged["peers"] = peers
        else:
            merged[key] = value
    return merged


def _table(text: str, file: str, line: int | None) -> Any:
    if text in ("auto", "off", "main"):
        return text
    if text.isdigit():
        return int(text)
    raise ConfigFileError(file, line, f"Table: {text!r}: a table by name needs this machine's /etc/iproute2/rt_tables; give its number")


def _host_key(host: str) -> str:
    """Hosts compared as written for names (case-insensitive), by value for addresses."""
    host = host.strip("[]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower().rstrip(".")


def _key_bytes(text: str) -> bytes:
    return base64.b64decode(text)
