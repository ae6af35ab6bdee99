"""ICMP echo with iputils `ping`, run inside the sending node; RTT and loss recorded."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass

from harness.errors import HarnessError, MissingCapability

_SENT = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")
_REPLY_TIME = re.compile(r"icmp_seq=\d+ .*time=([\d.]+) ms(?! \(DUP!\))")


@dataclass(frozen=True)
class PingOutcome:
    sent: int
    received: int
    rtt_min: float | None = None  # milliseconds
    rtt_avg: float | None = None
    rtt_max: float | None = None
    rtt_mdev: float | None = None
    error: str = ""
    rtts: tuple[float, ...] = ()  # each reply's RTT (ms), in arrival order: the raw samples
    last_sent_at: float | None = None  # wall clock of the last request sent (what came after met none of them)

    @property
    def loss_percent(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 100.0


def ping_argv(address: str, *, family: int, count: int, interval: float, timeout: float, size: int | None) -> list[str]:
    binary = shutil.which("ping")
    if binary is None:
        raise MissingCapability("ping is not installed: apt-get install iputils-ping")
    # no -w: with a deadline iputils keeps sending until `count` replies arrive;
    # no -q: each reply's line carries its RTT, kept as the measurement's samples
    argv = [binary, "-6" if family == 6 else "-4", "-n", "-c", str(count), "-i", f"{interval:g}", "-W", f"{timeout:g}"]
    if size is not None:
        argv += ["-s", str(size)]
    return argv + [address]


class PingUsageError(HarnessError, RuntimeError):
    """ping rejected its arguments: a harness bug, not a network failure."""


def parse_ping(output: str) -> PingOutcome:
    sent = _SENT.search(output)
    if sent is None:
        if "invalid argument" in output or "usage" in output.lower():
            raise PingUsageError(output.strip()[-300:])
        return PingOutcome(0, 0, error=output.strip()[-300:])
    rtt = _RTT.search(output)
    values = [float(x) for x in rtt.groups()] if rtt else [None] * 4
    rtts = tuple(float(m.group(1)) for m in _REPLY_TIME.finditer(output))
    return PingOutcome(int(sent.group(1)), int(sent.group(2)), *values, rtts=rtts)
