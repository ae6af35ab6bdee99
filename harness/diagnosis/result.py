"""A diagnosis: the evidence gathered (one line per fact) and the likely cause."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.diagnosis.causes import CAUSES

CAUSE_TAG = re.compile(r"\[([a-z0-9]+(?:-[a-z0-9]+)+)\]")  # how a cause code appears in a message: [nat-mapping-expired]


def tagged_causes(text: str) -> tuple[str, ...]:
    """The cause codes a message names, in order."""
    return tuple(CAUSE_TAG.findall(text))


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
