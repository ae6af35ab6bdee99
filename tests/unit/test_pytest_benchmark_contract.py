"""What harness/results/bench.py needs of pytest-benchmark, pinned: beyond the documented
`benchmark` fixture (pedantic(), name, fullname, group, extra_info) it reaches the
plugin's session and the BenchmarkFixture constructor in one adapter, `_fixture_maker`.
A pytest-benchmark release that changes those fails here, not in a scenario run."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from harness.results import bench, benchstore  # noqa: F401  (bench loaded here, so in-process inner sessions share it)

pytest.importorskip("pytest_benchmark")
pytest_plugins = ["pytester"]

INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_installed_release_is_within_the_bound_pyproject_gives():
    bounds = set(re.findall(r'"pytest-benchmark([^"]*)"', PYPROJECT.read_text()))
    assert len(bounds) == 1, f"every extra bounds pytest-benchmark alike: {bounds}"
    (bound,) = bounds
    assert "<" in bound, "the adapter depends on internals: an upper bound is required"
    assert version("pytest-benchmark") in SpecifierSet(bound)


INNER_TEST = '''
from harness.results import bench

def run(handshake, steps):
    return {
        "status": "passed", "key": "tiny.yaml::tiny", "file_sha256": "ab12", "backends": {"a": "wireguard-go"},
        "timing": {"steps": {"value": steps}},
        "steps": [{"measurements": {
            "time_to_handshake": {"unit": "s", "value": handshake},
            "tunnel.rtt": {"unit": "ms", "samples": [1.0, 2.0, 3.0]},
            "tunnel.loss": {"unit": "%", "value": 0.0},
        }}],
    }

RUNS = [run(0.25, 1.5), run(0.5, 2.0), run(0.75, 2.5), dict(run(9.0, 9.0), status="failed")]

ENVIRONMENT = {"kernel_release": "6.1.0-57-amd64", "backend_requested": "wireguard-go", "machine": "x86_64", "cpus": 2, "cpu": "EPYC"}

def test_case(request):
    added = bench.feed(request.node, RUNS, lambda: ENVIRONMENT)
    with open("added", "w") as out:
        out.write(str(added))
'''


@pytest.fixture(autouse=True)
def _not_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner session is no xdist worker even when this one is (pytest -n): seeing
    PYTEST_XDIST_WORKER, pytest-benchmark would turn itself off in it."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)


def _feed(pytester: pytest.Pytester, *args: str) -> tuple[int, pytest.RunResult]:
    pytester.makepyfile(test_feed=INNER_TEST)
    result = pytester.runpytest(*INNER, *args)
    result.assert_outcomes(passed=1)
    return int((pytester.path / "added").read_text()), result


def test_scenario_runs_become_benchmark_entries(pytester: pytest.Pytester):
    added, result = _feed(pytester, "--benchmark-json=out.json")
    assert added == 2
    stored = json.loads((pytester.path / "out.json").read_text())
    entries = {entry["fullname"]: entry for entry in stored["benchmarks"]}
    assert set(entries) == {"test_feed.py::test_case::time_to_handshake", "test_feed.py::test_case::scenario_steps"}
    handshake = entries["test_feed.py::test_case::time_to_handshake"]
    assert handshake["name"] == "test_case::time_to_handshake" and handshake["group"] == "wgh tiny.yaml::tiny"
    stats = handshake["stats"]
    assert stats["rounds"] == 3 and stats["iterations"] == 1  # the failed run is not a round
    assert (stats["min"], stats["median"], stats["max"]) == pytest.approx((0.25, 0.5, 0.75))
    assert handshake["options"]["timer"] == "wgharness_replay"
    key = {"host_class": "x86_64, 2 CPUs, EPYC", "kernel": "6.1.0-57-amd64", "backend": "wireguard-go", "engine": "netns"}
    assert handshake["extra_info"] == {
        "wgharness": True, "scenario": "tiny.yaml::tiny", "file_sha256": "ab12", "backends": {"a": "wireguard-go"},
        "repeats": 3, "metric": "time_to_handshake", "unit": "s", "values": [0.25, 0.5, 0.75], "history_key": key,
    }
    steps = entries["test_feed.py::test_case::scenario_steps"]
    assert steps["stats"]["median"] == pytest.approx(2.0)
    assert steps["extra_info"]["measurements"] == {
        "tunnel.rtt": {"unit": "ms", "values": [2.0, 2.0, 2.0], "samples": [[1.0, 2.0, 3.0]] * 3},
        "tunnel.loss": {"unit": "%", "values": [0.0, 0.0, 0.0]},
    }
    assert "test_case::time_to_handshake" in result.stdout.str(), "the entries are in its table too"

    # the saved file, read as a results history's run (harness.results.benchstore)
    (run,) = benchstore.runs_of_file(pytester.path / "out.json")
    assert run["key"] == key and run["started"] == stored["datetime"]
    assert run["scenarios"] == {"tiny.yaml::tiny": {"status": {"passed": 3}, "metrics": {
        "time_to_handshake": {"unit": "s", "values": [0.25, 0.5, 0.75], "stalls": []},
        "tunnel.rtt": {"unit": "ms", "values": [2.0, 2.0, 2.0], "stalls": []},
        "tunnel.loss": {"unit": "%", "values": [0.0, 0.0, 0.0], "stalls": []},
    }}}


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="not-asked"),
        pytest.param(("--benchmark-json=out.json", "--benchmark-disable"), id="disabled"),
        pytest.param(("--benchmark-enable", "--benchmark-skip"), id="skipping"),
        pytest.param(("-p", "no:benchmark"), id="not-loaded"),
    ],
)
def test_nothing_is_fed_unless_asked_and_enabled(pytester: pytest.Pytester, args):
    added, _ = _feed(pytester, *args)
    assert added == 0
