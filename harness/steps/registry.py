"""Which function runs each step kind. A step module registers its runners with
`@runs("kind")`; nothing else lists them, so a new step kind is a new module here (its
arguments and reference checks live in the scenario layer, which knows no runners)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable

from harness.steps.result import StepResult

Runner = Callable[[Any, int, Any], StepResult]  # (network, step index, the step's arguments)

_RUNNERS: dict[str, Runner] = {}
_loaded = False


def runs(kind: str) -> Callable[[Runner], Runner]:
    """Register the decorated function as the runner of step `kind`."""

    def register(function: Runner) -> Runner:
        existing = _RUNNERS.get(kind)
        if existing is not None and existing is not function:
            raise ValueError(f"step kind {kind!r} has two runners: {existing.__module__}.{existing.__name__} and {function.__module__}.{function.__name__}")
        _RUNNERS[kind] = function
        return function

    return register


def _load_step_modules() -> None:
    """Import every module of this package once, so each registers its runners."""
    global _loaded
    if _loaded:
        return
    package = importlib.import_module("harness.steps")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"harness.steps.{module.name}")
    _loaded = True


def runner(kind: str) -> Runner:
    _load_step_modules()
    try:
        return _RUNNERS[kind]
    except KeyError:
        raise LookupError(f"no runner registered for step kind {kind!r} (known: {', '.join(sorted(_RUNNERS))})") from None


def registered_kinds() -> frozenset[str]:
    _load_step_modules()
    return frozenset(_RUNNERS)
