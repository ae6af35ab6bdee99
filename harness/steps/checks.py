"""Running steps: one step of a scenario, or one given as a dict in a Python test."""

from __future__ import annotations

import time
from functools import cache

from pydantic import TypeAdapter

from harness.scenario.model import Step, step_args, step_kind
from harness.steps.registry import runner
from harness.steps.result import StepResult


def run_step(network, index: int, step) -> StepResult:
    kind = step_kind(step)
    args = step_args(step)
    started = time.monotonic()
    network.step_started = started
    result = runner(kind)(network, index, args)
    result.seconds = time.monotonic() - started
    result.expect_cause(getattr(args, "cause", None))
    if result.outcome == "wrong-cause":
        result.message += f" (expected the failure to be about: {result.cause!r})"
    return result


def check(network, step: dict, index: int = 0) -> StepResult:
    """Run one step given as a dict, e.g. {"ping": {"from": "a", "to": "b"}}, on a built
    network: the building block for scenarios written as Python tests."""
    return run_step(network, index, _step_adapter().validate_python(step))


@cache
def _step_adapter() -> TypeAdapter:
    # building the validator takes milliseconds: once per process, not per step
    return TypeAdapter(Step)
