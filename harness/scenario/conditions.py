"""Network conditions on a link, one direction or both (netem, tbf): the part of the
model a link in the file and a `link:` step share."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.scenario.fields import Duration, Percent, Rate, Strict

Distribution = Literal["uniform", "normal", "pareto", "paretonormal"]


class GilbertElliott(Strict):
    """Bursty loss: a good and a bad state (netem 'loss gemodel p r 1-h 1-k')."""

    p: Percent = Field(description="Chance per packet of going from the good to the bad state.")
    r: Percent = Field(description="Chance per packet of going from the bad back to the good state.")
    bad_loss: Percent = Field(100.0, description="Loss in the bad state (1-h).")
    good_loss: Percent = Field(0.0, description="Loss in the good state (1-k).")


class Impairment(Strict):
    """Network conditions for one direction of a link (netem, tbf). Delay is one-way."""

    delay: Duration | None = Field(None, description="One-way delay added in this direction.")
    jitter: Duration | None = Field(None, description="Random variation of the delay.")
    distribution: Distribution | None = Field(None, description="Shape of the jitter (netem's tables).")
    delay_correlation: Percent | None = None
    loss: Percent | None = Field(None, description="Random loss.")
    loss_correlation: Percent | None = None
    gilbert_elliott: GilbertElliott | None = Field(None, description="Bursty loss instead of `loss`.")
    reorder: Percent | None = Field(None, description="Share of packets sent at once, ahead of delayed ones (needs delay).")
    duplicate: Percent | None = None
    corrupt: Percent | None = None
    rate: Rate | None = Field(None, description="Bandwidth limit (token bucket).")
    queue: int | None = Field(None, ge=1, le=1_000_000, description="Queue limit in packets.")

    @property
    def needs_netem(self) -> bool:
        return any(
            getattr(self, name) is not None
            for name in ("delay", "jitter", "loss", "gilbert_elliott", "reorder", "duplicate", "corrupt")
        )

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in Impairment.model_fields)


def uses_netem(conditions: Impairment) -> bool:
    """A link (in the file or changed by a step) needs netem: in both directions or in one
    `towards:` (a rate alone is tbf)."""
    towards = getattr(conditions, "towards", {})
    return conditions.needs_netem or any(c.needs_netem for c in towards.values())


def impairment_problems(conditions: Impairment) -> list[tuple[str, str]]:
    """(field, message) for settings netem cannot combine."""
    found = []
    if conditions.reorder is not None and conditions.delay is None:
        found.append(("reorder", "reordering works by delaying the other packets: it needs `delay`"))
    if conditions.jitter is not None and conditions.delay is None:
        found.append(("jitter", "jitter varies a delay: it needs `delay`"))
    if conditions.distribution is not None and conditions.jitter is None:
        found.append(("distribution", "a distribution shapes the jitter: it needs `jitter`"))
    if conditions.delay_correlation is not None and conditions.jitter is None:
        found.append(("delay_correlation", "correlation links successive jitter values: it needs `jitter`"))
    if conditions.loss_correlation is not None and conditions.loss is None:
        found.append(("loss_correlation", "correlation links successive losses: it needs `loss`"))
    if conditions.loss is not None and conditions.gilbert_elliott is not None:
        found.append(("gilbert_elliott", "use either `loss` or `gilbert_elliott`, not both"))
    if conditions.jitter is not None and conditions.delay is not None and conditions.jitter > conditions.delay and conditions.distribution is None:
        found.append(("jitter", "jitter larger than the delay makes uniform delays go negative (netem clamps them to 0): lower it"))
    return found
