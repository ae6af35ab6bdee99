import pytest

from harness.engines import ENGINES

from .leftovers import left_by_finished_runs


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that builds networks runs on every engine (or the one --wg-engine
    names), with the backend --wg-backend gives: a new engine only adds a parameter."""
    if "wgh_engine" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("wg_engine")
        metafunc.parametrize("wgh_engine", [chosen] if chosen else list(ENGINES))


@pytest.fixture(scope="session", autouse=True)
def no_leftovers_after_the_suite():
    """After all integration tests, nothing of any finished run may remain."""
    yield
    left = left_by_finished_runs(stale_after=60)
    assert not any(left.values()), f"the harness left objects behind: {left}"
