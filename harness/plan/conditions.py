"""Link conditions for the plan (pure): the scenario's `Impairment` settings, as
written on a link or in a `link` step, turned into the plan's frozen `Conditions`
for one direction. The builder and the `link` step both go through `egress`."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

from harness.plan.types import Conditions, GilbertElliottLoss

if TYPE_CHECKING:
    from harness.scenario.conditions import GilbertElliott, Impairment
    from harness.scenario.model import LinkSpec
    from harness.scenario.steps.timeline import LinkArgs


def conditions_of(settings: "Impairment | None") -> Conditions:
    """The conditions `settings` set (a link's or a step's, `towards:` aside)."""
    if settings is None:
        return Conditions()
    values = {f.name: getattr(settings, f.name) for f in fields(Conditions)}
    values["gilbert_elliott"] = _gilbert_elliott(values["gilbert_elliott"])
    return Conditions(**values)


def _gilbert_elliott(model: "GilbertElliott | None") -> GilbertElliottLoss | None:
    if model is None:
        return None
    return GilbertElliottLoss(model.p, model.r, model.bad_loss, model.good_loss)


def egress(settings: "LinkSpec | LinkArgs", towards: str, current: Conditions | None = None) -> Conditions | None:
    """The conditions on traffic going to `towards`: `current` (if any), with the
    settings for both directions on top, then those of `towards:` for this one.
    None when nothing is set: the direction is clean."""
    merged = (current or Conditions()).overridden(conditions_of(settings)).overridden(conditions_of(settings.towards.get(towards)))
    return None if merged.empty else merged
