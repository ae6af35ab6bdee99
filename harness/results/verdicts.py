"""A run's verdicts, to compare two ways of running the same cases (serial and side
by side, shards merged, two engines): per case its status, and per step its outcome
and the cause codes its diagnosis named ("[nat-mapping-expired]")."""

from __future__ import annotations

from typing import Any

from harness.diagnosis.result import tagged_causes

Verdict = tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]


def verdicts(document: dict[str, Any], *, with_skips: bool = True) -> dict[str, Verdict]:
    """Case id → verdict, from a results document (results.json, `wgh run --json`).
    `with_skips=False` leaves skipped cases out: the host's capabilities decide them,
    and pytest's results.json does not list them."""
    return {
        case["id"]: (case["status"], tuple((step["outcome"], tagged_causes(step["message"])) for step in case["steps"]))
        for case in document["scenarios"]
        if with_skips or case["status"] != "skipped"
    }


def differences(one: dict[str, Verdict], other: dict[str, Verdict]) -> dict[str, tuple[Verdict | None, Verdict | None]]:
    """The cases whose verdicts differ (or that only one side ran): id → (one's, other's)."""
    return {case: (one.get(case), other.get(case)) for case in sorted(set(one) | set(other)) if one.get(case) != other.get(case)}
