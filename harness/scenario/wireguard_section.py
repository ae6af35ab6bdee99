"""A `wireguard:` section on its own, for networks the harness did not plan (a Mininet
network of a user's own): the same model as in a scenario file, checked against the
hosts that exist. Pure."""

from __future__ import annotations

from functools import cache
from typing import Any, Iterable, Mapping

from pydantic import TypeAdapter, ValidationError

from harness.scenario.fields import NodeName
from harness.scenario.model import WireGuardSpec
from harness.scenario.steps.checking import known


class SectionError(ValueError):
    """Bad settings: every problem, each as `wireguard.<host>.<field>: message`."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@cache
def _adapter() -> TypeAdapter:
    return TypeAdapter(dict[NodeName, WireGuardSpec])


def validate_wireguard(data: Mapping[str, Any], hosts: Iterable[str]) -> dict[str, WireGuardSpec]:
    """`data` as a `wireguard:` section whose nodes are `hosts`; every problem at once."""
    names = list(hosts)
    problems = _name_problems(data, names)
    try:
        section: dict[str, WireGuardSpec] = _adapter().validate_python(dict(data))
    except ValidationError as exc:
        raise SectionError([f"{_where(error['loc'])}: {error['msg']}" for error in exc.errors()] + problems) from None
    if problems:
        raise SectionError(problems)
    return section


def _name_problems(data: Mapping[str, Any], names: list[str]) -> list[str]:
    """Hosts and peers that do not exist (read from the raw settings, so they are
    reported together with the fields' own problems)."""
    if not data:
        return ["wireguard: no host has WireGuard settings"]
    problems = []
    for name, settings in data.items():
        if name not in names:
            problems.append(f"wireguard.{name}: no host '{name}' in this network{known(names, name)}")
        if not isinstance(settings, Mapping):
            continue
        socket_in = settings.get("socket_in")
        if isinstance(socket_in, str) and socket_in not in names:
            problems.append(f"wireguard.{name}.socket_in: no host '{socket_in}'{known(names, socket_in)}")
        peers = settings.get("peers")
        for peer in peers if isinstance(peers, Mapping) else ():
            if peer not in data:
                problems.append(f"wireguard.{name}.peers.{peer}: '{peer}' has no WireGuard settings{known(list(data), str(peer))}")
    return problems


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if not (isinstance(part, str) and (part == "[key]" or part.startswith("function-")))]
    return ".".join(["wireguard", *parts])
