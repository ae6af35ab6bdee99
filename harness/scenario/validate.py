"""Checks across fields: every name must refer to something that exists, and the
plan must be buildable. Runs before anything is created (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Set as AbstractSet

from harness.diagnosis.causes import CAUSES
from harness.errors import Problem
from harness.plan.network import PlanError, PlanErrors, build_plan, lan_name, resolve_endpoint
from harness.scenario import dns_checks, routing_checks
from harness.scenario.conditions import impairment_problems
from harness.scenario.model import MAX_LAN_MEMBERS, ScenarioSpec, step_args, step_kind
from harness.scenario.steps import registry
from harness.scenario.steps.checking import FirstRound, StepCheck, StepPlanCheck, known
from harness.scenario.yamlsource import SourceDoc


def check_references(spec: ScenarioSpec, doc: SourceDoc) -> list[Problem]:
    problems: list[Problem] = []

    def problem(path: tuple, message: str) -> None:
        problems.append(doc.problem(path, message))

    nodes = spec.nodes
    neighbours = {name: Neighbours(name) for name in nodes}
    for i, link in enumerate(spec.links):
        for j, end in enumerate(link.ends):
            if end not in nodes:
                problem(("links", i, "ends", j), f"unknown node '{end}'{known(nodes, end)}")
        if link.ends[0] == link.ends[1]:
            problem(("links", i, "ends"), "a link joins two different nodes")
        elif all(end in nodes for end in link.ends):
            neighbours[link.ends[0]].direct.add(link.ends[1])
            neighbours[link.ends[1]].direct.add(link.ends[0])
        if link.addresses is not None:
            a, b = link.addresses
            if a.version != b.version:
                problem(("links", i, "addresses"), "both ends need addresses of the same IP version")
            elif a.network != b.network:
                problem(("links", i, "addresses"), f"{a} and {b} are not in one subnet")
            elif a.ip == b.ip:
                problem(("links", i, "addresses"), "both ends have the same address")

    names: dict[str, int] = {}  # link name → index, for the checks and for steps
    for i, link in enumerate(spec.links):
        label = link.name or f"{link.ends[0]}-{link.ends[1]}"
        if label in names:
            problem(("links", i, "name" if link.name else "ends"), f"two links are called '{label}' (links[{names[label]}] too): give one a `name:`")
        names.setdefault(label, i)
        for towards in link.towards:
            if towards not in link.ends:
                problem(("links", i, "towards", towards), f"'{towards}' is not an end of this link ({link.ends[0]}, {link.ends[1]})")
        for conditions, path in [(link, ("links", i))] + [(c, ("links", i, "towards", t)) for t, c in link.towards.items()]:
            problems.extend(doc.problem(path + (field,), message) for field, message in impairment_problems(conditions))

    lan_names = _check_lans(spec, doc, names, neighbours, problem, problems)

    for name, node in nodes.items():
        for j, rule in enumerate(node.firewall):
            path = ("nodes", name, "firewall", j)
            if (rule.drop is None) == (rule.allow is None):
                problem(path, "a rule is either `drop: udp|tcp|icmp|fragments|all` or `allow: established`")
            if rule.port is not None and rule.drop not in ("udp", "tcp"):
                problem(path + ("port",), "`port` goes with `drop: udp` or `drop: tcp`")
            if rule.from_ is not None and rule.from_ not in neighbours[name]:
                problem(path + ("from",), f"'{rule.from_}' is not a neighbour of '{name}'{known(neighbours[name], rule.from_, 'neighbours')}")
            elif rule.from_ is not None and neighbours[name].only_through_lan(rule.from_):
                problem(
                    path + ("from",),
                    f"'{rule.from_}' is a neighbour on {neighbours[name].only_through_lan(rule.from_)}, whose port '{name}' "
                    "shares with every other member: a rule `from:` one node needs a link of its own to it",
                )
        if node.nat is not None:
            if node.nat.outside not in neighbours[name]:
                problem(("nodes", name, "nat", "outside"), f"'{node.nat.outside}' is not a neighbour of '{name}'{known(neighbours[name], node.nat.outside, 'neighbours')}")
            elif len(neighbours[name]) < 2:
                problem(("nodes", name, "nat"), "a NAT router needs an inside link besides its outside one")

    wg = spec.wireguard
    for name, iface in wg.items():
        if name not in nodes:
            problem(("wireguard", name), f"unknown node '{name}'{known(nodes, name)}")
        for peer in iface.peers:
            if peer == name:
                problem(("wireguard", name, "peers", peer), "a node cannot peer with itself")
            elif peer not in nodes:
                problem(("wireguard", name, "peers", peer), f"unknown node '{peer}'{known(wg, peer, 'WireGuard nodes')}")
            elif peer not in wg:
                problem(("wireguard", name, "peers", peer), f"'{peer}' has no wireguard section{known(wg, peer, 'WireGuard nodes')}")
    _check_sockets(spec, problem)
    _check_placement(spec, problem)
    routing_checks.check_names(spec, neighbours, problem)

    # each kind's own checks (steps/), in step order: earlier steps start what later ones stop
    first = FirstRound(spec, names, neighbours, lan_names)
    for i, step in enumerate(spec.steps):
        args = step_args(step)
        kind = step_kind(step)
        cause = getattr(args, "cause", None)
        if cause and args.expect != "fail":
            problem(("steps", i, kind, "cause"), "`cause` names why a check is expected to fail: it needs `expect: fail`")
        elif cause and _CAUSE_CODE.match(cause) and cause not in CAUSES:
            problem(("steps", i, kind, "cause"), f"unknown cause '{cause}'{known(CAUSES, cause, 'causes')}")
        check = registry.kind(kind).check
        if check is not None:
            check(args, StepCheck(("steps", i, kind), problem, first))
    for started in first.running.values():
        problem(started.path, started.never_stopped)
    dns_checks.check_spec(spec, problem)
    if problems or spec.topology is not None:  # a Topo's underlay is known once built: WireGuard is planned then
        return problems
    try:
        plan = build_plan(spec, "check0")
    except PlanErrors as exc:
        return [doc.problem(error.path, str(error)) for error in exc.errors]
    except PlanError as exc:
        return [doc.problem(exc.path, str(exc))]
    routing_checks.check_plan(spec, plan, problem)
    dns_checks.check_plan(spec, plan, problem)

    def endpoint(text: str, node: str, path: tuple) -> None:
        try:
            resolve_endpoint(text, plan, node, path)
        except PlanError as exc:
            problem(exc.path, str(exc))

    for i, step in enumerate(spec.steps):
        kind = step_kind(step)
        check_plan = registry.kind(kind).check_plan
        if check_plan is not None:
            check_plan(step_args(step), StepPlanCheck(("steps", i, kind), problem, spec, plan, endpoint))
    return problems


_CAUSE_CODE = re.compile(r"^[a-z]+(-[a-z]+)+$")


class Neighbours(AbstractSet[str]):
    """The nodes one node has a link to, or shares a LAN with: a view, since a LAN of
    1 000 would otherwise make a million pairs."""

    def __init__(self, owner: str):
        self.owner = owner
        self.direct: set[str] = set()  # those it has a link to
        self.lans: list[tuple[str, frozenset[str]]] = []  # (LAN name, its members)

    def __contains__(self, node: object) -> bool:
        return node != self.owner and (node in self.direct or any(node in members for _, members in self.lans))

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def _all(self) -> set[str]:
        found = set(self.direct)
        for _, members in self.lans:
            found |= members
        found.discard(self.owner)
        return found

    def only_through_lan(self, node: str) -> str | None:
        """The LAN `node` is a neighbour on, if it has no link of its own to it."""
        if node == self.owner or node in self.direct:
            return None
        return next((name for name, members in self.lans if node in members), None)


def _check_lans(
    spec: ScenarioSpec, doc: SourceDoc, link_names: dict[str, int], neighbours: dict[str, "Neighbours"], problem, problems,
) -> dict[str, int]:
    """Each LAN's members, subnets and per-member conditions; the members become each
    other's neighbours. Returns each LAN's name → its index in lans."""
    nodes = spec.nodes
    names: dict[str, int] = {}
    for j, lan in enumerate(spec.lans):
        path = ("lans", j)
        label = lan_name(lan, j)
        clash = f"links[{link_names[label]}]" if label in link_names else f"lans[{names[label]}]" if label in names else None
        if clash is not None:
            problem(path + (("name",) if lan.name else ("members",)), f"'{label}' also names {clash}: give one a `name:`")
        names.setdefault(label, j)
        if len(lan.members) > MAX_LAN_MEMBERS:
            problem(
                path + ("members",),
                f"{len(lan.members)} members: at most {MAX_LAN_MEMBERS} on one LAN (one Linux bridge's ports); "
                "split them into LANs joined by a router node",
            )
            continue
        seen: dict[str, int] = {}
        for k, member in enumerate(lan.members):
            if member not in nodes:
                problem(path + ("members", k), f"unknown node '{member}'{known(nodes, member)}")
            elif member in seen:
                problem(path + ("members", k), f"'{member}' is on this LAN twice (members[{seen[member]}] too)")
            seen.setdefault(member, k)
        if lan.subnet is not None:
            if lan.subnet.version != 4:
                problem(path + ("subnet",), f"{lan.subnet} is IPv6: `subnet` is the IPv4 one, `subnet6` the IPv6 one")
            elif lan.subnet.num_addresses - 2 < len(lan.members):
                problem(path + ("subnet",), f"{lan.subnet} has {max(lan.subnet.num_addresses - 2, 0)} host addresses for {len(lan.members)} members")
        if lan.subnet6 is not None:
            if lan.subnet6.version != 6:
                problem(path + ("subnet6",), f"{lan.subnet6} is IPv4: `subnet6` is the IPv6 one, `subnet` the IPv4 one")
            elif lan.subnet6.num_addresses - 1 < len(lan.members):
                problem(path + ("subnet6",), f"{lan.subnet6} has too few addresses for {len(lan.members)} members")
        for key, per_member in (("towards", lan.towards), ("from", lan.from_)):
            for member in per_member:
                if member not in seen:
                    problem(path + (key, member), f"'{member}' is not a member of {label}{known(seen, member, 'members')}")
        for conditions, where in [(lan, path)] + [(c, path + (k, m)) for k, per in (("towards", lan.towards), ("from", lan.from_)) for m, c in per.items()]:
            problems.extend(doc.problem(where + (field,), message) for field, message in impairment_problems(conditions))
        members = frozenset(m for m in seen if m in nodes)
        for member in members:
            neighbours[member].lans.append((label, members))
    return names


def _check_placement(spec: ScenarioSpec, problem) -> None:
    """Every placed node exists and is placed once; what must share a host (a device
    and its socket_in node) is not placed apart."""
    host_of: dict[str, str] = {}
    for host, names in spec.placement.items():
        for k, name in enumerate(names):
            if name not in spec.nodes:
                problem(("placement", host, k), f"unknown node '{name}'{known(spec.nodes, name)}")
            elif name in host_of:
                problem(("placement", host, k), f"'{name}' is placed twice (on {host_of[name]} too)")
            host_of.setdefault(name, host)
    together = [
        (("wireguard", name, "socket_in"), f"'{name}''s device has its socket in '{iface.socket_in}'", [name, iface.socket_in])
        for name, iface in spec.wireguard.items()
        if iface.socket_in is not None
    ]
    for path, why, members in together:
        hosts = {host_of[m]: m for m in members if m in host_of}
        if len(hosts) > 1:
            apart = ", ".join(f"{node} on {host}" for host, node in hosts.items())
            problem(path, f"{why}, so they run on one host, but `placement` puts {apart}")


def _check_sockets(spec, problem) -> None:
    """socket_in names another node; sockets sharing a namespace need distinct ports."""
    sockets: dict[tuple[str, int], str] = {}  # (socket node, port) → first WireGuard node there
    for name, iface in spec.wireguard.items():
        where = iface.socket_in or name
        if iface.socket_in is not None:
            if iface.socket_in not in spec.nodes:
                problem(("wireguard", name, "socket_in"), f"unknown node '{iface.socket_in}'{known(spec.nodes, iface.socket_in)}")
                continue
            if iface.socket_in == name:
                problem(("wireguard", name, "socket_in"), f"'{name}' is its own node: socket_in names another node, whose namespace keeps the socket")
                continue
        first = sockets.setdefault((where, iface.listen_port), name)
        if first != name:
            problem(
                ("wireguard", name, "listen_port"),
                f"port {iface.listen_port} is taken in '{where}' by '{first}''s socket: sockets in one namespace need different listen_ports",
            )
