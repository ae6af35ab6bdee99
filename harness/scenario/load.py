"""Load a scenario file into validated cases: YAML → matrix expansion → model → references."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import Problem, ScenarioError
from harness.scenario.matrix import expand
from harness.scenario.model import STEP_KINDS, ScenarioSpec
from harness.scenario.yamlsource import SourceDoc, parse_yaml


@dataclass(frozen=True)
class ScenarioCase:
    """One runnable scenario: a file, or one combination of its matrix."""

    file: str
    spec: ScenarioSpec
    source: SourceDoc = field(repr=False, compare=False)
    case_id: str | None = None
    matrix_values: dict[str, Any] = field(default_factory=dict)
    file_sha256: str = ""

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
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    return load_text(text, str(path))


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
        try:
            spec = ScenarioSpec.model_validate(mcase.doc.data)
        except ValidationError as exc:
            problems += _pydantic_problems(exc, mcase.doc)
            continue
        # imported here: validation needs the planner, which imports the model
        from harness.scenario.validate import check_references

        found = check_references(spec, mcase.doc)
        if found:
            problems += found
            continue
        cases.append(ScenarioCase(doc.file, spec, mcase.doc, mcase.case_id, mcase.values, sha))
    if problems:
        raise ScenarioError(_unique(problems))
    return cases


def load_cases(paths: list[str | Path]) -> list[ScenarioCase]:
    cases: list[ScenarioCase] = []
    for path in paths:
        cases += load_file(path)
    return cases


def _pydantic_problems(exc: ValidationError, doc: SourceDoc) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = _clean_loc(error["loc"])
        message = _message(error, loc, doc)
        if error["loc"] and error["loc"][-1] == "[key]" and error["type"] == "string_pattern_mismatch":
            message = f"{loc[-1]!r} is not a valid name: use lowercase letters, digits and '_', at most 15 characters, starting with a letter"
        problems.append(doc.problem(loc, message))
    return problems


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's internals from a location: union tags doubled, 'function-after' and the like."""
    out: list[Any] = []
    for part in loc:
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        if out and part == out[-1] and len(out) >= 3 and out[-3] == "steps":
            continue  # ("steps", 0, "ping", "ping", ...) → ("steps", 0, "ping", ...)
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
        return error["msg"]
    if kind == "string_pattern_mismatch" and loc and isinstance(loc[-1], str):
        return f"{_value_at(doc.data, loc)!r} is not a valid name: use lowercase letters, digits and '_', at most 15 characters, starting with a letter"
    msg = error["msg"]
    return msg.removeprefix("Value error, ")


def _value_at(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _known_keys(loc: tuple[Any, ...], parent: Any) -> list[str]:
    """Field names valid at ``loc`` (for 'did you mean' hints)."""
    from harness.scenario import model

    by_parent = {
        (): model.ScenarioSpec,
        ("nodes", "*"): model.NodeSpec,
        ("nodes", "*", "nat"): model.NatSpec,
        ("links", "*"): model.LinkSpec,
        ("wireguard", "*"): model.WireGuardSpec,
        ("wireguard", "*", "peers", "*"): model.PeerSpec,
        ("steps", "*", "handshake"): model.HandshakeArgs,
        ("steps", "*", "ping"): model.PingArgs,
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
