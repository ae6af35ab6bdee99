"""pytest-xdist's `-n auto` over scenario files: as many workers as `wgh run -j auto`.

xdist's own `auto` is one worker per CPU, right for tests that compute. Scenario cases
mostly wait on WireGuard's timers, so for a run that holds nothing but scenario files
the count comes from harness.workers.capacity (several cases per CPU, bounded by
memory, open files and the namespace limit). A run that may hold Python tests, an
explicit `-n logical`, or PYTEST_XDIST_AUTO_NUM_WORKERS keeps xdist's rule.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

from harness.plugin.collect import is_scenario_file
from harness.plugin.options import collects_scenarios

_capacity_key = pytest.StashKey[str]()  # what -n auto chose and why, for the header


def scenario_files_only(config: pytest.Config) -> list[Path] | None:
    """The scenario files the run's arguments hold, or None when they name anything
    else a test may come from (a Python test file, a directory holding one)."""
    if not collects_scenarios(config):
        return None
    base = config.rootpath if config.args_source == pytest.Config.ArgsSource.TESTPATHS else config.invocation_params.dir
    python_files = config.getini("python_files")
    skipped_dirs = config.getini("norecursedirs")
    found: list[Path] = []
    for arg in config.args:
        path = Path(base, arg.split("::")[0])
        if not path.is_dir():
            if not is_scenario_file(path):
                return None
            found.append(path)
            continue
        for directory, subdirs, names in os.walk(path):
            subdirs[:] = sorted(d for d in subdirs if not any(fnmatch.fnmatch(d, pattern) for pattern in skipped_dirs))
            for name in sorted(names):
                file = Path(directory, name)
                if is_scenario_file(file):
                    found.append(file)
                elif any(fnmatch.fnmatch(name, pattern) for pattern in python_files):
                    return None
    return found or None


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or config.option.numprocesses == "logical":
        return None  # the user's own count, or CPUs asked for by name
    if config.getoption("vm_kernel") and not os.environ.get("WGH_IN_VM"):
        return None  # `-n auto` is passed on as given and counted inside the VM
    files = scenario_files_only(config)
    if files is None:
        return None
    from harness.errors import HarnessError
    from harness.scenario.load import load_file
    from harness.workers.capacity import auto_workers

    nodes: list[int] = []
    for file in files:
        try:
            nodes.extend(len(case.spec.nodes) for case in load_file(file))
        except (HarnessError, OSError):
            continue  # its collection error is reported by the workers
    if not nodes:
        return None
    capacity = auto_workers(nodes)
    config.stash[_capacity_key] = f"-n auto → {capacity.workers} workers (limited by {capacity.limited_by})"
    return capacity.workers


def pytest_report_header(config: pytest.Config) -> str | None:
    chosen = config.stash.get(_capacity_key, None)
    return f"wgharness: {chosen}: scenario cases mostly wait, not compute" if chosen else None

