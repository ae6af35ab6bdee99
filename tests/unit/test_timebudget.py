"""The time budget ends a run even when something swallows its first alarm (pyroute2's
asyncio loop drops exceptions its callbacks raise), and leaves no alarm behind."""

from __future__ import annotations

import signal
import time

import pytest

from harness.errors import StepTimeout
from harness.timebudget import time_budget


def test_the_budget_raises_in_the_main_thread():
    with pytest.raises(StepTimeout, match="time budget of 0.2s"):
        with time_budget(0.2):
            time.sleep(30)


def test_a_swallowed_alarm_comes_again():
    swallowed = 0
    with pytest.raises(StepTimeout):
        with time_budget(0.1):
            try:
                time.sleep(30)
            except StepTimeout:  # what asyncio does to an exception raised in a callback
                swallowed += 1
            time.sleep(30)  # the next step: the repeated alarm ends it
    assert swallowed == 1


def test_check_raises_past_the_deadline_without_any_signal():
    with time_budget(0.05) as budget:
        budget.check()
        signal.setitimer(signal.ITIMER_REAL, 0)  # as if every alarm had been swallowed
        time.sleep(0.1)
        with pytest.raises(StepTimeout):
            budget.check()


@pytest.fixture
def no_outer_alarm():
    """pytest-timeout (if the session uses it) keeps its own alarm: set aside for the test."""
    delay, interval = signal.setitimer(signal.ITIMER_REAL, 0)
    yield
    if delay:
        signal.setitimer(signal.ITIMER_REAL, delay, interval)


def test_no_alarm_and_the_old_handler_after_the_block(no_outer_alarm):
    before = signal.getsignal(signal.SIGALRM)
    with time_budget(5):
        pass
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) == before


def test_no_budget_means_no_alarm(no_outer_alarm):
    with time_budget(0) as budget:
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        budget.check()


def test_an_outer_alarm_is_given_back():
    outer = signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, 50)
    try:
        with time_budget(5):
            time.sleep(0.05)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 49 < left < 50
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, outer)
