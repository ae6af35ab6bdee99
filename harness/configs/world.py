"""`wgh run --configs DIR`: a world built around a directory of config files, with no
scenario file to write. One node per file (`server.conf` → node `server`; a `.netdev`
with its `.network` → one node), every node on an emulated internet router (or, with
`--behind-nat laptop=symmetric`, behind its own NAT there), and the default checks:

- a handshake for every peer pair where one side has an endpoint for the other;
- a ping to every tunnel address of a peer that the sender's AllowedIPs for it cover.

Every pair that fails is diagnosed as any step is ("AllowedIPs on laptop do not cover
10.0.0.3"); the summary is a table of peer pairs (see pair_table). Pure: the scenario
is made as data and loaded like any file, so its problems have file:line too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from harness.configs.imported import config_files, public_of, read_config
from harness.configs.ini import ConfigFileError
from harness.nattypes import NAT_TYPES

NODE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,14}$")
INTERNET = "internet"
WORLD_FILE = "(configs)"  # the file name a world's cases, problems and results show, inside DIR


class WorldError(ValueError):
    """The directory cannot become a world (the message says why)."""


def config_nodes(directory: Path) -> dict[str, list[str]]:
    """node → its file(s) relative to `directory`: every *.conf, every *.netdev (with the
    .network of the same name, read along), in name order."""
    if not directory.is_dir():
        raise WorldError(f"{directory}: not a directory")
    nodes: dict[str, list[str]] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix not in (".conf", ".netdev") or not path.is_file():
            continue
        name = path.stem
        if not NODE_NAME.match(name) or name == INTERNET or name.startswith("nat_"):
            raise WorldError(
                f"{path}: the node would be named {name!r}: name files like node names (lowercase letters, digits, "
                f"'_', at most 15 characters, starting with a letter; not {INTERNET!r} or nat_*)"
            )
        if name in nodes:
            raise WorldError(f"{path}: a second config for node {name!r} ({nodes[name][0]})")
        nodes[name] = [path.name]
    if not nodes:
        raise WorldError(f"{directory}: no *.conf (wg-quick) or *.netdev (systemd-networkd) files")
    return nodes


def parse_behind_nat(values: Sequence[str]) -> dict[str, str]:
    """`--behind-nat laptop` or `laptop=symmetric` (repeatable) → node → NAT type."""
    chosen: dict[str, str] = {}
    for value in values:
        node, _, kind = value.partition("=")
        kind = kind or "port-restricted"
        if kind not in NAT_TYPES:
            raise WorldError(f"--behind-nat {value}: {kind!r} is not a NAT type ({', '.join(NAT_TYPES)})")
        chosen[node] = kind
    return chosen


def world_scenario(directory: Path, behind_nat: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The scenario (as data) for the configs in `directory`."""
    behind_nat = dict(behind_nat or {})
    nodes = config_nodes(directory)
    unknown = sorted(set(behind_nat) - set(nodes))
    if unknown:
        raise WorldError(f"--behind-nat: no config for {', '.join(unknown)} in {directory} (nodes: {', '.join(nodes)})")
    data: dict[str, Any] = {
        "name": f"configs-{directory.resolve().name}"[:64],
        "description": f"The configs in {directory}, each node on an emulated internet; default checks per peer pair.",
        "nodes": {INTERNET: {"router": True}},
        "links": [],
        "wireguard": {name: {"config": files[0]} for name, files in nodes.items()},
    }
    for number, name in enumerate(nodes, start=1):
        data["nodes"][name] = {}
        if name in behind_nat:
            nat = f"nat_{number}"
            data["nodes"][nat] = {"nat": {"outside": INTERNET, "type": behind_nat[name]}}
            data["links"] += [{"ends": [name, nat]}, {"ends": [nat, INTERNET]}]
        else:
            data["links"].append({"ends": [name, INTERNET]})
    data["steps"] = default_checks(directory, nodes)
    return data


@dataclass(frozen=True)
class _Node:
    name: str
    addresses: tuple[Any, ...]
    peers: dict[str, Any]  # peer node → PeerEntry


def default_checks(directory: Path, nodes: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """Handshakes and pings for every peer pair the files describe (see the module)."""
    read = {}
    for name, files in nodes.items():
        try:
            read[name] = read_config(config_files(files, str(directory / WORLD_FILE)))
        except ConfigFileError:
            read[name] = None  # the load reports it, with its line
    by_key = {public_of(c.interface.private_key): n for n, c in read.items() if c is not None and c.interface.private_key}
    world = {
        name: _Node(name, c.interface.addresses, {by_key[p.public_key]: p for p in c.peers if p.public_key in by_key})
        for name, c in read.items() if c is not None
    }
    steps: list[dict[str, Any]] = []
    for a, b in _pairs(world):
        if world[a].peers[b].endpoint or (a in world[b].peers and world[b].peers[a].endpoint):
            initiator = a if world[a].peers[b].endpoint else b
            steps.append({"handshake": {"between": [initiator, b if initiator == a else a], "within": "6s"}})
    for a in world:
        for b, entry in world[a].peers.items():
            for address in world[b].addresses:
                if any(address.ip in network for network in entry.allowed_ips):
                    steps.append({"ping": {"from": a, "to": str(address.ip), "family": address.version, "count": 2, "interval": "100ms"}})
    return steps


def _pairs(world: Mapping[str, _Node]) -> Iterable[tuple[str, str]]:
    seen = set()
    for a, node in world.items():
        for b in node.peers:
            if b in world and frozenset((a, b)) not in seen:
                seen.add(frozenset((a, b)))
                yield a, b


def pair_table(case: Any, result: Any) -> str:
    """One row per peer pair: its handshake, its pings, and the first failure's cause."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    owner = {}
    for name, wg in case.spec.wireguard.items():
        for address in wg.address or ():
            owner[str(address.ip)] = name
    from harness.scenario.model import step_kind

    for step, outcome in zip(case.spec.steps, result.steps):
        kind = step_kind(step)
        args = getattr(step, kind)
        if kind == "handshake":
            pair = tuple(args.between)
        elif kind == "ping":
            pair = (args.from_, owner.get(str(args.to), str(args.to)))
        else:
            continue
        row = rows.setdefault(tuple(sorted(pair)), {"handshake": "-", "pings": [0, 0], "cause": ""})
        ok = outcome.passed
        if kind == "handshake":
            row["handshake"] = "ok" if ok else "none"
        else:
            row["pings"][0 if ok else 1] += 1
        if not ok and not row["cause"]:
            message = outcome.message
            row["cause"] = message[message.index("["):] if "[" in message else message
    lines = ["peer pair                         handshake  pings ok/failed  cause", "-" * 78]
    for (a, b), row in rows.items():
        lines.append(f"{a + ' ↔ ' + b:<33} {row['handshake']:<10} {row['pings'][0]}/{row['pings'][1]:<14} {row['cause']}")
    return "\n".join(lines)

