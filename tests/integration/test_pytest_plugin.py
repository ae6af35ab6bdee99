"""The pytest plugin running a scenario for real (an inner session, pytester): it
writes results.json and says where. The plugin's other behaviour, which needs no
network, is tested in tests/unit/test_pytest_plugin.py."""

from __future__ import annotations

import json
import textwrap

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.requires("root")

SCENARIO = textwrap.dedent(
    """
    name: tiny
    nodes: {a: {}, b: {}}
    links: [{name: ab, ends: [a, b]}]
    steps: [{ping: {from: a, to: b, via: underlay}}]
    """
)


def test_a_session_that_runs_a_scenario_writes_results_json(pytester: pytest.Pytester):
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "tiny.yaml").write_text(SCENARIO)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--results-dir", "out", "-q")
    result.assert_outcomes(passed=1)
    (path,) = (pytester.path / "out").glob("*/results.json")
    result.stdout.fnmatch_lines([f"wgharness results: {path}"])
    data = json.loads(path.read_text())
    assert data["schema_version"] == 2
    (entry,) = data["scenarios"]
    assert (entry["key"], entry["status"]) == ("tiny", "passed")
    assert [step["outcome"] for step in entry["steps"]] == ["pass"]
