"""Network conditions on one direction of a link: netem (delay, jitter, loss, ...)
and a token bucket (rate, queue), applied as the egress qdisc of the sending veth end.
Planning (the tc commands) is pure; applying reads the result back, because tc and
its callers are known to fail silently."""

from __future__ import annotations

from harness.scenario.model import Impairment


def apply(namespace: str, ifname: str, conditions: Impairment | None, mtu: int = 1500) -> None:
    """Replace the egress conditions of `ifname` inside `namespace` (None: clear them)."""
    raise NotImplementedError  # filled in by the impairment work (issue 4)
