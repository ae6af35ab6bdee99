"""`wgh shell`'s choices, checked before anything is built (no root). The shell itself
is tested through a pseudo-terminal in tests/integration/test_shell.py."""

from __future__ import annotations

import textwrap

from harness.cli import build_parser, cmd_shell

MATRIX = textwrap.dedent(
    """
    name: m
    nodes: {a: {}, b: {}}
    links: [{ends: [a, b]}]
    steps: [{sleep: 1s}, {sleep: 1s}]
    matrix:
      - {case: one}
      - {case: two}
    """
)


def _shell(tmp_path, *args: str) -> int:
    path = tmp_path / "m.yaml"
    path.write_text(MATRIX)
    return cmd_shell(build_parser().parse_args(["shell", str(path), *args]))


def test_a_file_with_several_cases_asks_which(tmp_path, capsys):
    assert _shell(tmp_path) == 2
    assert "m[one], m[two]; choose one with --case" in capsys.readouterr().err
    assert _shell(tmp_path, "--case", "three") == 2
    assert "has no such cases" in capsys.readouterr().err


def test_until_beyond_the_steps_and_a_wrong_engine_are_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("harness.run.missing_for", lambda *a, **k: [])
    assert _shell(tmp_path, "--case", "one", "--until", "3") == 2
    assert "--until 3: m[one] has 2 steps" in capsys.readouterr().err
    monkeypatch.setenv("WGH_ENGINE", "lxc")
    assert _shell(tmp_path, "--case", "two") == 2
    assert "WGH_ENGINE asks for engine 'lxc'" in capsys.readouterr().err
