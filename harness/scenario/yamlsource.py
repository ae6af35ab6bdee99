"""YAML reading that remembers where every value came from.

Validation errors must name the file and the line, so the loader returns plain
Python data plus a map from each value's path (``("links", 2, "ends")``) to its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from harness.errors import Problem, ScenarioError

try:  # the C loader is several times faster; fall back where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Path = tuple[Any, ...]


@dataclass
class SourceDoc:
    """A parsed YAML document and the line (1-based) of every value in it."""

    file: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int | None:
        """Line of the value at ``path``, or of its nearest existing parent."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def problem(self, path: Path, message: str) -> Problem:
        return Problem(self.file, self.line_of(path), format_path(path), message)


def format_path(path: Path) -> str:
    """("links", 2, "ends") → 'links[2].ends'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_yaml(text: str, file: str) -> SourceDoc:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        doc = SourceDoc(file, None)
        doc.data = _build(loader, node, (), doc) if node is not None else None
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ScenarioError([Problem(file, line, "", f"invalid YAML: {exc.problem or exc}")]) from None
    finally:
        loader.dispose()


def _build(loader: Any, node: yaml.Node, path: Path, doc: SourceDoc) -> Any:
    doc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        explicit = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        loader.flatten_mapping(node)  # resolves '<<' merge keys like yaml.safe_load does
        result: dict[Any, Any] = {}
        written: set[Any] = set()  # keys written in this mapping itself, not merged in
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                raise ScenarioError([doc.problem(path, "mapping keys must be plain values")])
            if id(key_node) not in explicit:
                result[key] = _build(loader, value_node, path + (key,), doc)
                continue
            if key in written:
                line = key_node.start_mark.line + 1
                raise ScenarioError([Problem(doc.file, line, format_path(path + (key,)), "duplicate key")])
            written.add(key)
            result[key] = _build(loader, value_node, path + (key,), doc)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, path + (i,), doc) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
