"""The hosts' own network, measured when a run spreads over several hosts: ICMP echo
from one host's worker to another host's underlay address (the addresses VXLAN runs
between), before any tunnel exists. Half the quickest round trip is taken off the
configured delay of every link between those two hosts (harness.plan.share)."""

from __future__ import annotations

import socket
from harness.net import echo

PROBES = 20
INTERVAL = 0.01  # seconds between probes: 0.2 s per pair of hosts
TIMEOUT = 1.0  # for the last reply


class _ThisMachine:
    """The worker's own network namespace (its host's), as the prober's socket opener."""

    @staticmethod
    def socket(family: int, kind: int, proto: int = 0) -> socket.socket:
        return socket.socket(family, kind, proto)


def echo_round_trips(address: str, count: int = PROBES) -> tuple[int, tuple[float, ...]]:
    """From this machine (a worker's, in its host's own namespace): how many echo
    requests went to `address`, and each reply's round trip in ms."""
    outcome = echo.ping(_ThisMachine(), address, count=count, interval=INTERVAL, timeout=TIMEOUT)
    return outcome.sent, outcome.rtts
