"""The pytest plugin running a scenario for real (an inner session, pytester): it
writes results.json and says where. The plugin's other behaviour, which needs no
network, is tested in tests/unit/test_pytest_plugin.py."""

from __future__ import annotations

import json
import textwrap

import pytest

from .placement import host_only

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.requires("root"), host_only]  # the plugin's mechanics, not the kernel's

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


NEGATIVE = textwrap.dedent(
    """
    name: negative
    nodes: {a: {}, b: {}}
    links: [{ends: [a, b]}]
    wireguard: {a: {peers: {b: {}}}, b: {peers: {a: {}}}}
    steps:
      - handshake: {between: [a, b], within: 1s, expect: fail, cause: no-endpoint}
    """
)


@pytest.mark.requires("wireguard")
def test_under_xdist_the_workers_entries_make_one_results_json(pytester: pytest.Pytester):
    """`pytest -n 2 scenarios/`: each worker runs scenarios, the controller writes the one
    results.json (every entry, one run id) and the expected-failure summary."""
    pytest.importorskip("xdist")
    directory = pytester.path / "scenarios"
    directory.mkdir()
    for n in range(3):
        (directory / f"tiny{n}.yaml").write_text(SCENARIO.replace("name: tiny", f"name: tiny{n}"))
    (directory / "negative.yaml").write_text(NEGATIVE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--results-dir", "out", "--wg-backend", "wireguard-go", "-q")
    result.assert_outcomes(passed=4)
    (path,) = (pytester.path / "out").glob("*/results.json")  # one run directory, one document
    data = json.loads(path.read_text())
    assert sorted(entry["key"] for entry in data["scenarios"]) == ["negative", "tiny0", "tiny1", "tiny2"]
    assert data["summary"] == {"passed": 4}
    result.stdout.fnmatch_lines(["*wgharness: expected failures, diagnosed*", "*negative*[[]no-endpoint[]]*", f"wgharness results: {path}"])


SLEEPER = textwrap.dedent(
    """
    name: {name}
    nodes: {{a: {{}}, b: {{}}}}
    links: [{{ends: [a, b]}}]
    exclusive: {exclusive}
    steps: [{{sleep: 1s}}]
    """
)
TIMES = textwrap.dedent(
    """
    import json, time

    def pytest_runtest_logstart(nodeid):
        with open("times.jsonl", "a") as out:
            out.write(json.dumps(["start", nodeid, time.monotonic()]) + "\\n")

    def pytest_runtest_logfinish(nodeid):
        with open("times.jsonl", "a") as out:
            out.write(json.dumps(["finish", nodeid, time.monotonic()]) + "\\n")
    """
)


def test_under_xdist_a_case_that_runs_alone_shares_the_machine_with_nobody(pytester: pytest.Pytester):
    """As under `wgh run -j`: `exclusive: true` cases, and Python tests marked
    `@pytest.mark.alone`, wait until every worker is done with the rest, then run one
    at a time (times seen by the controller)."""
    pytest.importorskip("xdist")
    directory = pytester.path / "scenarios"
    directory.mkdir()
    for n in range(4):
        (directory / f"shared{n}.yaml").write_text(SLEEPER.format(name=f"shared{n}", exclusive="false"))
    for n in range(2):
        (directory / f"alone{n}.yaml").write_text(SLEEPER.format(name=f"alone{n}", exclusive="true"))
    pytester.makepyfile(
        test_measuring=textwrap.dedent(
            """
            import time
            import pytest

            @pytest.mark.alone
            def test_measures_a_rate():
                time.sleep(1)

            def test_shares_the_machine():
                time.sleep(1)
            """
        )
    )
    pytester.makeconftest(TIMES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "3", "--no-results", "-q", timeout=300)
    result.assert_outcomes(passed=8)
    spans: dict[str, list[float]] = {}
    for line in (pytester.path / "times.jsonl").read_text().splitlines():
        what, nodeid, at = json.loads(line)
        spans.setdefault(nodeid.split("::")[-1], [0.0, 0.0])[0 if what == "start" else 1] = at
    assert len(spans) == 8 and all(end > start > 0 for start, end in spans.values()), spans
    alone = ("alone0", "alone1", "test_measures_a_rate")
    for name in alone:
        start, end = spans[name]
        overlapping = [other for other, (s, e) in spans.items() if other != name and s < end and e > start]
        assert not overlapping, f"{name} shared the machine with {overlapping}: {spans}"
    shared_ends = max(e for n, (s, e) in spans.items() if n not in alone)
    assert min(spans[n][0] for n in alone) >= shared_ends, "the alone tests ran after the rest"
    assert sum(1 for n, (s, e) in spans.items() if n.startswith("shared") and s < spans["shared0"][1] and e > spans["shared0"][0]) > 1, (
        "the shared cases ran side by side"
    )


def test_n_auto_over_scenario_files_counts_workers_as_wgh_run_j_auto(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """xdist's `-n auto` is one worker per CPU; scenario cases mostly wait, so over
    scenario files alone it is `wgh run -j auto`'s count. With a Python test in the run,
    xdist's own rule stays."""
    pytest.importorskip("xdist")
    import os
    import re

    from harness.workers.capacity import auto_workers

    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    cpus = os.cpu_count() or 1
    cases = cpus + 1  # more than xdist would start, fewer than 4 per CPU: the cases are the limit
    expected = auto_workers([2] * cases).workers
    assert expected == cases != cpus
    directory = pytester.path / "scenarios"
    directory.mkdir()
    for n in range(cases):
        (directory / f"tiny{n}.yaml").write_text(SCENARIO.replace("name: tiny", f"name: tiny{n}"))

    said: list[str] = []

    def workers(*args: str) -> int:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "auto", "--no-results", *args, timeout=300)
        said.append(result.stdout.str())
        found = re.search(r"created: (\d+)/\1 workers", said[-1])
        assert found, said[-1]
        return int(found.group(1))

    assert workers("scenarios") == expected
    assert f"-n auto → {expected} workers (limited by the number of cases)" in said[-1]
    (pytester.path / "test_computes.py").write_text("def test_adds():\n    assert 1 + 1 == 2\n")
    assert workers("scenarios", "test_computes.py") == cpus
    assert workers() == cpus  # the whole directory holds a Python test too
