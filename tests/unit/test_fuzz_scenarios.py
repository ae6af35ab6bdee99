"""Property-based fuzzing of validation: mutations of every scenario in the library
(keys deleted or renamed, wrong types, extreme values, hostile strings in names, keys
and paths; raw byte flips and truncations) are either accepted or rejected with
`file:line: field: message` — never a traceback, never a hang, never anything built.

WGH_FUZZ_EXAMPLES raises the number of examples (CI keeps it small); with
WGH_FUZZ_STATS=<file> the counts are written there as JSON.
"""

from __future__ import annotations

import copy
import json
import os
import signal
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import ScenarioError
from harness.net import nsexec
from harness.scenario.load import load_file, load_text

REPO = Path(__file__).resolve().parents[2]
LIBRARY = sorted((REPO / "scenarios").glob("*.yaml"))
EXAMPLES = int(os.environ.get("WGH_FUZZ_EXAMPLES", "150"))
HANG_GUARD = 20  # seconds: validation takes milliseconds; far past this it is a hang
STATS: Counter = Counter()

HOSTILE_STRINGS = [
    "", " ", "a\nb", "x\x1b[31m", "../../../../etc/passwd", "/etc/hostname", "$(reboot)", "; rm -rf /", "-rf",
    "--help", "a" * 5000, "ü", "\u202e", "kernel.hostname", "/proc/sys/kernel/hostname", "net.ipv4/../../kernel.x",
    "0.0.0.0/0", "255.255.255.255/32", "224.0.0.1/24", "::/0", "1e30", "99999999999h", "-1s", "nan", ".inf",
    "server.wgh.test:99999", "[::1]:0", "wgh-abc", "eth0", "lo",
]
EXTREME_VALUES: list[Any] = [None, True, False, 0, -1, 1, 2**31, 2**63, 10**30, -(10**30), 1e308, 0.0, -0.5, [], {}, [[]], {"a": {}}]
VALUES = st.sampled_from(EXTREME_VALUES) | st.sampled_from(HOSTILE_STRINGS) | st.text(max_size=30) | st.integers() | st.floats(allow_nan=False)


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out += _paths(value, prefix + (index,))
    return out


def _parent(data: Any, path: tuple) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


@st.composite
def mutated_scenario(draw: st.DrawFn) -> tuple[str, str]:
    source = draw(st.sampled_from(LIBRARY))
    data = yaml.safe_load(source.read_text())
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = _parent(data, path), path[-1]
        action = draw(st.sampled_from(["delete", "rename", "replace", "replace", "wrap", "duplicate"]))
        if action == "delete":
            del parent[last]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(HOSTILE_STRINGS) | st.text(max_size=20))] = parent.pop(last)
        elif action == "wrap":
            parent[last] = draw(st.sampled_from([[parent[last]], {"x": parent[last]}, str(parent[last])]))
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        else:
            parent[last] = draw(VALUES)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    return source.name, text


@contextmanager
def _hang_guard(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise AssertionError(f"validation did not finish within {seconds}s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check(file: str, load) -> None:
    """Accepted, or rejected with every problem located; anything else fails the test."""
    STATS["tried"] += 1
    try:
        with _hang_guard(HANG_GUARD):
            cases = load()
    except ScenarioError as exc:
        STATS["rejected"] += 1
        assert exc.problems
        for problem in exc.problems:
            assert problem.file == file
            assert problem.line is not None and problem.line >= 1, f"no line: {problem}"
            assert "\n" not in str(problem), f"an error spans lines: {problem!s}"
        return
    except Exception:
        STATS["crashes"] += 1
        raise
    STATS["accepted"] += 1
    assert cases


@pytest.fixture(scope="module", autouse=True)
def _nothing_is_built():
    """Validation never creates anything: creating a namespace while fuzzing fails the
    module. (Watched at the one place namespaces are made, not in /run/netns, where
    other runs on the machine come and go.)"""
    created: list[str] = []
    real = nsexec.create_namespace

    def watched(namespace: str) -> int:
        created.append(namespace)
        return real(namespace)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nsexec, "create_namespace", watched)
        yield
    assert created == []
    if os.environ.get("WGH_FUZZ_STATS"):
        Path(os.environ["WGH_FUZZ_STATS"]).write_text(json.dumps(dict(STATS), indent=2))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_scenario())
def test_mutated_library_files_are_accepted_or_located(mutation):
    name, text = mutation
    _check(f"fuzz/{name}", lambda: load_text(text, f"fuzz/{name}"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(LIBRARY),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4),
)
def test_byte_level_damage_is_accepted_or_located(tmp_path_factory, source, cut, flips):
    data = bytearray(source.read_bytes())
    for where, byte in flips:
        data[min(int(where * len(data)), len(data) - 1)] = byte
    data = bytes(data[: max(1, int(cut * len(data)))]) if cut < 0.9 else bytes(data)
    path = tmp_path_factory.mktemp("fuzz") / source.name
    path.write_bytes(data)
    _check(str(path), lambda: load_file(path))


def test_library_is_there():
    assert len(LIBRARY) >= 30
