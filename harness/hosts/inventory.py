"""The machines a run may spread over: a `hosts:` mapping, read from a file
(`--hosts FILE`, or WGH_HOSTS naming one), each host validated with the file, line and
field of any mistake (pure).

    hosts:
      alpha: {address: 192.0.2.10}             # ssh root@192.0.2.10, port 22
      beta:
        address: beta.lab.example              # what ssh connects to (default: the name)
        port: 2222
        identity: ~/.ssh/wgh_ed25519           # the key ssh offers (default: ssh's own)
        known_hosts: ~/.ssh/known_hosts        # where its host key is checked (default: ssh's own)
        underlay: 192.0.2.11                   # where the other hosts reach it (VXLAN); default: address
        wgh: /opt/wgharness/.venv/bin/wgh      # the harness there (default: wgh on its PATH)
        ssh_options: {ConnectTimeout: "5"}     # any other ssh -o option

Nothing is ever asked interactively: BatchMode is forced, and a host key must already
be known (StrictHostKeyChecking): see docs on multihost set-up.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from harness.errors import Problem, ScenarioError
from harness.scenario.fields import HOST_NAME_PATTERN
from harness.scenario.yamlsource import SourceDoc, decode_text, parse_yaml

ENV_VAR = "WGH_HOSTS"
DEFAULT_WGH = ("wgh",)
HOST_NAME = re.compile(HOST_NAME_PATTERN)  # becomes part of names and of a prefix
FIELDS = {"address", "user", "port", "identity", "known_hosts", "underlay", "wgh", "ssh_options"}
# options the harness sets itself: a file may not turn them off
FORCED_OPTIONS = {"batchmode", "stricthostkeychecking", "controlmaster", "controlpath", "controlpersist"}
SSH_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9]*")


@dataclass(frozen=True)
class Host:
    name: str
    address: str  # what ssh connects to
    user: str = "root"
    port: int = 22
    identity: str | None = None
    known_hosts: str | None = None
    underlay: str | None = None  # the IP the other hosts' tunnels reach it at
    wgh: tuple[str, ...] = DEFAULT_WGH  # how the harness is run there (a path, or an interpreter and a module)
    ssh_options: tuple[tuple[str, str], ...] = ()

    def command(self, *words: str) -> tuple[str, ...]:
        """`wgh WORDS...` there (`worker`, `clean`)."""
        return self.wgh + words


@dataclass(frozen=True)
class Inventory:
    file: str
    hosts: Mapping[str, Host] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.hosts)


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """The hosts of a file; ScenarioError naming every mistake (file, line, field)."""
    file = str(path)
    try:
        data = Path(file).read_bytes()
    except OSError as exc:
        raise ScenarioError([Problem(file, None, "", f"cannot read the hosts file: {exc.strerror or exc}")]) from None
    return parse_inventory(decode_text(data, file), file)


def from_environment(environ: Mapping[str, str] | None = None) -> Inventory | None:
    """The inventory WGH_HOSTS names, if it names one."""
    environ = os.environ if environ is None else environ
    path = environ.get(ENV_VAR)
    return load_inventory(path) if path else None


def parse_inventory(text: str, file: str) -> Inventory:
    doc = parse_yaml(text, file)
    problems: list[Problem] = []
    data = doc.data
    if not isinstance(data, dict) or set(data) != {"hosts"}:
        raise ScenarioError([doc.problem((), "a hosts file is a mapping with one key, `hosts:` (host name → settings)")])
    entries = data["hosts"]
    if not isinstance(entries, dict) or not entries:
        raise ScenarioError([doc.problem(("hosts",), "`hosts:` maps each host's name to its settings ({} for defaults)")])
    hosts: dict[str, Host] = {}
    for name, settings in entries.items():
        host = _host(doc, name, settings, problems)
        if host is not None:
            hosts[name] = host
    underlays: dict[str, str] = {}
    for host in hosts.values():
        if host.underlay in underlays:
            problems.append(doc.problem(("hosts", host.name, "underlay"), f"{host.underlay} is {underlays[host.underlay]}'s underlay address too"))
        elif host.underlay is not None:
            underlays[host.underlay] = host.name
    if problems:
        raise ScenarioError(problems)
    return Inventory(file, hosts)


def _host(doc: SourceDoc, name: Any, settings: Any, problems: list[Problem]) -> Host | None:
    at = ("hosts", name)
    if not isinstance(name, str) or not HOST_NAME.fullmatch(name):
        problems.append(doc.problem(at, "a host's name is lower-case letters, digits and '-', starting with a letter, at most 31 characters"))
        return None
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        problems.append(doc.problem(at, "a host's settings are a mapping ({} for the defaults)"))
        return None
    before = len(problems)
    for key in settings:
        if key not in FIELDS:
            problems.append(doc.problem(at + (key,), f"unknown field; known: {', '.join(sorted(FIELDS))}"))

    def text(key: str, default: str | None) -> str | None:
        value = settings.get(key, default)
        if value is not None and (not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value)):
            problems.append(doc.problem(at + (key,), "a single word of text (no spaces)"))
            return None
        return value

    address = text("address", name)
    user = text("user", "root")
    identity = text("identity", None)
    known_hosts = text("known_hosts", None)
    port = settings.get("port", 22)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        problems.append(doc.problem(at + ("port",), "a TCP port, 1 to 65535"))
    if address is not None and address.startswith("-"):
        problems.append(doc.problem(at + ("address",), "an address or host name (not an option)"))
    underlay = settings.get("underlay", _ip_or_none(address))
    if "underlay" in settings and _ip_or_none(underlay) is None:
        problems.append(doc.problem(at + ("underlay",), "an IP address (the other hosts' tunnels are sent to it)"))
    command = settings.get("wgh", None)
    words: tuple[str, ...] = DEFAULT_WGH
    if command is not None:
        if not isinstance(command, str) or not command.strip():
            problems.append(doc.problem(at + ("wgh",), "how to run the harness there, e.g. `/opt/wgharness/.venv/bin/wgh`"))
        else:
            try:
                words = tuple(shlex.split(command))
            except ValueError as exc:
                problems.append(doc.problem(at + ("wgh",), f"not a command line: {exc}"))
    options: list[tuple[str, str]] = []
    raw_options = settings.get("ssh_options", {}) or {}
    if not isinstance(raw_options, dict):
        problems.append(doc.problem(at + ("ssh_options",), "a mapping of ssh -o options (Option: value)"))
        raw_options = {}
    for option, value in raw_options.items():
        where = at + ("ssh_options", option)
        if not isinstance(option, str) or not SSH_OPTION.fullmatch(option):
            problems.append(doc.problem(where, "an ssh option name (see ssh_config(5))"))
        elif option.lower() in FORCED_OPTIONS:
            problems.append(doc.problem(where, f"{option} is the harness's own to set (no prompts, known host keys only, one shared connection)"))
        elif isinstance(value, bool) or not isinstance(value, (str, int)) or "\n" in str(value):
            problems.append(doc.problem(where, "a value on one line"))
        else:
            options.append((option, str(value)))
    if len(problems) > before:
        return None
    return Host(
        name, address or name, user or "root", port, identity, known_hosts,
        str(underlay) if underlay is not None else None, words, tuple(options),
    )


def _ip_or_none(value: Any) -> str | None:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        return None


def placement_problems(cases: Any, inventory: Inventory) -> list[Problem]:
    """A file's `placement:` names hosts of this inventory (file, line and field)."""
    return [
        case.source.problem(("placement", host), f"host '{host}' is not in the inventory {inventory.file} ({', '.join(inventory.names)})")
        for case in cases
        for host in case.spec.placement
        if host not in inventory.hosts
    ]
