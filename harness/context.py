"""What one run keeps between its steps: the timeline's events, results later steps
refer to, and the background resources steps (and the build) started: probe streams,
iperf3 runs, captures, DNS servers, re-resolvers. Closed last-first at teardown,
each whatever happened to the others; a step that stops one takes it out first."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

log = logging.getLogger(__name__)


class _Resources(dict):
    """A name → resource table of one kind that tells its context the creation order."""

    def __init__(self, context: "RunContext", kind: str):
        super().__init__()
        self._context = context
        self._kind = kind

    def __setitem__(self, name: str, resource: Any) -> None:
        self._context._order.append((self._kind, name))
        if self._context.step_pressure is not None:  # a background's measurement window opens
            self._context.began_pressure[(self._kind, name)] = self._context.step_pressure
        super().__setitem__(name, resource)


class RunContext:
    def __init__(self) -> None:
        self._order: list[tuple[str, str]] = []
        self._kinds: dict[str, tuple[_Resources, Callable[[Any], None]]] = {}
        self.probes = self._kind("probe", lambda entry: entry[0].close())  # name → (stream, args, started)
        self.traffic = self._kind("iperf3", lambda run: run.close())  # background iperf3 runs
        self.captures = self._kind("capture", lambda capture: capture.close())
        self.services = self._kind("service", lambda service: service.close())  # DNS servers, re-resolvers
        self.throughputs: dict[str, float] = {}  # received bit/s of iperf3 steps, by record (for ratio_to)
        self.events: list[tuple[float, str]] = []
        self.event_step_started: list[float] = []  # per event: when the step that caused it began
        self.step_started: float | None = None  # monotonic start of the step running now
        # CPU pressure when the running step began, and when each background began: the
        # windows a stalled CPU is judged over (harness.pressure)
        self.step_pressure: Any = None
        self.began_pressure: dict[tuple[str, str], Any] = {}

    def _kind(self, kind: str, closer: Callable[[Any], None]) -> _Resources:
        table = _Resources(self, kind)
        self._kinds[kind] = (table, closer)
        return table

    def mark_event(self, what: str) -> None:
        """A timeline event (a link cut, a key rotated): probe streams measure recovery from it."""
        now = time.monotonic()
        self.events.append((now, what))
        self.event_step_started.append(self.step_started if self.step_started is not None else now)

    def close(self) -> list[str]:
        """Close every resource still open, newest first; returns what failed (also logged)."""
        failures = []
        for kind, name in reversed(self._order):
            table, closer = self._kinds[kind]
            if name not in table:
                continue  # a step stopped it already
            resource = dict.pop(table, name)
            try:
                closer(resource)
            except Exception as exc:  # keep going: what a resource started is stopped by PID by the run's registry
                log.warning("closing %s %s: %s", kind, name, exc)
                failures.append(f"{kind} {name}: {exc}")
        self._order.clear()
        return failures


class ContextAccess:
    """The run context's tables as attributes of the network object, where steps have
    always looked for them (`network.probes`, `network.mark_event(…)`)."""

    context: RunContext

    def mark_event(self, what: str) -> None:
        self.context.mark_event(what)

    @property
    def probes(self) -> dict[str, Any]:
        return self.context.probes

    @property
    def traffic(self) -> dict[str, Any]:
        return self.context.traffic

    @property
    def captures(self) -> dict[str, Any]:
        return self.context.captures

    @property
    def services(self) -> dict[str, Any]:
        return self.context.services

    @property
    def throughputs(self) -> dict[str, float]:
        return self.context.throughputs

    @property
    def events(self) -> list[tuple[float, str]]:
        return self.context.events

    @property
    def event_step_started(self) -> list[float]:
        return self.context.event_step_started

    @property
    def step_started(self) -> float | None:
        return self.context.step_started

    @step_started.setter
    def step_started(self, value: float | None) -> None:
        self.context.step_started = value
