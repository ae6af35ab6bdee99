"""The plugin's markers: `requires(*what)` skips a test unless the host has all of it;
`wgh_scenario` marks the tests generated from scenario files."""

from __future__ import annotations

import pytest

from harness.plugin.options import userspace_command

REQUIREMENTS = ("root", "wireguard", "kernel_wireguard", "wireguard_go", "userspace", "netem", "vm", "mininet")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "wgh_scenario: a test generated from a scenario file")
    config.addinivalue_line(
        "markers", f"requires(*what): skip unless the host has all of: {', '.join(REQUIREMENTS)}"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    from harness import caps

    needs: set[str] = set()
    for marker in item.iter_markers("requires"):
        unknown = set(marker.args) - set(REQUIREMENTS)
        if unknown:
            raise pytest.UsageError(f"{item.nodeid}: unknown requirement(s) {sorted(unknown)}; known: {REQUIREMENTS}")
        needs.update(marker.args)
    missing = caps.missing_for(needs, item.config.getoption("wg_backend"), userspace_command(item.config)) if needs else []
    if missing:
        pytest.skip("; ".join(missing))
