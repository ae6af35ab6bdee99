"""Which cases run alone under `wgh run -j`: those whose verdict or named measurements
a shared CPU would distort, and no others (each one alone costs the run its length)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario.load import load_file, load_text
from harness.scenario.steps.registry import runs_alone

ROOT = Path(__file__).resolve().parents[2]
PAIR = """
name: x
nodes: {a: {}, b: {}}
links: [{name: ab, ends: [a, b]}]
wireguard: {a: {peers: {b: {endpoint: b}}}, b: {}}
"""


def _alone(steps: str, extra: str = "") -> bool:
    return runs_alone(load_text(PAIR + extra + "steps:\n" + steps, "x.yaml")[0].spec)


@pytest.mark.parametrize(
    "iperf3, alone",
    [
        ("{from: a, to: b, seconds: 1}", False),  # TCP gets through: a function check
        ("{from: a, to: b, seconds: 1, protocol: udp, bitrate: 10mbit}", False),
        ("{from: a, to: b, seconds: 1, min_rate: 5mbit}", True),
        ("{from: a, to: b, seconds: 1, protocol: udp, max_loss: 1%}", True),
        ("{from: a, to: b, seconds: 1, record: tunnel}", True),  # reports and wgh compare read it
    ],
)
def test_an_iperf3_runs_alone_when_its_verdict_or_record_depends_on_the_rate(iperf3, alone):
    assert _alone(f"  - iperf3: {iperf3}\n") is alone


def test_keepalive_timing_and_the_file_key_make_a_case_exclusive():
    capture = "  - capture: {link: ab, name: c}\n  - sleep: 1s\n"
    assert _alone(capture + "  - stop: {capture: c, keepalive: 1s}\n")
    assert not _alone(capture + "  - stop: {capture: c}\n")
    probe = "  - probe: {name: p, from: a, to: b}\n"
    assert _alone(probe + "  - stop: {probe: p, max_outage: 1s}\n")
    assert not _alone(probe + "  - stop: {probe: p, max_loss: 5%}\n")
    assert _alone(probe + "  - stop: {probe: p, max_outage: 9s}\n")
    # load only lengthens outages: a bound at WireGuard's timer scale keeps its slack,
    # and one expected to fail stays failed
    assert not _alone(probe + "  - stop: {probe: p, max_outage: 10s}\n")
    assert not _alone(probe + "  - stop: {probe: p, max_outage: 1s, expect: fail}\n")
    assert _alone(capture + "  - stop: {capture: c, keepalive: 1s, expect: fail}\n")  # stretched or squeezed
    assert _alone("  - sleep: 1s\n", "exclusive: true\n")
    assert not _alone("  - ping: {from: a, to: b}\n")


def test_the_librarys_exclusive_cases_are_the_ones_that_measure_rate_or_timing():
    alone = set()
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        for case in load_file(path):
            if runs_alone(case.spec):
                alone.add(path.stem)
    assert {"throughput", "throughput-mtu", "loss-delay-grid", "wire-check", "nat-keepalive"} <= alone
    # probe streams held to a tight outage bound that should pass: recovery after roaming,
    # a key rotation, re-resolution
    assert {"roaming", "roaming-networks", "interop", "key-rotation", "dns-reresolve"} <= alone
    by_case = {case.id: runs_alone(case.spec) for path in (ROOT / "scenarios").glob("*.yaml") for case in load_file(path)}
    assert by_case["roaming[kernel]"] and not by_case["roaming[wireguard-go]"]  # the latter expects the bound to fail
    # timer-bound: peer-restart's outage is WireGuard's timers (~15 s, bound 25 s);
    # dns-endpoint's bound is expected to fail (the stale endpoint never recovers)
    assert not alone & {"peer-restart", "dns-endpoint"}
    # their iperf3 only shows that TCP passes (netns-parity) or stalls (mtu-blackhole)
    assert not alone & {"mtu-blackhole", "netns-parity", "direct", "nat", "mesh"}
