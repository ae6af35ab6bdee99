"""Scenario files as tests: every *.yaml / *.yml under a folder named `scenarios` is a
ScenarioFile, one ScenarioItem per file and matrix case (unless --wg-no-collect or ini
`wgh_collect_scenarios = false`). A bad file is a collection error naming file:line;
a failing case's report is its step list with the diagnosis. With --wg-shard I/N only
shard I's scenario items stay selected (harness.schedule); other tests are not sharded."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest

from harness.errors import HarnessError, ScenarioError
from harness.interrupts import Interrupted
from harness.plugin import session
from harness.plugin.options import collects_scenarios, engine_factory, shard_option, userspace_command

SCENARIO_DIR_NAME = "scenarios"


def is_scenario_file(path: Path) -> bool:
    """A file this plugin collects: *.yaml / *.yml under a folder named `scenarios`."""
    return path.suffix in (".yaml", ".yml") and SCENARIO_DIR_NAME in path.parts


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_scenario_file(file_path) and collects_scenarios(parent.config):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(trylast=True)  # after -k, -m and other plugins: shard what they left
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """--wg-shard I/N: deselect the scenario items of the other shards (pytest reports
    them as deselected); tests that are not scenario items all stay."""
    shard = shard_option(config)
    scenario_items = [item for item in items if isinstance(item, ScenarioItem)]
    if shard is None or not scenario_items:
        return
    from harness import schedule
    from harness.results.load import ResultsError, newest_results

    sources = list(config.getoption("wg_durations"))
    if not sources:
        results_dir = Path(config.getoption("results_dir"))
        newest = newest_results(results_dir if results_dir.is_absolute() else Path(config.invocation_params.dir) / results_dir)
        sources = [str(newest)] if newest is not None else []
    try:
        durations = schedule.recorded_durations(sources)
    except ResultsError as exc:
        raise pytest.UsageError(f"--wg-durations: {exc}") from None
    item_of = {id(item.case): item for item in scenario_items}  # the cases are partitioned, the items kept
    mine = schedule.shard([item.case for item in scenario_items], shard.index, shard.count, durations)
    kept = {item_of[id(case)] for case in mine}
    deselected = [item for item in scenario_items if item not in kept]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not isinstance(item, ScenarioItem) or item in kept]
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        basis = f"balanced by {', '.join(sources)}" if sources else "balanced by estimates (no --wg-durations)"
        reporter.write_line(f"wgharness: shard {shard}: {len(kept)} of {len(scenario_items)} scenario items ({basis})")


class ConfigNote(UserWarning):
    """What an imported config file loses in a test run (a hook not run, a peer left out)."""


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from harness.run import requirements
        from harness.scenario.load import load_file

        cases = load_file(self.path)
        for note in dict.fromkeys(note for case in cases for note in case.notes):
            warnings.warn(ConfigNote(note))  # in pytest's warnings summary
        for case in cases:
            item = ScenarioItem.from_parent(self, name=case.id, case=case)
            item.add_marker("wgh_scenario")
            item.add_marker(pytest.mark.requires(*sorted(requirements(case))))
            yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, ScenarioError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class ScenarioFailed(HarnessError):
    def __init__(self, result: Any):
        self.result = result
        super().__init__(result.summary())


class ScenarioItem(pytest.Item):
    # pytest-benchmark treats items using its fixture as benchmarks: scenario items
    # feed it (harness.results.bench), so --benchmark-only runs them and
    # --benchmark-skip skips them, as it does for benchmark tests
    fixturenames = ("benchmark",)

    def __init__(self, *, case: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        from harness.run import run_case

        results = session.results_file(self.config)
        repeats = self.config.getoption("wg_repeat")
        if repeats < 1:
            raise pytest.UsageError(f"--wg-repeat must be at least 1, not {repeats}")
        runs = []
        for repeat in range(1, repeats + 1):  # stop at the first run that does not pass
            try:
                result = run_case(
                    self.case,
                    backend=self.config.getoption("wg_backend"),
                    userspace=userspace_command(self.config),
                    engine=self.config.getoption("wg_engine"),
                    engine_factory=engine_factory(self.config, self.case.id),
                    artifacts_dir=results.artifacts_dir if results else None,
                    repeat=repeat,
                    repeats=repeats,
                )
            except Interrupted as exc:  # torn down; keep its entry, say what (if anything) is left
                if results is not None:
                    results.add(exc.result.to_json())
                sys.stderr.write(f"\nwgharness: {self.case.id}: {exc.summary()}\n")
                raise
            runs.append(result.to_json())
            if results is not None:
                results.add(runs[-1])
            if result.status != "passed":
                break
        self.user_properties.append(("wgh_status", result.status))
        session.record_case(self, result, runs)
        if result.status == "skipped":
            pytest.skip(result.error or "skipped")
        if result.status == "inconclusive":  # neither a pass nor a failure (--strict-load: a failure)
            pytest.skip(f"inconclusive (machine overloaded): {result.summary()}")
        if result.status != "passed":
            raise ScenarioFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, ScenarioFailed):
            return excinfo.value.result.report()
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario {self.case.id}"
