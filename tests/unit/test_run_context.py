"""The steps' run context: resources close newest first, once, whatever fails."""

from __future__ import annotations

from harness.context import RunContext


class Resource:
    def __init__(self, name: str, log: list[str], fails: bool = False):
        self.name, self.log, self.fails = name, log, fails

    def close(self) -> None:
        self.log.append(self.name)
        if self.fails:
            raise RuntimeError(f"{self.name} would not close")


def test_resources_close_newest_first_across_kinds_and_failures_do_not_stop_the_rest():
    closed: list[str] = []
    context = RunContext()
    context.services["dns-server"] = Resource("dns", closed)  # started at build
    context.probes["stream"] = (Resource("probe", closed), None, 0.0)
    context.captures["wire"] = Resource("capture", closed, fails=True)
    context.traffic["bulk"] = Resource("iperf3", closed)
    context.services["reresolve-a"] = Resource("reresolver", closed)
    failures = context.close()
    assert closed == ["reresolver", "iperf3", "capture", "probe", "dns"]
    assert failures == ["capture wire: capture would not close"]
    assert not context.services and not context.probes


def test_a_resource_a_step_stopped_is_not_closed_again():
    closed: list[str] = []
    context = RunContext()
    context.probes["stream"] = (Resource("probe", closed), None, 0.0)
    stream, _, _ = context.probes.pop("stream")  # what `stop: {probe: stream}` does
    stream.close()
    context.close()
    assert closed == ["probe"]


def test_events_remember_when_the_step_that_caused_them_began():
    context = RunContext()
    context.step_started = 100.0
    context.mark_event("link cut")
    assert context.events[0][1] == "link cut" and context.event_step_started == [100.0]
