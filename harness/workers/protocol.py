"""Messages between `wgh run -j` and its workers: one JSON object per line.

Parent → worker (stdin): a `Task`, or end of input when there is no more work.
Worker → parent (its protocol pipe): `step` events while a case runs, then `done` with
the case's results.json entry, or `interrupted` (the case was torn down on a signal).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, IO


@dataclass(frozen=True)
class Task:
    number: int  # position in the run, for the parent's bookkeeping
    file: str
    case_id: str | None
    repeat: int
    repeats: int
    backend: str
    userspace: str | None  # the template text (parsed again in the worker)
    engine: str | None
    artifacts_dir: str | None
    hosts: str | None = None  # an inventory file: the case spreads over its hosts

    def to_line(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    @classmethod
    def from_line(cls, line: str) -> "Task":
        return cls(**json.loads(line))


def send(stream: IO[str], event: str, **fields: Any) -> None:
    stream.write(json.dumps({"event": event, **fields}, default=str) + "\n")
    stream.flush()


def receive(line: str) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict) or "event" not in message:
        raise ValueError(f"not a worker message: {line[:200]!r}")
    return message
