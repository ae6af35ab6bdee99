"""Hooks the wgharness pytest plugin offers to a conftest.py (added by harness.pytest_plugin;
not a plugin itself: registering it would make these specs implementations)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.engine.base import Engine


@pytest.hookspec(firstresult=True)
def pytest_wgh_make_engine(name: str, config: pytest.Config) -> "Engine | Any | None":
    """A new, unbuilt engine for one scenario or `wgh_network` network, whose engine
    choice (--wg-engine, WGH_ENGINE, or the file's `engine:`) is `name`. Return None to
    let the registered engine of that name build it. The first non-None answer wins.

    E.g. a conftest that counts what gets built:

        def pytest_wgh_make_engine(name, config):
            return CountingEngine(make_engine(name))
    """
