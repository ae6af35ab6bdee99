"""Exceptions the harness raises on purpose (anything else is a bug). All derive from
`HarnessError`, so a caller can tell "the harness refused or failed, and says why" from
a crash; `interrupts.Interrupted` is the exception: it is a KeyboardInterrupt."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file, located by file, line and field."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        return one_line(text)


def one_line(text: str) -> str:
    """Control characters from a file (a newline in a key, a terminal escape) shown
    escaped: one problem is one line, and nothing from a file drives the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class HarnessError(Exception):
    """The root of every error the harness raises on purpose."""


class ScenarioError(HarnessError):
    """A scenario file is invalid; nothing has been built."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class MissingCapability(HarnessError):
    """The host lacks something a scenario needs; the message says how to get it."""


class BuildError(HarnessError):
    """Building the network failed; what was built has been torn down."""


class StepTimeout(HarnessError):
    """A scenario ran past its time budget."""
