"""A diagnosis: the evidence gathered (one line per fact) and the likely cause."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.diagnosis.causes import CAUSES


@dataclass
class Diagnosis:
    lines: list[str] = field(default_factory=list)
    cause: str = ""
    code: str = ""

    def set(self, code: str, cause: str) -> None:
        """Name the likely cause; `code` is one of CAUSES, which `cause:` in a file matches."""
        if code not in CAUSES:
            raise ValueError(f"unknown cause code {code!r}: add it to harness/diagnosis/causes.py")
        self.code, self.cause = code, cause

    @property
    def summary(self) -> str:
        return f"[{self.code}] {self.cause}" if self.code else self.cause

    def __str__(self) -> str:
        return "\n".join(self.lines + [f"likely cause: {self.summary}"])
