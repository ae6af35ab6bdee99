"""The step kinds of the file format, each declared once (`step(name, args, ...)`): its
argument model, its reference checks and what it needs from the host. The `Step` union,
`STEP_KINDS`, the validation dispatch and the per-step part of a case's requirements are
derived from here.

The runners are the other half of a kind (`harness.steps.registry`); this layer knows none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Callable, Union

from pydantic import BaseModel, Discriminator, Tag, create_model

from harness.scenario.fields import Strict

if TYPE_CHECKING:
    from harness.scenario.steps.checking import StepCheck, StepPlanCheck

Check = Callable[[Any, "StepCheck"], None]  # (the step's arguments, its view of the first round)
PlanCheck = Callable[[Any, "StepPlanCheck"], None]  # (the step's arguments, its view of the plan)
Needs = Callable[[Any], set[str]]  # the step's arguments → capability names (harness/caps.py)


@dataclass(frozen=True)
class StepKind:
    name: str
    wrapper: type[BaseModel]  # `{name: args}`, one member of the Step union
    check: Check | None = None  # first round: what the arguments name exists (before planning)
    check_plan: PlanCheck | None = None  # second round: what needs the plan (addresses, routes)
    needs: Needs | None = None  # host capabilities beyond the scenario's own (e.g. netem)
    # it measures throughput or timing that other cases on the machine would distort:
    # `wgh run -j` runs a case using it alone (always, or when its arguments say so)
    exclusive: bool | Callable[[Any], bool] = False
    # it judges timing or rates, so a stalled CPU can make it fail (harness.pressure):
    # "retry" measures again once; "once" cannot (it judged a background's whole run, or
    # a moment that has passed) and is inconclusive at once
    on_stall: str | None = None

    @property
    def args(self) -> Any:
        """The argument model (or type, e.g. a duration for `sleep`)."""
        return self.wrapper.model_fields[self.name].annotation


STALL_POLICIES = (None, "retry", "once")
_KINDS: dict[str, StepKind] = {}  # in the order of registration: the union's (and the schema's)
_sealed = False  # set once the union is built: a kind registered later would not be in it


def step(
    name: str,
    args: Any,
    *,
    check: Check | None = None,
    check_plan: PlanCheck | None = None,
    needs: Needs | None = None,
    exclusive: bool | Callable[[Any], bool] = False,
    on_stall: str | None = None,
) -> StepKind:
    """Declare the step kind `name`, written `- name: <args>` in a file."""
    if name in _KINDS:
        raise ValueError(f"step kind {name!r} is declared twice")
    if on_stall not in STALL_POLICIES:
        raise ValueError(f"step kind {name!r}: on_stall must be one of {STALL_POLICIES}, not {on_stall!r}")
    if _sealed:
        raise RuntimeError(f"step kind {name!r} is declared after the Step union was built: import it before harness.scenario.model")
    # the wrapper's name is the schema's name for it ("nat_rebind" → NatRebindStep)
    title = "".join(part.capitalize() for part in name.split("_")) + "Step"
    wrapper = create_model(title, __base__=Strict, **{name: (args, ...)})
    entry = StepKind(name, wrapper, check, check_plan, needs, exclusive, on_stall)
    _KINDS[name] = entry
    return entry


def kinds() -> tuple[StepKind, ...]:
    return tuple(_KINDS.values())


def kind(name: str) -> StepKind:
    return _KINDS[name]


def names() -> tuple[str, ...]:
    return tuple(_KINDS)


def step_kind(step: BaseModel) -> str:
    """The kind of a step (a member of the union): its wrapper's one field."""
    return next(iter(type(step).model_fields))


def step_args(step: BaseModel) -> Any:
    return getattr(step, step_kind(step))


def step_needs(step: BaseModel) -> set[str]:
    """What one step needs from the host beyond what its scenario needs (e.g. netem)."""
    needs = _KINDS[step_kind(step)].needs
    return needs(step_args(step)) if needs is not None else set()


def stall_policy(kind_name: str) -> str | None:
    """What a failure of this step kind on a stalled CPU leads to (StepKind.on_stall)."""
    return _KINDS[kind_name].on_stall


def runs_alone(spec: Any) -> bool:
    """A case that must have the machine to itself: its file says `exclusive: true`, or
    one of its steps measures what sharing the CPU would distort (see StepKind.exclusive)."""
    def alone(step: BaseModel) -> bool:
        exclusive = _KINDS[step_kind(step)].exclusive
        return exclusive(step_args(step)) if callable(exclusive) else exclusive

    return bool(getattr(spec, "exclusive", False)) or any(alone(s) for s in spec.steps)


def _discriminate(value: Any) -> str | None:
    """The tag of the union member a value is for: a file's `{kind: args}`, or a step."""
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value))
    if isinstance(value, BaseModel):
        return step_kind(value)
    return None


def step_union() -> Any:
    """The `Step` type: a union of every wrapper, chosen by the step's one key (a tagged
    union, so an error names the kind's own fields, not those of every other kind)."""
    global _sealed
    _sealed = True
    members = tuple(Annotated[k.wrapper, Tag(k.name)] for k in _KINDS.values())
    return Annotated[
        Union[members],  # type: ignore[valid-type]
        Discriminator(
            _discriminate,
            custom_error_type="step_kind",
            custom_error_message=f"a step is a mapping with one key, one of: {', '.join(_KINDS)}",
        ),
    ]
