"""The pytest plugin's entry point (pytest11 `wgharness`): `pytest scenarios/` collects
every scenario file (one test per file and matrix case), skips cleanly where the host
lacks something, records results, and offers the `wgh_network` fixture for scenarios
written as Python tests. The work is done by the modules of `harness.plugin`, which
this module adds as plugins (so `-p no:wgharness` turns all of them off)."""

from __future__ import annotations

import pytest

# dependencies first: pytest imports them in this order
pytest_plugins = (
    "harness.plugin.options",
    "harness.plugin.markers",
    "harness.plugin.session",
    "harness.plugin.collect",
    "harness.plugin.fixtures",
    "harness.plugin.alone",
    "harness.plugin.autoworkers",
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from harness.plugin import hookspecs

    pluginmanager.add_hookspecs(hookspecs)
