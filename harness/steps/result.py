"""What a step produced: outcome, measurements with units, diagnosis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.diagnosis.result import tagged_causes
from harness.pressure import Stall


@dataclass
class Measurement:
    value: float | None
    unit: str
    samples: list[float] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"value": self.value, "unit": self.unit}
        if self.samples is not None:
            data["samples"] = self.samples
        return data


@dataclass
class StepResult:
    index: int
    kind: str
    title: str
    passed: bool  # what the check observed
    expect: str = "pass"
    cause: str | None = None  # with expect: fail, the diagnosis must mention this
    message: str = ""
    measurements: dict[str, Measurement] = field(default_factory=dict)
    diagnosis: str | None = None
    seconds: float = 0.0
    artifacts: list[str] = field(default_factory=list)  # files this step wrote (iperf3 JSON, pcap)

    cause_matched: bool = True  # set by expect_cause(), before the message is amended
    # how stalled the CPU was while this check measured (harness.pressure), for the kinds
    # that judge timing; inconclusive: it failed stalled, twice where it could be retried
    stall: Stall | None = None
    inconclusive: bool = False

    def expect_cause(self, cause: str | None) -> None:
        """Record whether a failure happened for the stated cause: a cause code such as
        'nat-mapping-expired', or words from the one-line cause. Only the cause line
        counts, not the peer details around it (those mention everything)."""
        self.cause = cause
        if cause and not self.passed:
            self.cause_matched = cause.lower() in self.message.lower()

    @property
    def ok(self) -> bool:
        """The step met its expectation (a failing check with `expect: fail` is ok,
        if it failed for the stated cause)."""
        return self.passed == (self.expect == "pass") and self.cause_matched and not self.inconclusive

    @property
    def failed(self) -> bool:
        """It did not meet its expectation, and the machine is not to blame."""
        return not self.ok and not self.inconclusive

    @property
    def load_could_explain(self) -> bool:
        """A failure a stalled CPU may have caused: the check failed and the diagnosis
        named no cause (a bound missed: an RTT, a rate, an outage, a deadline). Load only
        slows things down: it never explains a pass, nor a failure with a named cause."""
        return not self.ok and not self.passed and self.diagnosed is None

    @property
    def diagnosed(self) -> str | None:
        """The cause code the diagnosis named ('nat-mapping-expired'), if any."""
        found = tagged_causes(self.message)
        return found[0] if found else None

    @property
    def outcome(self) -> str:
        if self.inconclusive:
            return "inconclusive"
        if self.ok:
            return "pass" if self.expect == "pass" else "expected-fail"
        if self.expect == "pass":
            return "fail"
        return "unexpected-pass" if self.passed else "wrong-cause"

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "title": self.title,
            "expect": self.expect,
            "expected_cause": self.cause,
            "observed": "pass" if self.passed else "fail",
            "outcome": self.outcome,
            "message": self.message,
            "seconds": round(self.seconds, 6),
            "measurements": {k: m.to_json() for k, m in self.measurements.items()},
            "diagnosis": self.diagnosis,
            "artifacts": list(self.artifacts),
            **({"load": self.stall.to_json()} if self.stall is not None else {}),
        }
