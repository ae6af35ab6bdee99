"""Fidelity of link conditions: does `delay: D` give a tunnel RTT of 2·D, does
`loss: p` lose p of the probes, does `rate: R` carry R? Measured through a real
WireGuard tunnel between two namespaces.

Needs sch_netem, which this project's host lacks: run it in a VM,

    pytest tests/vm/test_fidelity.py --vm-kernel 6.1

Under software emulation (TCG) everything is 10-50x slower than on metal, so the
bounds below allow for the VM where they must and say how much and why.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import time

import pytest

from harness.net import impair
from harness.plan.types import Conditions, GilbertElliottLoss
from harness.steps.checks import check
from harness.net.ping import parse_ping

needs_netem = pytest.mark.requires("root", "wireguard", "netem")
# a measurement: under pytest -n it runs after the rest, with the machine to itself
measures = pytest.mark.alone

WG_MTU = 1420  # the harness's default WireGuard MTU (inner IPv4 packet)
IPERF_PORT = 5201


def two_peers(name: str, **link: object) -> dict:
    return {
        "name": name,
        "nodes": {"alice": {}, "bob": {}},
        "links": [{"ends": ["alice", "bob"], **link}],
        "wireguard": {"alice": {"peers": {"bob": {"endpoint": "bob"}}}, "bob": {}},
    }


def handshake(net, within: str) -> None:
    result = check(net, {"handshake": {"between": ["alice", "bob"], "within": within}})
    assert result.ok, result.message


def binomial_interval(n: int, p: float, confidence: float = 0.99) -> tuple[int, int]:
    """The central `confidence` interval [lo, hi] of Binomial(n, p), exact: at most
    (1 - confidence) / 2 of the probability lies below lo, and at most that above hi."""
    tail = (1 - confidence) / 2

    def pmf(k: int) -> float:
        log = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        return math.exp(log + k * math.log(p) + (n - k) * math.log1p(-p))

    cdf, lo, hi = 0.0, None, n
    for k in range(n + 1):
        cdf += pmf(k)
        if lo is None and cdf > tail:
            lo = k
        if cdf >= 1 - tail:
            hi = k
            break
    return lo, hi


def test_binomial_interval_matches_the_normal_approximation():
    # pure arithmetic, but it decides the loss test: n=1000, p=10% → 100 ± 2.576·9.49
    lo, hi = binomial_interval(1000, 0.1)
    assert 74 <= lo <= 78 and 123 <= hi <= 127


@needs_netem
def test_every_option_is_taken_by_the_kernel_and_read_back(wgh_network):
    """Each shape of tc_commands against the real netem and tbf: `apply` raises if tc
    refuses or the read-back differs from the plan."""
    net = wgh_network({"name": "options", "nodes": {"a": {}, "b": {}}, "links": [{"ends": ["a", "b"]}]})
    node = net.node("a")
    everything = Conditions(
        delay=0.02, jitter=0.005, distribution="normal", delay_correlation=25, loss=1, loss_correlation=25,
        reorder=5, duplicate=1, corrupt=0.1, queue=50,
    )
    cases = [
        (everything, ["netem"]),
        (Conditions(delay=0.01, jitter=0.002, distribution="paretonormal"), ["netem"]),
        (Conditions(gilbert_elliott=GilbertElliottLoss(p=1, r=10, bad_loss=80, good_loss=0.5)), ["netem"]),
        (Conditions(delay=0.04, loss=2, rate=20e6), ["netem", "tbf"]),
        (Conditions(delay=0.1, rate=1e9, queue=100), ["netem", "tbf"]),  # netem limit above its default
        (Conditions(rate=20e6, queue=30), ["tbf"]),
        (Conditions(queue=20), ["pfifo"]),
        (None, ["noqueue"]),
    ]
    for conditions, kinds in cases:
        impair.apply(node, "eth0", conditions, 1500)  # replaces whatever the case before left
        qdiscs = impair.read_back(node, "eth0")
        assert [q["kind"] for q in qdiscs] == kinds, qdiscs
    impair.apply(node, "eth0", everything, 1500)
    (netem,) = impair.read_back(node, "eth0")
    options = netem["options"]
    assert options["limit"] == 50
    assert options["delay"] == {"delay": 0.02, "jitter": 0.005, "correlation": 0.25}
    assert options["loss-random"] == {"loss": 0.01, "correlation": 0.25}
    assert options["reorder"]["reorder"] == 0.05 and options["duplicate"]["duplicate"] == 0.01
    assert options["corrupt"]["corrupt"] == pytest.approx(0.001)
    impair.apply(node, "eth0", Conditions(gilbert_elliott=GilbertElliottLoss(p=1, r=10, bad_loss=80, good_loss=0.5)), 1500)
    (netem,) = impair.read_back(node, "eth0")
    assert netem["options"]["loss-gemodel"] == pytest.approx({"p": 0.01, "r": 0.1, "1-h": 0.8, "1-k": 0.005})


@needs_netem
@measures
def test_delay_is_one_way_so_the_rtt_is_twice_it(wgh_network):
    delay_ms = 40.0
    net = wgh_network(two_peers("fidelity-delay", delay=f"{delay_ms:g}ms"))
    handshake(net, "5s")
    bob = str(net.plan.tunnel_address("bob", 4))
    out = net.run("alice", ["ping", "-4", "-n", "-c", "40", "-i", "0.025", "-W", "2", bob], timeout=60).stdout
    rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]
    assert len(rtts) == 40, out
    fastest, median, expected = min(rtts), statistics.median(rtts), 2 * delay_ms
    print(f"delay {delay_ms:g} ms each way: RTT min {fastest:.2f} median {median:.2f} max {max(rtts):.2f} ms (2·D = {expected:g} ms)")
    # netem's delay is a floor: no probe comes back sooner than both ways' delay (had
    # it been applied on one end only, RTTs would be ~40 ms)
    assert fastest >= expected
    # judged by the fastest probe: whatever a probe takes beyond 2·D is the VM's
    # doing, not netem's. Measured in the TCG VM: the undelayed tunnel RTT is 1.1-1.2 ms at best,
    # and each netem release is a timer expiry TCG serves late, so 40 ms each way gave
    # a min of 82.4-83.0 ms over seven runs, while medians went from 83 to 88 ms with
    # what else the host was running. 5% of 2·D plus 3 ms covers that minimum.
    assert fastest <= expected * 1.05 + 3.0


@needs_netem
@measures
def test_loss_on_one_direction_loses_that_share_of_round_trips(wgh_network):
    loss, probes = 0.10, 1000
    # loss only towards bob: requests may be lost, replies never
    net = wgh_network(two_peers("fidelity-loss", towards={"bob": {"loss": f"{loss * 100:g}%"}}))
    # an initiation is lost with p = 10% and retried after REKEY_TIMEOUT (5 s):
    # 20 s covers three retries (all four lost: 1e-4)
    handshake(net, "20s")
    bob = str(net.plan.tunnel_address("bob", 4))
    argv = ["ping", "-4", "-n", "-q", "-c", str(probes), "-i", "0.01", "-W", "2", bob]
    # a round trip survives if the request does (1 - p) and the reply does (1 - 0)
    round_trip = 1 - (1 - loss) * (1 - 0.0)
    lo, hi = binomial_interval(probes, round_trip)
    # a correct link falls outside a 99% interval once in a hundred runs (seen here:
    # 74 of 1000); a second, independent round makes that 1 in 10,000, while a wrong
    # loss (e.g. applied both ways: 19%) still fails both rounds
    for round_ in (1, 2):
        outcome = parse_ping(net.run("alice", argv, timeout=120).stdout)
        assert outcome.sent == probes, outcome
        lost = outcome.sent - outcome.received
        print(f"loss {loss:.0%} towards bob, round {round_}: {lost}/{probes} probes lost, 99% interval [{lo}, {hi}]")
        if lo <= lost <= hi:
            break
    assert lo <= lost <= hi


def _wait_listening(net, node: str, port: int, timeout: float = 20.0) -> None:
    """Wait for a TCP listener without connecting to it (iperf3 -1 would count a
    probe connection as its one test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if net.run(node, ["ss", "-Hltn", f"sport = :{port}"]).stdout.strip():
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on :{port} in {node} after {timeout:g}s")


@needs_netem
@measures
def _iperf3_received(net, bob: str) -> float:
    """One 3-second iperf3 run alice → bob through the tunnel: bits per second received."""
    server = net.popen("bob", ["iperf3", "-s", "-1", "-J", "-p", str(IPERF_PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(net, "bob", IPERF_PORT)
        # -O 1: the first second (slow start) is left out of the result
        client = net.run("alice", ["iperf3", "-c", bob, "-p", str(IPERF_PORT), "-t", "3", "-O", "1", "-J"], timeout=60)
        assert client.returncode == 0, client.stdout[-500:] + client.stderr[-500:]
        received = json.loads(client.stdout)["end"]["sum_received"]["bits_per_second"]
        server.wait(timeout=10)  # -1: it exits after its one test
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
    assert server.returncode is not None
    return received


def test_rate_carries_that_many_bits_through_the_tunnel(wgh_network):
    from harness import pressure

    rate = 20e6  # well within what the TCG VM reaches: 90 Mbit/s through the tunnel unthrottled
    net = wgh_network(two_peers("fidelity-rate", rate=f"{rate / 1e6:g}mbit"))
    handshake(net, "5s")
    bob = str(net.plan.tunnel_address("bob", 4))
    # tbf on the veth limits whole frames. A full TCP segment in the tunnel is a
    # 1420-byte inner IPv4 packet carrying 1420 - 20 (IP) - 32 (TCP with timestamps)
    # = 1368 bytes of payload; on the wire it is 1420 + 32 (WireGuard header and
    # tag) + 8 (UDP) + 20 (IPv4) + 14 (Ethernet) = 1494 bytes: goodput is 91.6% of
    # the rate. The issue asks for "within 10%": of that goodput.
    payload = WG_MTU - 20 - 32
    frame = WG_MTU + 32 + 8 + 20 + 14
    expected = rate * payload / frame
    # as the harness judges a rate on a busy machine: a shortfall while the CPU was
    # stalled (under TCG, the VM starved by the host) is measured again once, and if
    # the machine is still overloaded the verdict is inconclusive, not a failure
    for attempt in (1, 2):
        before = pressure.read()
        received = _iperf3_received(net, bob)
        stall = pressure.between(before, pressure.read())
        print(f"rate {rate / 1e6:g} Mbit/s: iperf3 received {received / 1e6:.2f} Mbit/s, expected goodput {expected / 1e6:.2f} Mbit/s "
              f"({received / expected - 1:+.1%}); {stall.describe()}")
        if received / expected - 1 >= -0.10 or not stall.overloaded():
            break
        if attempt == 2:
            pytest.skip(f"inconclusive (machine overloaded): {received / 1e6:.2f} of {expected / 1e6:.2f} Mbit/s while {stall.describe()}")
    assert abs(received / expected - 1) <= 0.10
