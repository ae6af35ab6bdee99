"""YAML reading that remembers where every value came from.

Validation errors must name the file and the line, so the loader returns plain
Python data plus a map from each value's path (``("links", 2, "ends")``) to its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import yaml

from harness.errors import Problem, ScenarioError

try:  # the C loader is several times faster; fall back where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Path = tuple[Any, ...]

# Bounds on what one file may expand to. Aliases make a small file stand for a huge (or,
# with a self-reference, infinite) document, and a file is validated before anything is
# built: past these it is rejected at once instead of eating memory.
MAX_FILE_BYTES = 1_000_000
MAX_VALUES = 50_000  # values after alias expansion; the largest library file has ~400


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
    """("links", 2, "ends") → 'links[2].ends'; a key that is not plain text is quoted
    (a newline in a key must not split an error message over two lines)."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isprintable() and part.strip() == part and part:
            out += f".{part}" if out else part
        else:
            out += f"[{str(part)!r}]"
    return out


def decode_text(data: bytes, file: str) -> str:
    """A scenario file's bytes as text: UTF-8 only, no NUL bytes, bounded in size; else
    a Problem naming the line and byte offset (a binary or Latin-1 file is not a traceback)."""
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioError([Problem(file, None, "", f"file is {len(data):,} bytes; a scenario file is at most {MAX_FILE_BYTES:,}")])
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ScenarioError([Problem(file, line, "", f"NUL byte at byte offset {nul}: not a text file")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ScenarioError(
            [Problem(file, line, "", f"not UTF-8: byte 0x{data[exc.start]:02x} at byte offset {exc.start} (save the file as UTF-8)")]
        ) from None


def parse_yaml(text: str, file: str) -> SourceDoc:
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # the reader rejects control characters up front
        raise ScenarioError([Problem(file, _line_at(text, getattr(exc, "position", None)), "", _reader_message(exc))]) from None
    try:
        node = loader.get_single_node()
        doc = SourceDoc(file, None)
        if node is None:  # empty, or only comments
            lines = text.splitlines()
            raise ScenarioError([Problem(file, max(len(lines), 1), "", "the file has no content: a scenario file is a mapping with at least 'nodes:'")])
        doc.data = _build(loader, node, (), doc, _Budget())
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ScenarioError([Problem(file, line, "", f"invalid YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(file, _line_at(text, getattr(exc, "position", None)), "", _reader_message(exc))]) from None
    except RecursionError:  # nesting deeper than the parser's own limit catches
        raise ScenarioError([Problem(file, 1, "", "invalid YAML: nested too deeply")]) from None
    finally:
        loader.dispose()


def _reader_message(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        return f"invalid YAML: character {char!r} at character offset {exc.position}: {exc.reason}"
    return f"invalid YAML: {exc}"


def _line_at(text: str, position: int | None) -> int:
    return text.count("\n", 0, position) + 1 if position is not None else 1


class _Budget:
    """Counts built values, and the collections being built (a cycle is an alias to itself)."""

    def __init__(self) -> None:
        self.values = 0
        self.open: set[int] = set()


def _build(loader: Any, node: yaml.Node, path: Path, doc: SourceDoc, budget: _Budget) -> Any:
    line = node.start_mark.line + 1
    budget.values += 1
    if budget.values > MAX_VALUES:
        raise ScenarioError(
            [Problem(doc.file, line, format_path(path), f"the file expands to more than {MAX_VALUES:,} values (aliases repeat what they point at): too large")]
        )
    if id(node) in budget.open:
        raise ScenarioError([Problem(doc.file, line, format_path(path), "an alias refers to a value that contains it: the value would be infinite")])
    doc.lines[path] = line
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        budget.open.add(id(node))
        try:
            return _build_collection(loader, node, path, doc, budget)
        finally:
            budget.open.discard(id(node))
    return loader.construct_object(node, deep=True)


def _build_collection(loader: Any, node: yaml.Node, path: Path, doc: SourceDoc, budget: _Budget) -> Any:
    if isinstance(node, yaml.MappingNode):
        explicit = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        loader.flatten_mapping(node)  # resolves '<<' merge keys like yaml.safe_load does
        result: dict[Any, Any] = {}
        written: set[Any] = set()  # keys written in this mapping itself, not merged in
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ScenarioError([Problem(doc.file, key_node.start_mark.line + 1, format_path(path), "mapping keys must be plain values")])
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                raise ScenarioError([doc.problem(path, "mapping keys must be plain values")])
            if id(key_node) not in explicit:
                result[key] = _build(loader, value_node, path + (key,), doc, budget)
                continue
            if key in written:
                line = key_node.start_mark.line + 1
                raise ScenarioError([Problem(doc.file, line, format_path(path + (key,)), "duplicate key")])
            written.add(key)
            result[key] = _build(loader, value_node, path + (key,), doc, budget)
        return result
    return [_build(loader, item, path + (i,), doc, budget) for i, item in enumerate(node.value)]


def beside_scenario(relative: str, scenario_file: str, what: str) -> FilePath:
    """The file `relative` names, from the scenario's directory (the working directory
    for a scenario given as text or data); ValueError if it resolves outside that
    directory (links followed) or is no file. `what` names it in the message."""
    base = FilePath(scenario_file).resolve().parent if not scenario_file.startswith("<") else FilePath.cwd().resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise ValueError(f"{relative!r} is outside the scenario's directory {base}: {what} must live next to its scenario")
    if not path.is_file():
        raise ValueError(f"no file {path} (from {relative!r})")
    return path
