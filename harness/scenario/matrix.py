"""`matrix:` expansion: one file → several cases, each with a readable id (pure)."""

from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

from harness.errors import ScenarioError
from harness.scenario.yamlsource import Path, SourceDoc


@dataclass(frozen=True)
class MatrixCase:
    case_id: str | None
    values: dict[str, Any]
    doc: SourceDoc


def expand(doc: SourceDoc) -> list[MatrixCase]:
    """Every combination of the matrix values, applied to a copy of the document."""
    matrix = doc.data.get("matrix") if isinstance(doc.data, dict) else None
    if not matrix:
        return [MatrixCase(None, {}, doc)]
    # two forms: {path: [values]} (every combination) or [{path: value, ...}] (listed cases)
    combos: list[list[tuple[str, Any, Path]]] = []
    names: list[str | None] = []
    if isinstance(matrix, dict):
        problems = [
            doc.problem(("matrix", key), "expected a non-empty list of values")
            for key, values in matrix.items()
            if not isinstance(values, list) or not values
        ]
        if problems:
            raise ScenarioError(problems)
        axes = [[(key, value, ("matrix", key, i)) for i, value in enumerate(values)] for key, values in matrix.items()]
        _check_size(math.prod(len(axis) for axis in axes), doc)
        combos = [list(combo) for combo in itertools.product(*axes)]
    elif isinstance(matrix, list) and all(isinstance(entry, dict) and entry for entry in matrix):
        _check_size(len(matrix), doc)
        names = _case_names(matrix, doc)
        combos = [
            [(key, value, ("matrix", i, key)) for key, value in entry.items() if key != CASE_NAME_KEY]
            for i, entry in enumerate(matrix)
        ]
    else:
        raise ScenarioError([doc.problem(("matrix",), "expected a mapping of dotted paths to lists of values, or a list of mappings of dotted paths to values")])

    labels = _labels(list(dict.fromkeys(key for combo in combos for key, _, _ in combo)))
    cases = []
    for number, combo in enumerate(combos):
        data = copy.deepcopy(doc.data)
        data.pop("matrix")
        lines = dict(doc.lines)
        for key, value, source in combo:
            target = _resolve(data, key.split("."), doc, key)
            _set(data, target, value)
            # errors in a substituted value point at the matrix line that supplied it
            for sub in list(lines):
                if sub[: len(target)] == target:
                    del lines[sub]
            for sub_path in _paths(value, target):
                if source in doc.lines:  # a dict given in Python (load_data) has no lines
                    lines[sub_path] = doc.lines[source]
        values = {key: value for key, value, _ in combo}
        case_id = (names[number] if names else None) or ",".join(f"{labels[k]}={_short(v)}" for k, v in values.items())
        cases.append(MatrixCase(case_id, values, SourceDoc(doc.file, data, lines)))
    return cases


MAX_CASES = 256  # cases of one file: every combination is validated (and run) on its own
MAX_EXPANDED_VALUES = 1_000_000  # cases × values per case: each case is a copy of the file


def _check_size(cases: int, doc: SourceDoc) -> None:
    """Refuse a matrix before expanding it: 8 keys × 10 values are 10^8 copies of the file."""
    if cases > MAX_CASES:
        raise ScenarioError([doc.problem(("matrix",), f"the matrix makes {cases:,} cases; at most {MAX_CASES} are allowed (split the file, or list the cases you need)")])
    if cases * max(len(doc.lines), 1) > MAX_EXPANDED_VALUES:
        raise ScenarioError(
            [doc.problem(("matrix",), f"the matrix makes {cases} copies of a file of {len(doc.lines):,} values; at most {MAX_EXPANDED_VALUES:,} values in all")]
        )


CASE_NAME_KEY = "case"  # in a listed case: its id, instead of one made from the values
CASE_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._=+-]{0,63}$")


def _case_names(matrix: list[dict[str, Any]], doc: SourceDoc) -> list[str | None]:
    names: list[str | None] = []
    problems = []
    for i, entry in enumerate(matrix):
        name = entry.get(CASE_NAME_KEY)
        if name is not None and (not isinstance(name, str) or not CASE_NAME_PATTERN.match(name)):
            problems.append(doc.problem(("matrix", i, CASE_NAME_KEY), "a case name is lowercase letters, digits and . _ = + -, at most 64"))
        elif name is not None and name in names:
            problems.append(doc.problem(("matrix", i, CASE_NAME_KEY), f"case name {name!r} is used twice"))
        names.append(name)
    if problems:
        raise ScenarioError(problems)
    return names


def _labels(keys: list[str]) -> dict[str, str]:
    """Shortest unambiguous suffix of each dotted path, for test ids."""
    labels = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            label = ".".join(parts[-n:])
            if sum(1 for other in keys if other.split(".")[-n:] == parts[-n:]) == 1:
                break
        labels[key] = label
    return labels


def _short(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return str(value).replace(" ", "")
    return str(value)


def _resolve(data: Any, parts: list[str], doc: SourceDoc, key: str) -> Path:
    """Turn 'wireguard.client.peers.server.persistent_keepalive' into a path.

    Segments are matched greedily so keys that contain dots (sysctl names) work;
    list indexes are numbers. The last key may be new (a setting not in the file).
    """
    path: list[Any] = []
    node = data
    i = 0
    while i < len(parts):
        if isinstance(node, list):
            if not parts[i].isdigit() or int(parts[i]) >= len(node):
                raise ScenarioError([doc.problem(("matrix", key), f"'{parts[i]}' is not an index of {'.'.join(map(str, path))}")])
            path.append(int(parts[i]))
            node = node[int(parts[i])]
            i += 1
            continue
        if not isinstance(node, dict):
            raise ScenarioError([doc.problem(("matrix", key), f"'{'.'.join(map(str, path))}' is not a mapping or list")])
        for j in range(len(parts), i, -1):
            candidate = ".".join(parts[i:j])
            if candidate in node:
                path.append(candidate)
                node = node[candidate]
                i = j
                break
        else:
            if path and path[-1] == "sysctls":  # free-form keys: the rest is one new sysctl name
                path.append(".".join(parts[i:]))
                break
            if i != len(parts) - 1:
                missing = parts[i]
                raise ScenarioError([doc.problem(("matrix", key), f"no '{missing}' under '{'.'.join(map(str, path)) or 'the top level'}'")])
            path.append(parts[i])
            i += 1
    return tuple(path)


def _set(data: Any, path: Path, value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = copy.deepcopy(value)


def _paths(value: Any, prefix: Path) -> list[Path]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out
