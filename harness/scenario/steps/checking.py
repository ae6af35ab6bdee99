"""What a step kind's reference checks see (validate.py builds it; pure): the step's path
for messages, the file's names, what earlier steps started or changed, and the checks
many kinds share (a node exists, a link exists, two nodes are peers).

`spec` is a ScenarioSpec and `plan` a NetworkPlan: not imported here, since the model
imports this package to build its union and the planner imports the model.
"""

from __future__ import annotations

import difflib
import ipaddress
from dataclasses import dataclass, field as dataclass_field
from typing import AbstractSet, Any, Callable, Iterable, Mapping

Report = Callable[[tuple, str], None]  # (path into the file, message)


def known(names: Iterable[str], wrong: str, what: str = "nodes") -> str:
    """' (did you mean 'server'?)' or ' (known nodes: a, b)'."""
    names = sorted(names)
    close = difflib.get_close_matches(wrong, names, n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (known {what}: {', '.join(names)})" if names else ""


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class Started:
    """Something running in the background since a step: reported if no later step stops it."""

    index: int
    path: tuple
    never_stopped: str


@dataclass
class FirstRound:
    """The first round's state while it walks the steps in order."""

    spec: Any
    link_names: dict[str, int]  # a link's name (or 'a-b') → its index in links
    neighbours: Mapping[str, AbstractSet[str]]  # node → the nodes it has a link to or shares a LAN with
    lan_names: dict[str, int] = dataclass_field(default_factory=dict)  # a LAN's name (or 'lan<N>') → its index in lans
    running: dict[tuple[str, str], Started] = dataclass_field(default_factory=dict)  # (what, name) → since when
    rekeyed: set[str] = dataclass_field(default_factory=set)  # nodes whose key an earlier step replaced (they have an old key)
    records: set[str] = dataclass_field(default_factory=set)  # records of earlier foreground iperf3 steps (for ratio_to)


@dataclass
class _StepView:
    path: tuple  # ("steps", index, kind)
    report: Report

    def problem(self, message: str, *fields: str | int) -> None:
        """Report `message` at this step, or at one of its fields."""
        self.report(self.path + fields, message)


@dataclass
class StepCheck(_StepView):
    """One step's view of the first round, before planning: names must refer to something."""

    round: FirstRound

    @property
    def spec(self) -> Any:
        return self.round.spec

    @property
    def index(self) -> int:
        return self.path[1]

    def need_node(self, field: str, node: str, wireguard: bool = False) -> bool:
        nodes, wg = self.spec.nodes, self.spec.wireguard
        if node not in nodes:
            self.problem(f"unknown node '{node}'{known(nodes, node)}", field)
            return False
        if wireguard and node not in wg:
            self.problem(f"'{node}' has no wireguard section{known(wg, node, 'WireGuard nodes')}", field)
            return False
        return True

    def need_link(self, field: str, name: str) -> int | None:
        """The link's index, or None (reported) if the file has no such link."""
        names = self.round.link_names
        if name in self.round.lan_names and name not in names:
            self.problem(f"'{name}' is a LAN: this step acts on links (a LAN's members and conditions are fixed for the run)", field)
            return None
        if name not in names:
            self.problem(f"unknown link '{name}'{known(names, name, 'links')}", field)
            return None
        return names[name]

    def lan_of(self, node: str) -> str | None:
        """The name of the first LAN `node` is a member of, if any."""
        for name, index in self.round.lan_names.items():
            if node in self.spec.lans[index].members:
                return name
        return None

    def need_peers(self, a: str, b: str, field: str) -> None:
        """Two WireGuard nodes peer each other (either side's `peers:` will do)."""
        wg = self.spec.wireguard
        if b not in wg[a].peers and a not in wg[b].peers:
            self.problem(f"'{a}' and '{b}' are not peers", field)

    def need_wireguard(self, node: str, peer: str | None = None, *, first_only: bool = False) -> bool:
        """`node` (and `peer`) have a wireguard section, and are peers. `first_only`: report
        only the first end that has none (the wg-state steps do)."""
        wg = self.spec.wireguard
        found = True
        for field, name in [("node", node)] + ([("peer", peer)] if peer is not None else []):
            if name not in wg:
                where = "unknown node" if name not in self.spec.nodes else "no wireguard section for"
                self.problem(f"{where} '{name}'{known(wg, name, 'WireGuard nodes')}", field)
                found = False
                if first_only:
                    break
        if found and peer is not None:
            self.need_peers(node, peer, "peer")
        return found

    def started(self, what: str, name: str | None) -> int | None:
        """The step that started `what` (probe, capture, iperf3) `name`, if it still runs."""
        entry = self.round.running.get((what, name))
        return entry.index if entry is not None else None

    def start(self, what: str, name: str, field: str, never_stopped: str) -> None:
        self.round.running[(what, name)] = Started(self.index, self.path + (field,), never_stopped)

    def stop(self, what: str, name: str | None) -> None:
        self.round.running.pop((what, name), None)


@dataclass
class StepPlanCheck(_StepView):
    """One step's view of the second round, on the plan: addresses and routes."""

    spec: Any
    plan: Any
    # (endpoint text, node, path): reports it if the planner cannot resolve it
    resolve_endpoint: Callable[[str, str, tuple], None]
