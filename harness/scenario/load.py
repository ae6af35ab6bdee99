"""Load a scenario file into validated cases: YAML → matrix expansion → model → references."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import Problem, ScenarioError
from harness.scenario.groups import collapse_member_problems, expand_groups, group_of_members
from harness.scenario.matrix import expand
from harness.scenario.fields import CONFIG_PATH_PATTERN, HOST_NAME_PATTERN, KEY_PATTERN, LABEL_PATTERN
from harness.scenario.model import STEP_KINDS, ScenarioSpec
from harness.scenario.yamlsource import MAX_FILE_BYTES, SourceDoc, decode_text, format_path, parse_yaml


@dataclass(frozen=True)
class ScenarioCase:
    """One runnable scenario: a file, or one combination of its matrix."""

    file: str
    spec: ScenarioSpec
    source: SourceDoc = field(repr=False, compare=False)
    case_id: str | None = None
    matrix_values: dict[str, Any] = field(default_factory=dict)
    file_sha256: str = ""
    # from imported config files (`wireguard.<node>.config`): what the run leaves out or
    # changes (file:line: …), and with `keys: as-is` the files' keys (in memory only)
    notes: tuple[str, ...] = ()
    secrets: Any = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.spec.name or Path(self.file).stem

    @property
    def id(self) -> str:
        return f"{self.name}[{self.case_id}]" if self.case_id else self.name


def load_file(path: str | Path) -> list[ScenarioCase]:
    """All cases of a scenario file; raises ScenarioError listing every problem found."""
    path = Path(path)
    try:
        with path.open("rb") as stream:  # bounded read: a scenario path may name a device or a huge file
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ScenarioError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    return load_text(decode_text(data, str(path)), str(path))


def load_text(text: str, file: str = "<scenario>") -> list[ScenarioCase]:
    doc = parse_yaml(text, file)
    return load_doc(doc, hashlib.sha256(text.encode()).hexdigest())


def load_data(data: dict[str, Any], file: str = "<dict>") -> list[ScenarioCase]:
    """Cases from an already-parsed mapping (Python tests build scenarios this way)."""
    return load_doc(SourceDoc(file, data, {}), "")  # no lines: problems name the field only


def load_doc(doc: SourceDoc, sha: str) -> list[ScenarioCase]:
    if not isinstance(doc.data, dict):
        raise ScenarioError([doc.problem((), "a scenario file is a mapping with at least 'nodes:'")])
    cases = []
    problems: list[Problem] = []
    for mcase in expand(doc):
        loaded = _load_case(mcase, doc.file, sha)
        if isinstance(loaded, ScenarioCase):
            cases.append(loaded)
        else:
            problems += collapse_member_problems(loaded, group_of_members(mcase.doc))
    if problems:
        raise ScenarioError(_unique(problems))
    return cases


def _load_case(mcase: Any, file: str, sha: str) -> ScenarioCase | list[Problem]:
    """One case of the matrix, validated, or its problems."""
    try:  # node groups expand per case: a matrix may set their counts
        mcase = dataclasses.replace(mcase, doc=expand_groups(mcase.doc))
    except ScenarioError as exc:
        return exc.problems
    data = mcase.doc.data
    if isinstance(data, dict) and "topology" in data:
        found = _with_topology_nodes(mcase.doc, file)
        if isinstance(found, list):
            return found
        data = found
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        return _pydantic_problems(exc, mcase.doc)
    notes: tuple[str, ...] = ()
    secrets = None
    source = mcase.doc
    if any(wg.config for wg in spec.wireguard.values()):  # shapes checked first: then the files, with their lines
        imported = _with_imported_configs(spec, source, file)
        if isinstance(imported, list):
            return imported
        source, notes, secrets = imported
        try:
            spec = ScenarioSpec.model_validate(source.data)
        except ValidationError as exc:
            return _pydantic_problems(exc, source)
    # imported here: validation needs the planner, which imports the model
    from harness.scenario.validate import check_references

    problems = check_references(spec, source)
    if problems:
        return problems
    return ScenarioCase(file, spec, source, mcase.case_id, mcase.values, sha, notes, secrets)


def _with_topology_nodes(doc: SourceDoc, file: str) -> dict[str, Any] | list[Problem]:
    """The file's data with the nodes of its `topology:` (the Topo's hosts) and the
    Mininet engine filled in, or the problems."""
    from harness.scenario.model import TopologySpec
    from harness.scenario.topology import TopologyError, load_topology, topology_nodes

    data = doc.data
    clashing = [key for key in ("nodes", "links") if key in data]
    if clashing:
        return [doc.problem((clashing[0],), "a file with `topology:` takes its nodes and links from the Topo: remove this section")]
    if data.get("engine", "mininet") != "mininet":
        return [doc.problem(("engine",), "a Mininet topology is built by the mininet engine")]
    try:
        topology = TopologySpec.model_validate(data["topology"])
    except ValidationError as exc:
        found: dict[tuple, str] = {}
        for e in exc.errors():
            loc = ("topology",) + _clean_loc(e["loc"])[:2]  # an arg's value: one problem, not one per type it is not
            if loc[:2] == ("topology", "args") and len(loc) == 3:
                message = "expected a number, true/false or one line of text (a keyword argument of the Topo's build())"
            elif loc == ("topology", "mininet") and e["type"] == "string_pattern_mismatch":
                message = "expected 'file.py:ClassName', the file in this scenario's directory (no leading '/' or '.')"
            else:
                message = e["msg"]
            found.setdefault(loc, message)
        return [doc.problem(loc, message) for loc, message in found.items()]
    try:
        nodes = topology_nodes(load_topology(topology.mininet, topology.args, file))
    except TopologyError as exc:
        return [doc.problem(("topology", "mininet"), str(exc))]
    return {**data, "nodes": {name: {} for name in nodes}, "engine": "mininet"}


@dataclass
class ImportedDoc(SourceDoc):
    """The scenario's document with config files merged in: a problem with a value that
    came from a file names that file and line, not the scenario's."""

    origins: dict[tuple, tuple[str, int | None]] = field(default_factory=dict)

    def problem(self, path: Any, message: str) -> Problem:
        path = tuple(path)
        for length in range(len(path), 2, -1):
            if path[:length] in self.origins:
                file, line = self.origins[path[:length]]
                return Problem(file, line, format_path(path), message)
        return super().problem(path, message)


def _with_imported_configs(spec: ScenarioSpec, doc: SourceDoc, file: str) -> tuple[SourceDoc, tuple[str, ...], Any] | list[Problem]:
    """The document with every `wireguard.<node>.config` read and merged in, the notes,
    and the secrets (keys: as-is); or the problems, located in the config files."""
    from harness.configs.imported import config_files, import_configs, read_config
    from harness.configs.ini import ConfigFileError

    problems: list[Problem] = []
    read = {}
    for node, wg in spec.wireguard.items():
        if wg.config:
            try:
                read[node] = read_config(config_files(wg.config, file))
            except ConfigFileError as exc:
                problems.append(_config_problem(exc, doc, ("wireguard", node, "config")))
    if problems:
        return problems
    configs = spec.configs
    try:
        imported = import_configs(
            doc.data.get("wireguard") or {}, read, keys=configs.keys, hosts=configs.hosts, peers=configs.peers, hooks=configs.hooks,
            nodes=spec.nodes,
        )
    except ConfigFileError as exc:
        return [_config_problem(exc, doc, ("configs", "keys"))]
    merged = ImportedDoc(doc.file, {**doc.data, "wireguard": imported.wireguard}, doc.lines, imported.origins)
    return merged, tuple(imported.notes), imported.secrets


def _config_problem(exc: Any, doc: SourceDoc, path: tuple) -> Problem:
    """In the config file where it has a line; else at the scenario's field."""
    if exc.file is None or exc.line is None:
        where = f"{exc.file}: " if exc.file else ""
        return doc.problem(path, where + exc.message)
    return Problem(exc.file, exc.line, "", exc.message)


def load_cases(paths: list[str | Path]) -> list[ScenarioCase]:
    cases: list[ScenarioCase] = []
    for path in paths:
        cases += load_file(path)
    return cases


def _pydantic_problems(exc: ValidationError, doc: SourceDoc) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = _clean_loc(error["loc"], doc.data)
        pairs = ("ends", "between", "addresses")
        if loc and (
            (error["type"] in ("too_long", "too_short") and loc[-1] in pairs)
            or (len(loc) > 1 and isinstance(loc[-1], int) and loc[-2] in pairs and error["type"] == "missing")
        ):
            loc = loc if loc[-1] in pairs else loc[:-1]
            problems.append(doc.problem(loc, f"expected exactly two entries, e.g. [a, b]; got {_value_at(doc.data, loc)!r}"))
            continue
        message = _message(error, loc, doc)
        if error["loc"] and error["loc"][-1] == "[key]" and error["type"] == "string_pattern_mismatch":
            message = f"{loc[-1]!r} is not a valid name: use lowercase letters, digits and '_', at most 15 characters, starting with a letter"
            if len(loc) >= 2 and loc[-2] == "dns":  # nodes.<n>.dns keys are DNS names, not node names
                message = f"{loc[-1]!r} is not a DNS name: lowercase letters, digits and '-' in labels joined by dots, e.g. server.wgh.test"
            if (error.get("ctx") or {}).get("pattern") == HOST_NAME_PATTERN:
                message = f"{loc[-1]!r} is not a host name of an inventory: lowercase letters, digits and '-', at most 31 characters, starting with a letter"
        problems.append(doc.problem(loc, message))
    return problems


def _clean_loc(loc: tuple[Any, ...], data: Any = None) -> tuple[Any, ...]:
    """Drop pydantic's internals from a location: union tags doubled, 'function-after' and
    the like. A part that is a key present in the file is always the file's own (a key
    may contain '[' too)."""
    out: list[Any] = []
    node = data
    for part in loc:
        if out and part == out[-1] and len(out) >= 3 and out[-3] == "steps":
            continue  # ("steps", 0, "ping", "ping", ...) → ("steps", 0, "ping", ...)
        try:
            present = (isinstance(node, dict) and not isinstance(part, int) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            )
        except TypeError:  # an unhashable part
            present = False
        if present:
            out.append(part)
            node = node[part]
            continue
        node = None
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        out.append(part)
    return tuple(out)


def _message(error: dict[str, Any], loc: tuple[Any, ...], doc: SourceDoc) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = loc[-1]
        parent = _value_at(doc.data, loc[:-1])
        known = _known_keys(loc[:-1], parent)
        hint = difflib.get_close_matches(str(key), known, n=1)
        return f"unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
    if kind == "missing":
        return "required but missing"
    if kind == "step_kind":
        value = _value_at(doc.data, loc)
        if isinstance(value, dict) and len(value) == 1:
            name = next(iter(value))
            hint = difflib.get_close_matches(str(name), STEP_KINDS, n=1)
            return f"unknown step '{name}'" + (f" (did you mean '{hint[0]}'?)" if hint else f"; known steps: {', '.join(STEP_KINDS)}")
        if isinstance(value, dict) and len(value) > 1:
            kinds = [k for k in value if k in STEP_KINDS]
            others = [str(k) for k in value if k not in STEP_KINDS]
            if len(kinds) == 1 and others:
                return (
                    f"a step has one key, its kind, but this one also has {', '.join(others)}: "
                    f"indent {'them' if len(others) > 1 else 'it'} under '{kinds[0]}:' or put {'them' if len(others) > 1 else 'it'} inside its {{...}}"
                )
            return f"a step has exactly one key, its kind; found {', '.join(map(str, value))}"
        return error["msg"]
    pattern = (error.get("ctx") or {}).get("pattern")
    if kind == "string_pattern_mismatch" and pattern == CONFIG_PATH_PATTERN:
        return f"{error.get('input')!r}: expected a path relative to the scenario's directory, e.g. configs/wg0.conf (no leading '/' or '.')"
    if kind == "string_pattern_mismatch" and pattern == KEY_PATTERN:
        return f"{loc[-1]!r} is not a WireGuard public key (44 characters of base64, as in the files)"
    if kind == "string_pattern_mismatch" and pattern == LABEL_PATTERN:
        return f"{_value_at(doc.data, loc)!r} is not a valid name here: use letters, digits, '_', '.' and '-', at most 64 characters"
    if kind == "string_pattern_mismatch" and loc and isinstance(loc[-1], str):
        return f"{_value_at(doc.data, loc)!r} is not a valid name: use lowercase letters, digits and '_', at most 15 characters, starting with a letter"
    ctx = error.get("ctx") or {}
    friendly = {
        "greater_than_equal": lambda: f"must be ≥ {ctx.get('ge')}",
        "greater_than": lambda: f"must be > {ctx.get('gt')}",
        "less_than_equal": lambda: f"must be ≤ {ctx.get('le')}",
        "less_than": lambda: f"must be < {ctx.get('lt')}",
        "int_parsing": lambda: f"expected a whole number, got {error.get('input')!r}",
        "int_type": lambda: f"expected a whole number, got {error.get('input')!r}",
        "int_from_float": lambda: f"expected a whole number, got {error.get('input')!r}",
        "bool_parsing": lambda: f"expected true or false, got {error.get('input')!r}",
        "bool_type": lambda: f"expected true or false, got {error.get('input')!r}",
        "string_type": lambda: f"expected text, got {error.get('input')!r}",
        "dict_type": lambda: f"expected a mapping (key: value), got {error.get('input')!r}",
        "list_type": lambda: f"expected a list, got {error.get('input')!r}",
        "tuple_type": lambda: f"expected a list, got {error.get('input')!r}",
        "too_short": lambda: _count_message(ctx, error),
        "too_long": lambda: _count_message(ctx, error),
        "literal_error": lambda: f"expected {ctx.get('expected')}, got {error.get('input')!r}",
    }
    if kind in friendly:
        return friendly[kind]()
    return error["msg"].removeprefix("Value error, ")


def _count_message(ctx: dict[str, Any], error: dict[str, Any]) -> str:
    if ctx.get("field_type") == "Tuple" and ctx.get("min_length", 0) == ctx.get("max_length", -1):
        return f"expected exactly {ctx['min_length']} items, got {ctx.get('actual_length')}"
    if "min_length" in ctx and ctx.get("actual_length", 0) < ctx["min_length"]:
        return f"expected at least {ctx['min_length']} item{'s' if ctx['min_length'] != 1 else ''}"
    if "max_length" in ctx:
        return f"expected at most {ctx['max_length']} items, got {ctx.get('actual_length')}"
    return error["msg"]


def _value_at(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


# steps whose unknown keys get a 'did you mean' hint (the kinds added since have none)
_HINTED_STEPS = (
    "handshake", "ping", "link", "iperf3", "roam", "nat_rebind", "restart", "rotate_key", "endpoint", "probe", "capture", "stop",
    "wait_until", "remove_peer", "reuse_old_key", "handshake_age", "reach",
)


def _known_keys(loc: tuple[Any, ...], parent: Any) -> list[str]:
    """Field names valid at ``loc`` (for 'did you mean' hints)."""
    from harness.scenario import conditions, model
    from harness.scenario.steps import registry

    by_parent = {
        (): model.ScenarioSpec,
        ("nodes", "*"): model.NodeSpec,
        ("nodes", "*", "nat"): model.NatSpec,
        ("links", "*"): model.LinkSpec,
        ("wireguard", "*"): model.WireGuardSpec,
        ("wireguard", "*", "peers", "*"): model.PeerSpec,
        **{("steps", "*", kind): registry.kind(kind).args for kind in _HINTED_STEPS},
        ("links", "*", "towards", "*"): conditions.Impairment,
        ("nodes", "*", "firewall", "*"): model.FirewallRule,
    }
    pattern = tuple(p if i % 2 == 0 else "*" for i, p in enumerate(loc))
    cls = by_parent.get(pattern)
    if cls is None:
        return []
    return [f.alias or name for name, f in cls.model_fields.items()]


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    out = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return out
