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
    """`data` as a `wireguard:` section whose nodes are `hosts`."""
    try:
        section: dict[str, WireGuardSpec] = _adapter().validate_python(dict(data))
    except ValidationError as exc:
        raise SectionError([f"{_where(error['loc'])}: {error['msg']}" for error in exc.errors()]) from None
    names = list(hosts)
    problems = []
    if not section:
        problems.append("wireguard: no host has WireGuard settings")
    for name, wg in section.items():
        if name not in names:
            problems.append(f"wireguard.{name}: no host '{name}' in this network{known(names, name)}")
        if wg.socket_in is not None and wg.socket_in not in names:
            problems.append(f"wireguard.{name}.socket_in: no host '{wg.socket_in}'{known(names, wg.socket_in)}")
        for peer in wg.peers:
            if peer not in section:
                problems.append(f"wireguard.{name}.peers.{peer}: '{peer}' has no WireGuard settings{known(list(section), peer)}")
    if problems:
        raise SectionError(problems)
    return section


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if not (isinstance(part, str) and (part == "[key]" or part.startswith("function-")))]
    return ".".join(["wireguard", *parts])
