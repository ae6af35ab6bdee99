"""Fixtures for scenarios written as Python tests: `wgh_network` builds networks from a
scenario file or dict and tears them all down after the test."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from harness.plugin import session
from harness.plugin.options import engine_factory, userspace_command


@pytest.fixture
def wgh_backend(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("wg_backend")


@pytest.fixture
def wgh_engine(request: pytest.FixtureRequest) -> str | None:
    """The engine `wgh_network` builds with for files that name none (--wg-engine);
    a conftest may parametrise it to run the same tests on every engine."""
    return request.config.getoption("wg_engine")


@pytest.fixture
def wgh_network(request: pytest.FixtureRequest, wgh_backend: str, wgh_engine: str | None) -> Iterator[Callable[..., Any]]:
    """Build networks from a scenario file or dict; all are torn down after the test.

        def test_custom(wgh_network):
            net = wgh_network({"nodes": {...}, "links": [...], "wireguard": {...}})
            assert net.run("a", ["ping", "-c1", str(net.plan.tunnel_address("b"))]).returncode == 0
    """
    from harness.network import Network
    from harness.plan.naming import new_run_id
    from harness.run import missing_for, prepare_network
    from harness.scenario.load import load_data, load_file

    session.handle_signals(request.config)  # done before the first test, unless this one asked by getfixturevalue()
    built: list[Network] = []

    def build(source: str | Path | dict, case: str | None = None) -> Network:
        cases = load_data(source) if isinstance(source, dict) else load_file(source)
        chosen = next((c for c in cases if c.case_id == case), None) if case else cases[0]
        if chosen is None:
            raise LookupError(f"no matrix case {case!r}; cases: {[c.case_id for c in cases]}")
        userspace = userspace_command(request.config)
        missing = missing_for(chosen, wgh_backend, userspace, wgh_engine)
        if missing:
            pytest.skip("; ".join(missing))
        _, network = prepare_network(
            chosen, new_run_id(), backend=wgh_backend, userspace=userspace, engine=wgh_engine,
            engine_factory=engine_factory(request.config),
        )
        built.append(network)
        network.build()
        return network

    yield build
    from harness.interrupts import shielded

    with shielded() as shield:  # every network goes, even if a signal arrives meanwhile
        left = [item for network in reversed(built) for item in network.teardown()]
    if shield.received:
        raise KeyboardInterrupt(f"interrupted during teardown; {'left: ' + ', '.join(left) if left else 'everything was torn down'}")
