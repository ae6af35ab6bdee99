"""A scenario's time budget: StepTimeout in the main thread once it is spent.

SIGALRM raises StepTimeout wherever the main thread happens to be, and some places
swallow it: pyroute2 runs its netlink calls on an asyncio loop, and asyncio logs and
drops any exception but KeyboardInterrupt and SystemExit that a callback raises. One
alarm can therefore vanish, and a scenario would run on past its budget (a 60 s sleep
step after a build that took longer than the budget). So the alarm repeats every
second until the budget's block ends, and the runner also checks the deadline between
steps (`check()`), which no library can swallow."""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

from harness.errors import StepTimeout

REPEAT_SECONDS = 1.0  # how soon a swallowed alarm comes again


class Budget:
    """The deadline of one run; `check()` raises StepTimeout once it has passed."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds if seconds > 0 else float("inf")

    def message(self) -> str:
        return f"scenario exceeded its time budget of {self.seconds:g}s"

    def check(self) -> None:
        if time.monotonic() >= self.deadline:
            raise StepTimeout(self.message())


@contextmanager
def time_budget(seconds: float) -> Iterator[Budget]:
    """Raise StepTimeout in the main thread after `seconds`, and again every second until
    the block ends. Elsewhere than the main thread only `check()` enforces the budget."""
    budget = Budget(seconds)
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield budget
        return

    def expire(signum: int, frame: Any) -> None:
        raise StepTimeout(budget.message())

    previous = signal.signal(signal.SIGALRM, expire)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT_SECONDS)
    armed = time.monotonic()
    try:
        yield budget
    finally:
        _disarm(previous)
        if outer_delay > 0:  # someone else's alarm (pytest-timeout's): give it back, what is left of it
            left = outer_delay - (time.monotonic() - armed)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), outer_interval)


def _disarm(previous: Any) -> None:
    while True:
        try:
            signal.signal(signal.SIGALRM, _ignore)  # a tick already on its way is dropped
            signal.setitimer(signal.ITIMER_REAL, 0)
            break
        except StepTimeout:  # a tick landed between the block's end and here: the budget is over anyway
            continue
    signal.signal(signal.SIGALRM, previous)


def _ignore(signum: int, frame: Any) -> None:
    pass
