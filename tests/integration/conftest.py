import pytest

from .leftovers import left_by_finished_runs


@pytest.fixture(scope="session", autouse=True)
def no_leftovers_after_the_suite():
    """After all integration tests, nothing of any finished run may remain."""
    yield
    left = left_by_finished_runs()
    assert not any(left.values()), f"the harness left objects behind: {left}"
