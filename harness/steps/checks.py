"""Running steps: one step of a scenario, or one given as a dict in a Python test."""

from __future__ import annotations

import time
from functools import cache

from pydantic import TypeAdapter

from harness import pressure
from harness.scenario.model import Step, step_args, step_kind
from harness.scenario.steps.registry import stall_policy
from harness.steps.registry import runner
from harness.steps.result import StepResult



def run_step(network, index: int, step) -> StepResult:
    kind = step_kind(step)
    args = step_args(step)
    policy = stall_policy(kind)
    if policy == "retry" and getattr(args, "background", None):
        policy = "once"  # it started a background: its measurement is judged when it stops
    began, result, ended = _measure(network, kind, index, args)
    if policy is None:
        return result
    result.stall = stall = pressure.between(_window_start(network, kind, args, began), ended)
    if not (result.load_could_explain and stall.overloaded()):
        return result
    if pressure.strict_load():
        result.message += f" (the machine was overloaded: {stall.describe()}; --strict-load counts it as a failure)"
        return result
    retried = ""
    if policy == "retry":
        first = result
        began, result, ended = _measure(network, kind, index, args)
        result.stall = stall = pressure.between(began, ended)
        note = f"the first attempt failed while the machine was overloaded ({first.stall.describe()}): {first.message}"
        if not (result.load_could_explain and stall.overloaded()):
            result.message += f" (retried once: {note})"
            return result
        retried = f"; retried once, stalled {stall.share:.0%} again"
        stall = first.stall if first.stall.share >= stall.share else stall  # type: ignore[operator]
    result.inconclusive = True
    result.message = f"machine overloaded: {stall.describe()}{retried}; the check said: {result.message}"
    return result


def _measure(network, kind: str, index: int, args) -> tuple[pressure.PressureReading, StepResult, pressure.PressureReading]:
    """Run the step once, with the CPU pressure read before and after it."""
    context = getattr(network, "context", None)
    began = pressure.read()
    started = time.monotonic()
    network.step_started = started
    if context is not None:
        context.step_pressure = began
    result = runner(kind)(network, index, args)
    result.seconds = time.monotonic() - started
    result.expect_cause(getattr(args, "cause", None))
    if result.outcome == "wrong-cause":
        result.message += f" (expected the failure to be about: {result.cause!r})"
    return began, result, pressure.read()


def _window_start(network, kind: str, args, began: pressure.PressureReading) -> pressure.PressureReading:
    """Where the measurement began: a `stop` judges its background's whole run."""
    context = getattr(network, "context", None)
    if kind != "stop" or context is None:
        return began
    for background in ("probe", "capture", "iperf3"):
        name = getattr(args, background, None)
        if name is not None:
            return context.began_pressure.pop((background, name), began)
    return began


def check(network, step: dict, index: int = 0) -> StepResult:
    """Run one step given as a dict, e.g. {"ping": {"from": "a", "to": "b"}}, on a built
    network: the building block for scenarios written as Python tests."""
    return run_step(network, index, _step_adapter().validate_python(step))


@cache
def _step_adapter() -> TypeAdapter:
    # building the validator takes milliseconds: once per process, not per step
    return TypeAdapter(Step)
