"""Progress of long runs (`wgh run`, `wgh matrix`) in three modes:

- normal: on a terminal, one live line on stderr (item i/n, elapsed, ETA from the
  mean duration so far, what is happening now); one line per finished item, and the
  full report of each failure. Off a terminal (CI logs) only the finished lines.
- quiet: only failures (their line and report, on stderr) and the final summary line.
- jsonl: JSON Lines on stdout for CI: one object per finished item
  (`"event": "scenario"`), then one summary object (`"event": "summary"`); human
  output (failure reports) stays on stderr.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable, TextIO

MODES = ("normal", "quiet", "jsonl")
FAILED = ("failed", "error")


def format_duration(seconds: float) -> str:
    """0.4 → '0.4s', 75 → '1m15s', 3720 → '1h02m'."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class RunProgress:
    def __init__(
        self,
        total: int,
        mode: str = "normal",
        *,
        err: TextIO | None = None,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        live: bool | None = None,
        width: int = 120,
    ):
        if mode not in MODES:
            raise ValueError(f"progress mode {mode!r} is not one of {MODES}")
        self.total, self.mode, self.clock, self.width = total, mode, clock, width
        self.err = err if err is not None else sys.stderr
        self.out = out if out is not None else sys.stdout
        self.live = (self.err.isatty() if live is None else live) and mode == "normal"
        self.started = clock()
        self.current_started = self.started
        self.durations: list[float] = []
        self._line_shown = False

    @property
    def done(self) -> int:
        return len(self.durations)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def eta(self) -> float | None:
        """Seconds left: the mean duration of the finished items times the items not
        finished, less what the current one has already taken. None before the first
        item finishes (no basis yet)."""
        if not self.durations:
            return None
        mean = sum(self.durations) / len(self.durations)
        remaining = self.total - self.done
        return max(0.0, mean * remaining - (self.clock() - self.current_started))

    def status_line(self, text: str) -> str:
        eta = self.eta()
        head = f"[{min(self.done + 1, self.total)}/{self.total} {format_duration(self.elapsed())}"
        head += f", ETA {format_duration(eta)}]" if eta is not None else "]"
        return f"{head} {text}"[: self.width]

    def update(self, text: str) -> None:
        """What the current item is doing (live line only)."""
        if self.live:
            self.err.write("\r\x1b[K" + self.status_line(text))
            self.err.flush()
            self._line_shown = True

    def _clear(self) -> None:
        if self.live and self._line_shown:
            self.err.write("\r\x1b[K")
            self._line_shown = False

    def message(self, text: str) -> None:
        """A line of its own on stderr (a worker's warning), above the live line."""
        self._clear()
        self.err.write(text + "\n")
        self.err.flush()

    def emit(self, event: dict[str, Any]) -> None:
        """One JSON Lines object (jsonl mode only)."""
        if self.mode == "jsonl":
            self._clear()
            self.out.write(json.dumps(event, default=str) + "\n")
            self.out.flush()

    def finished(
        self, status: str, line: str, *, report: str | None = None, record: dict[str, Any] | None = None, event: str = "scenario"
    ) -> None:
        """One item is done: `line` is its one-line outcome, `report` the long form for
        a failure, `record` what JSON Lines carry (e.g. the scenario's results.json entry)."""
        now = self.clock()
        self.durations.append(now - self.current_started)
        self.current_started = now
        self._clear()
        failed = status in FAILED
        if self.mode == "jsonl":
            data = {"event": event, "number": self.done, "total": self.total, "status": status}
            data.update(record or {})
            data["elapsed"] = round(self.elapsed(), 3)
            self.emit(data)
            if failed and report:
                self.err.write(report + "\n")
        elif self.mode == "normal" or failed:
            self.err.write(line + "\n")
            if failed and report:
                self.err.write(report + "\n")
        self.err.flush()

    def summary(self, counts: dict[str, int], line: str, **extra: Any) -> None:
        """The end of the run. normal mode prints its own table, so nothing here; quiet
        prints `line` on stdout; jsonl a summary object."""
        self._clear()
        if self.mode == "jsonl":
            data = {"event": "summary", "total": self.total, "finished": self.done, "counts": counts}
            data.update(extra)
            data["elapsed"] = round(self.elapsed(), 3)
            self.emit(data)
        elif self.mode == "quiet":
            self.out.write(line + "\n")
        self.out.flush()
