"""Every node's effective WireGuard config written out, as wg-quick files or as
systemd-networkd `.netdev` + `.network` pairs: what the harness configured (addresses,
port, MTU, table, fwmark, each peer's key, AllowedIPs, endpoint as resolved,
keepalive), so a failure can be reproduced by hand with the tools people use.

Pure: the caller gives the plan, the public keys and, only for `wgh export`, the
private and preshared keys. Without keys, a key line becomes a comment saying so (a
run's artifacts never hold a key); the file then lacks only that line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from harness.plan.types import EndpointPlan, WgPlan
from harness.wg.keys import b64

NOT_WRITTEN = "not written: made for this run, in memory only (`wgh export` writes a set with keys)"


@dataclass(frozen=True)
class NodeKeys:
    """What the export knows of the keys: public ones always; private and preshared
    ones only when writing for a person to reproduce (`wgh export`)."""

    public: Mapping[str, bytes]
    private: Mapping[str, bytes] | None = None
    preshared: Callable[[str, str], bytes | None] | None = field(default=None, repr=False)  # (node, peer) → that end's key
    endpoints: Mapping[tuple[str, str], object] = field(default_factory=dict)  # (node, peer) → as resolved at run time


def _endpoint(wg: WgPlan, peer: str, planned: EndpointPlan | None, keys: NodeKeys) -> str | None:
    resolved = keys.endpoints.get((wg.node, peer))
    if resolved is not None:
        return str(resolved)
    return str(planned) if planned is not None else None


def _table(wg: WgPlan) -> str | None:
    """wg-quick's Table line: none for auto (its default)."""
    return None if wg.table == "auto" else str(wg.table)


def wg_quick(wg: WgPlan, keys: NodeKeys, header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()] + ["[Interface]"]
    if keys.private is not None:
        lines.append(f"PrivateKey = {b64(keys.private[wg.node])}")
    else:
        lines.append(f"# PrivateKey: {NOT_WRITTEN}")
    lines += [f"Address = {address}" for address in wg.addresses]
    lines.append(f"ListenPort = {wg.listen_port}")
    if wg.mtu:
        lines.append(f"MTU = {wg.mtu}")
    table = _table(wg)
    if table:
        lines.append(f"Table = {table}")
    if wg.fwmark_setting is not None:
        lines.append(f"FwMark = {wg.fwmark_setting}")
    lines += _peer_sections(wg, keys, "[Peer]", " = ", ", ")
    return "\n".join(lines) + "\n"


def networkd(wg: WgPlan, keys: NodeKeys, ifname: str = "wg0", header: str = "") -> tuple[str, str]:
    """The `.netdev` and the `.network` for interface `ifname`."""
    comment = [f"# {line}" for line in header.splitlines()]
    netdev = comment + ["[NetDev]", f"Name={ifname}", "Kind=wireguard"]
    if wg.mtu:
        netdev.append(f"MTUBytes={wg.mtu}")
    netdev += ["", "[WireGuard]"]
    if keys.private is not None:
        netdev.append(f"PrivateKey={b64(keys.private[wg.node])}")
    else:
        netdev.append(f"# PrivateKey: {NOT_WRITTEN}")
    netdev.append(f"ListenPort={wg.listen_port}")
    if wg.fwmark_setting is not None:
        netdev.append(f"FirewallMark={wg.fwmark_setting}")
    if wg.table != "off":
        # networkd routes AllowedIPs only where RouteTable= says; it has no wg-quick-style
        # fwmark policy routing for a default route (that needs [RoutingPolicyRule]s)
        netdev.append(f"RouteTable={'main' if wg.table in ('auto', 'main') else wg.table}")
        if wg.full_tunnel:
            netdev.insert(len(comment), "# a default route through the tunnel: add [RoutingPolicyRule]s as wg-quick's fwmark rules, or it loops")
    netdev += _peer_sections(wg, keys, "[WireGuardPeer]", "=", ",")
    network = comment + ["[Match]", f"Name={ifname}", "", "[Network]"] + [f"Address={address}" for address in wg.addresses]
    return "\n".join(netdev) + "\n", "\n".join(network) + "\n"


def _peer_sections(wg: WgPlan, keys: NodeKeys, header: str, assign: str, separator: str) -> list[str]:
    """Each peer's section, in either syntax (wg-quick: `Key = a, b`; networkd: `Key=a,b`)."""
    lines: list[str] = []
    for peer in wg.peers:
        lines += ["", f"# {peer.node}", header, f"PublicKey{assign}{b64(keys.public[peer.node])}"]
        if peer.preshared_key is not None and keys.preshared is None:
            lines.append(f"# PresharedKey ({peer.preshared_key}): {NOT_WRITTEN}")
        elif peer.preshared_key is not None and (key := keys.preshared(wg.node, peer.node)) is not None:
            lines.append(f"PresharedKey{assign}{b64(key)}")
        settings = {
            "AllowedIPs": separator.join(map(str, peer.allowed_ips)),
            "Endpoint": _endpoint(wg, peer.node, peer.endpoint, keys),
            "PersistentKeepalive": peer.persistent_keepalive or None,
        }
        lines += [f"{key}{assign}{value}" for key, value in settings.items() if value]
    return lines


def write_configs(directory: Path, wireguard: Mapping[str, WgPlan], keys: NodeKeys, *, form: str = "wg-quick", header: str = "") -> list[Path]:
    """Each node's config under `directory` (made 0700): `<node>.conf`, or
    `<node>.netdev` + `<node>.network`. Files with keys in them are 0600."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    for name, wg in wireguard.items():
        texts = {f"{name}.conf": wg_quick(wg, keys, header)} if form == "wg-quick" else dict(
            zip((f"{name}.netdev", f"{name}.network"), networkd(wg, keys, header=header))
        )
        for file_name, text in texts.items():
            path = directory / file_name
            # created 0600 before anything is written: a key is never readable by others
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as stream:
                stream.write(text)
            written.append(path)
    return written


def export_case(case: object, directory: Path, *, form: str = "wg-quick") -> list[Path]:
    """`wgh export`: the case's configs with keys, for a person to bring up by hand:
    fresh keys (or, with `configs: {keys: as-is}`, the imported files' own), the same
    preshared key on both ends where the scenario shares one, and endpoints at the
    addresses the harness gives the nodes (their underlay, as `wgh shell` builds it)."""
    import secrets as random

    from harness.plan.network import build_plan
    from harness.wg.keys import KeyPair

    spec = case.spec  # type: ignore[attr-defined]
    if spec.topology is not None:
        raise ValueError("a Mininet topology's addresses are known only once it is built: export from a file with nodes: and links:")
    plan = build_plan(spec, "export", "kernel")
    imported = getattr(case, "secrets", None)
    private_keys = dict(imported.private_keys) if imported is not None else {}
    pairs = {name: KeyPair.from_private(private_keys[name]) if name in private_keys else KeyPair.generate() for name in plan.wireguard}
    shared: dict[str, bytes] = dict(imported.preshared) if imported is not None else {}

    def preshared(node: str, peer: str) -> bytes | None:
        name = plan.wireguard[node].peer(peer).preshared_key
        if name is None:
            return None
        return shared.setdefault(name, random.token_bytes(32))

    keys = NodeKeys({n: p.public for n, p in pairs.items()}, {n: p.private for n, p in pairs.items()}, preshared)
    header = f"{getattr(case, 'id', 'scenario')}: written by `wgh export` with its keys: keep this file private"
    return write_configs(directory, plan.wireguard, keys, form=form, header=header)
