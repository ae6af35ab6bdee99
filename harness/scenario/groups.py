"""Node groups: `nodes: {peer: {count: 5}}` is five nodes, peer1 … peer5 (pure).

A mesh of 25 peers would take 25 node entries, 25 links and 600 peer entries by
hand. A group writes them once. It is expanded on the parsed document, after the
matrix (so a matrix can set `nodes.<group>.count`) and before the model sees it,
like a macro: wherever the group's name stands for a node, it stands for each
member in turn:

- `nodes.<group>`: each member gets a copy of the node's settings;
- `links[].ends: [<group>, hub]`: one link per member (each its own subnet);
  `towards: {<group>: ...}` follows the member, a `name:` gets `-<member>` appended;
- `lans[].members: [<group>, hub]`: every member on the one LAN; `towards:`/`from:`
  `{<group>: ...}` gives each member's port those conditions;
- `wireguard.<group>`: each member gets the interface;
- `peers: {<group>: {...}}`: a peer entry for every member (other than itself, inside
  its own group); in that entry `endpoint: <group>` and `allowed_ips: [<group>]`
  mean that member; elsewhere in `allowed_ips` a group means all its members;
- `reach: {among: <group>}` lists the members;
- `placement: {<host>: [<group>]}` puts every member on that host.

Every expanded value keeps the line of the template it came from, so errors point
into the file as written. Other steps name single members (`peer3`).
"""

from __future__ import annotations

import copy
import difflib
import re
from typing import Any

from harness.errors import Problem, ScenarioError
from harness.scenario.fields import NAME_PATTERN
from harness.scenario.model import MAX_EXPANDED_ENTRIES, MAX_GROUP_SIZE
from harness.scenario.yamlsource import Path, SourceDoc

# step fields whose values are node names (a group there is ambiguous)
_NODE_FIELDS = ("from", "to", "between", "node", "peer", "at", "handshake")


def member_names(group: str, count: int) -> list[str]:
    return [f"{group}{i}" for i in range(1, count + 1)]


def expand_groups(doc: SourceDoc) -> SourceDoc:
    """The document with every node group expanded into its members."""
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict):
        return doc
    nodes = data["nodes"]
    groups = {name: spec["count"] for name, spec in nodes.items() if isinstance(spec, dict) and "count" in spec}
    if not groups:
        return doc
    expander = _Expander(doc, groups)
    return expander.run()


def group_of_members(doc: SourceDoc) -> dict[str, str]:
    """member → its group, for the well-formed groups of a document not yet expanded."""
    nodes = doc.data.get("nodes") if isinstance(doc.data, dict) else None
    if not isinstance(nodes, dict):
        return {}
    found: dict[str, str] = {}
    for name, spec in nodes.items():
        count = spec.get("count") if isinstance(spec, dict) else None
        if isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= MAX_GROUP_SIZE:
            found.update(dict.fromkeys(member_names(name, count), name))
    return found


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def collapse_member_problems(problems: list[Problem], groups: dict[str, str]) -> list[Problem]:
    """One problem per mistake in a group's template, not one per member: a typo in the
    `spoke` section of a 1 000-spoke hub is one line, saying how many members it hits."""
    if not groups:
        return problems

    def as_group(text: str) -> str:
        return _WORD.sub(lambda m: groups.get(m.group(0), m.group(0)), text)

    keyed: dict[tuple, list[Problem]] = {}
    for problem in problems:
        key = (problem.file, problem.line, as_group(problem.field), as_group(problem.message))
        keyed.setdefault(key, []).append(problem)
    sizes: dict[str, int] = {}
    for group in groups.values():
        sizes[group] = sizes.get(group, 0) + 1
    out = []
    for (file, line, field, message), found in keyed.items():
        if len(found) == 1:
            out.append(found[0])
            continue
        hit = {groups[w] for p in found for w in _WORD.findall(p.field + " " + p.message) if w in groups}
        if len(hit) == 1:
            (group,) = hit
            # a template inside its own group (a mesh) expands once per pair, not per member
            where = f"all {sizes[group]} members of group '{group}'" if len(found) == sizes[group] else f"{len(found)} expansions of group '{group}'"
        else:
            where = f"{len(found)} expansions of groups " + ", ".join(f"'{g}'" for g in sorted(hit))
        out.append(Problem(file, line, field, f"{message} (in {where})"))
    return out


class _Expander:
    def __init__(self, doc: SourceDoc, counts: dict[str, Any]):
        self.doc = doc
        self.problems: list[Problem] = []
        self.members: dict[str, list[str]] = {}
        self.lines: dict[Path, int] = {}
        self._check_counts(counts)
        if not self.problems:
            self._check_expanded_size()

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(self.doc.problem(path, message))

    def _check_counts(self, counts: dict[str, Any]) -> None:
        nodes = self.doc.data["nodes"]
        for group, count in counts.items():
            path = ("nodes", group, "count")
            if isinstance(count, bool) or not isinstance(count, int):
                self.problem(path, f"expected a whole number of nodes, got {count!r}")
                continue
            if not 1 <= count <= MAX_GROUP_SIZE:
                self.problem(path, f"must be between 1 and {MAX_GROUP_SIZE}")
                continue
            names = member_names(group, count)
            if not re.match(NAME_PATTERN, names[-1]):
                self.problem(
                    ("nodes", group),
                    f"members are named {names[0]} … {names[-1]}: '{names[-1]}' is not a valid node name "
                    f"(at most 15 characters); shorten the group name",
                )
                continue
            clash = next((n for n in names if n in nodes), None)
            if clash is not None:
                self.problem(("nodes", clash), f"'{clash}' is also a member of group '{group}' ({names[0]} … {names[-1]}): rename one")
                continue
            self.members[group] = names

    def _check_expanded_size(self) -> None:
        """Refuse, before expanding, a file that would expand into more peer entries (or
        allowed_ips entries) than can be planned in reasonable time: a full mesh of
        10 000 is 10⁸ peers. Counted from the template, so nothing big is built first."""
        sections = self.doc.data.get("wireguard")
        if not isinstance(sections, dict):
            return
        size = {name: len(names) for name, names in self.members.items()}
        totals = {"peer": 0, "allowed_ips": 0}
        largest: dict[str, tuple[int, Path]] = {}
        for name, spec in sections.items():
            peers = spec.get("peers") if isinstance(spec, dict) else None
            if not isinstance(peers, dict):
                continue
            owners = size.get(name, 1)
            for peer, entry in peers.items():
                targets = size.get(peer, 1) - (1 if peer == name and peer in size else 0)
                allowed = entry.get("allowed_ips") if isinstance(entry, dict) else None
                tokens = allowed if isinstance(allowed, list) else []
                per_peer = sum(size.get(t, 1) if isinstance(t, str) and t != peer else 1 for t in tokens)
                path = ("wireguard", name, "peers", peer)
                for kind, count in (("peer", owners * targets), ("allowed_ips", owners * targets * per_peer)):
                    totals[kind] += count
                    if count > largest.get(kind, (0, path))[0]:
                        largest[kind] = (count, path)
        for kind, total in totals.items():
            if total > MAX_EXPANDED_ENTRIES:
                count, path = largest[kind]
                self.problem(
                    path + (("allowed_ips",) if kind == "allowed_ips" else ()),
                    f"the groups expand into {total:,} {kind} entries ({count:,} from this one); at most "
                    f"{MAX_EXPANDED_ENTRIES:,} (a full mesh of 1 000): peer large groups through a hub, "
                    f"and give a hub's spokes one prefix in allowed_ips (100.64.0.0/16) rather than the group",
                )

    def run(self) -> SourceDoc:
        if self.problems:
            raise ScenarioError(self.problems)
        data = self.doc.data
        out: dict[Any, Any] = {}
        # lines outside the rebuilt sections stay where they are
        rebuilt = ("nodes", "links", "lans", "wireguard", "steps", "placement")
        self.lines = {p: line for p, line in self.doc.lines.items() if not (len(p) > 1 and p[0] in rebuilt)}
        for key, value in data.items():
            if key == "nodes":
                out[key] = self._nodes(value)
            elif key == "links" and isinstance(value, list):
                out[key] = self._links(value)
            elif key == "lans" and isinstance(value, list):
                out[key] = self._lans(value)
            elif key == "wireguard" and isinstance(value, dict):
                out[key] = self._wireguard(value)
            elif key == "steps" and isinstance(value, list):
                out[key] = self._steps(value)
            elif key == "placement" and isinstance(value, dict):
                out[key] = self._placement(value)
            else:
                out[key] = value
                self._move((key,), (key,))
        if self.problems:
            raise ScenarioError(self.problems)
        return SourceDoc(self.doc.file, out, self.lines)

    def _move(self, source: Path, target: Path) -> None:
        """The lines of everything under `source` now belong to `target`."""
        n = len(source)
        for path, line in self.doc.lines.items():
            if path[:n] == source:
                self.lines[target + path[n:]] = line

    def _nodes(self, nodes: dict) -> dict:
        out = {}
        for name, spec in nodes.items():
            if name in self.members:
                template = {k: v for k, v in spec.items() if k != "count"}
                for member in self.members[name]:
                    out[member] = copy.deepcopy(template)
                    self._move(("nodes", name), ("nodes", member))
            else:
                out[name] = spec
                self._move(("nodes", name), ("nodes", name))
        return out

    def _links(self, links: list) -> list:
        out: list = []
        for i, link in enumerate(links):
            ends = link.get("ends") if isinstance(link, dict) else None
            grouped = [e for e in ends if isinstance(e, str) and e in self.members] if isinstance(ends, list) else []
            if not grouped:
                self._move(("links", i), ("links", len(out)))
                out.append(link)
                continue
            if len(grouped) > 1:
                self.problem(("links", i, "ends"), f"a link joins a group to one node (each member gets its own link): '{grouped[0]}' and '{grouped[1]}' are both groups")
                continue
            if link.get("addresses") is not None:
                self.problem(("links", i, "addresses"), f"each member of group '{grouped[0]}' gets its own link and subnet: leave `addresses` out")
                continue
            group = grouped[0]
            for member in self.members[group]:
                source, target = ("links", i), ("links", len(out))
                copied = copy.deepcopy(link)
                copied["ends"] = [member if e == group else e for e in ends]
                if isinstance(copied.get("name"), str):
                    copied["name"] = f"{copied['name']}-{member}"
                if isinstance(copied.get("towards"), dict) and group in copied["towards"]:
                    copied["towards"] = {member if k == group else k: v for k, v in copied["towards"].items()}
                self._move(source, target)
                self._move(source + ("towards", group), target + ("towards", member))
                out.append(copied)
        return out

    def _lans(self, lans: list) -> list:
        """A group among a LAN's members stands for all of them, on the same LAN; in
        `towards:`/`from:` it gives every member's port the same conditions."""
        out: list = []
        for i, lan in enumerate(lans):
            self._move(("lans", i), ("lans", i))
            if not isinstance(lan, dict):
                out.append(lan)
                continue
            lan = dict(lan)
            if isinstance(lan.get("members"), list):
                lan["members"] = self._names(lan["members"], ("lans", i, "members"))
            for key in ("towards", "from"):
                conditions = lan.get(key)
                if not isinstance(conditions, dict) or not any(k in self.members for k in conditions):
                    continue
                per_member: dict = {}
                for name, spec in conditions.items():
                    for member in self.members.get(name, [name]):
                        per_member[member] = copy.deepcopy(spec)
                        self._move(("lans", i, key, name), ("lans", i, key, member))
                lan[key] = per_member
            out.append(lan)
        return out

    def _names(self, names: list, path: Path) -> list:
        """A list of node names in which a group stands for all its members, each
        expanded name keeping its entry's line."""
        if not any(isinstance(n, str) and n in self.members for n in names):
            return names
        line = self.doc.line_of(path)
        expanded: list = []
        for j, name in enumerate(names):
            for member in self.members[name] if isinstance(name, str) and name in self.members else [name]:
                here = self.doc.line_of(path + (j,)) or line
                if here is not None:
                    self.lines[path + (len(expanded),)] = here
                expanded.append(member)
        return expanded

    def _placement(self, placement: dict) -> dict:
        """`placement: {host: [<group>, …]}`: a group puts all its members there."""
        out: dict = {}
        for host, names in placement.items():
            self._move(("placement", host), ("placement", host))
            out[host] = self._names(names, ("placement", host)) if isinstance(names, list) else names
        return out

    def _wireguard(self, sections: dict) -> dict:
        out: dict = {}
        for name, spec in sections.items():
            owners = self.members.get(name, [name])
            for owner in owners:
                if owner in out:
                    self.problem(("wireguard", name), f"'{owner}' has two wireguard sections (one from its group)")
                    continue
                self._move(("wireguard", name), ("wireguard", owner))
                if not isinstance(spec, dict) or not isinstance(spec.get("peers"), dict):
                    out[owner] = copy.deepcopy(spec)
                    continue
                section = {k: copy.deepcopy(v) for k, v in spec.items() if k != "peers"}
                section["peers"] = self._peers(name, owner, spec["peers"])
                out[owner] = section
        return out

    def _peers(self, section: str, owner: str, peers: dict) -> dict:
        out: dict = {}
        for name, spec in peers.items():
            targets = self.members.get(name, [name])
            for target in targets:
                if target == owner and name in self.members:
                    continue  # every *other* member of its own group
                if target in out:
                    self.problem(("wireguard", section, "peers", name), f"'{target}' is listed twice as a peer of '{owner}' (once through its group)")
                    continue
                out[target] = self._peer(spec, name, target)
                self._move(("wireguard", section, "peers", name), ("wireguard", owner, "peers", target))
                allowed = spec.get("allowed_ips") if isinstance(spec, dict) else None
                if isinstance(allowed, list) and any(t in self.members for t in allowed):
                    line = self.doc.line_of(("wireguard", section, "peers", name, "allowed_ips"))
                    for j in range(len(out[target]["allowed_ips"])):
                        if line is not None:
                            self.lines[("wireguard", owner, "peers", target, "allowed_ips", j)] = line
        return out

    def _peer(self, spec: Any, name: str, member: str) -> Any:
        """A peer entry for one member: the group's name there means that member."""
        if not isinstance(spec, dict) or name not in self.members:
            spec = copy.deepcopy(spec)
        else:
            spec = copy.deepcopy(spec)
            endpoint = spec.get("endpoint")
            if isinstance(endpoint, str) and (endpoint == name or endpoint.startswith(name + ":")):
                spec["endpoint"] = member + endpoint[len(name):]
        if isinstance(spec, dict) and isinstance(spec.get("allowed_ips"), list):
            expanded: list = []
            for token in spec["allowed_ips"]:
                if token == name and name in self.members:
                    expanded.append(member)
                elif isinstance(token, str) and token in self.members:
                    expanded += self.members[token]
                else:
                    expanded.append(token)
            spec["allowed_ips"] = expanded
        return spec

    def _steps(self, steps: list) -> list:
        out = []
        for i, step in enumerate(steps):
            self._move(("steps", i), ("steps", i))
            if not (isinstance(step, dict) and len(step) == 1):
                out.append(step)
                continue
            kind, args = next(iter(step.items()))
            if not isinstance(args, dict):
                out.append(step)
                continue
            args = copy.deepcopy(args)
            among = args.get("among")
            if kind == "reach" and isinstance(among, str) and among in self.members:
                args["among"] = list(self.members[among])
                line = self.doc.line_of(("steps", i, kind, "among"))
                for j in range(len(args["among"])):
                    if line is not None:
                        self.lines[("steps", i, kind, "among", j)] = line
            elif kind == "reach" and isinstance(among, str) and among not in self.members:
                hint = difflib.get_close_matches(among, list(self.members), n=1)
                self.problem(
                    ("steps", i, kind, "among"),
                    f"'{among}' is not a node group (a node with `count:`)" + (f" (did you mean '{hint[0]}'?)" if hint else ""),
                )
            self._check_node_fields(args, ("steps", i, kind))
            out.append({kind: args})
        return out

    def _check_node_fields(self, args: dict, path: Path) -> None:
        for key, value in args.items():
            if isinstance(value, dict):
                self._check_node_fields(value, path + (key,))
                continue
            if key not in _NODE_FIELDS:
                continue
            for j, item in enumerate(value if isinstance(value, list) else [value]):
                if isinstance(item, str) and item in self.members:
                    names = self.members[item]
                    self.problem(
                        path + ((key, j) if isinstance(value, list) else (key,)),
                        f"'{item}' is a group of {len(names)} nodes ({names[0]} … {names[-1]}): name one member, "
                        f"or check them all with `reach: {{among: {item}}}`",
                    )
