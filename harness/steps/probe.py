"""A continuous, timestamped ICMP echo stream from inside a node, in the background.

Every probe's send time and reply time are kept, so the stream yields loss, the RTT
distribution, and the longest outage (at the probe interval's resolution, 10 ms by
default): the recovery time after a roam, a restart or a link failure.
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field

from harness.engine.base import Node
from harness.fdwait import readable
from harness.net.echo import echo_request, parse_reply

@dataclass
class ProbeReport:
    sent: int
    received: int
    interval: float
    rtts_ms: list[float] = field(default_factory=list)
    longest_outage: float = 0.0  # seconds between the last reply before and the first after
    outage_start: float | None = None  # monotonic send time of the first lost probe of it

    @property
    def loss_percent(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 100.0

    def percentile(self, q: float) -> float | None:
        if not self.rtts_ms:
            return None
        if len(self.rtts_ms) == 1:
            return self.rtts_ms[0]
        return statistics.quantiles(self.rtts_ms, n=100, method="inclusive")[int(q) - 1] if 1 <= q <= 99 else max(self.rtts_ms)


class ProbeStream:
    def __init__(self, node: Node, address: str, interval: float = 0.01, timeout: float = 1.0):
        self.address = address
        self.family = 6 if ":" in address else 4
        self.interval = interval
        self.timeout = timeout
        self.ident = os.getpid() & 0xFFFF ^ (id(self) & 0xFFFF)
        proto = socket.IPPROTO_ICMPV6 if self.family == 6 else socket.IPPROTO_ICMP
        family = socket.AF_INET6 if self.family == 6 else socket.AF_INET
        self.sock = node.socket(family, socket.SOCK_RAW, proto)
        self.sent: list[float] = []
        self.replies: dict[int, float] = {}
        self._stop = threading.Event()
        self._stop_sending = threading.Event()
        self._sender = threading.Thread(target=self._send_loop, daemon=True, name="probe-send")
        self._receiver = threading.Thread(target=self._receive_loop, daemon=True, name="probe-recv")

    def start(self) -> "ProbeStream":
        self._receiver.start()
        self._sender.start()
        return self

    def _send_loop(self) -> None:
        start = time.monotonic()
        seq = 0
        while not (self._stop.is_set() or self._stop_sending.is_set()):
            due = start + seq * self.interval
            delay = due - time.monotonic()
            if delay > 0 and self._stop_sending.wait(delay):
                break
            packet = echo_request(self.ident, seq & 0xFFFF, self.family)
            self.sent.append(time.monotonic())
            try:
                self.sock.sendto(packet, (self.address, 0))
            except OSError:
                pass  # no route right now: counts as lost
            seq += 1

    def _receive_loop(self) -> None:
        while not self._stop.is_set():
            if not readable(self.sock, 0.05):
                continue
            try:
                packet, source = self.sock.recvfrom(65535)
            except OSError:
                continue
            now = time.monotonic()
            parsed = parse_reply(packet, self.family)
            if parsed is None or parsed[0] != self.ident or source[0] != self.address:
                continue
            seq = parsed[1]
            # sequence numbers wrap at 65536: map back to the newest matching probe
            index = len(self.sent) - 1 - ((len(self.sent) - 1 - seq) % 65536)
            if 0 <= index < len(self.sent) and index not in self.replies:
                self.replies[index] = now

    def first_answer_since(self, at: float) -> float | None:
        """The send time (monotonic) of the first probe sent at or after `at` that was
        answered: the recovery after an event at `at`."""
        answered = [self.sent[i] for i in sorted(self.replies) if self.sent[i] >= at]
        return answered[0] if answered else None

    def close(self) -> None:
        """Stop without a report (teardown of a scenario that did not stop its probe)."""
        self._stop_sending.set()
        self._stop.set()
        for thread in (self._sender, self._receiver):
            if thread.is_alive():
                thread.join()
        self.sock.close()

    def stop(self) -> ProbeReport:
        # stop sending, then wait for the last probe's reply (or its timeout), no longer
        self._stop_sending.set()
        self._sender.join()
        deadline = time.monotonic() + min(self.timeout, 1.0)
        while self.sent and len(self.sent) - 1 not in self.replies and time.monotonic() < deadline:
            time.sleep(0.005)
        self.close()
        sent = self.sent
        answered = sorted(
            i for i, at in self.replies.items() if at - sent[i] <= self.timeout
        )
        report = ProbeReport(len(sent), len(answered), self.interval)
        report.rtts_ms = [(self.replies[i] - sent[i]) * 1000 for i in answered]
        # outage: the longest run of unanswered probes, edge to edge
        previous = -1
        for i in answered + [len(sent)]:
            if i - previous > 1:
                begin = sent[previous] if previous >= 0 else (sent[0] if sent else 0.0)
                end = sent[i] if i < len(sent) else sent[-1] + self.interval
                if end - begin > report.longest_outage:
                    report.longest_outage = end - begin
                    report.outage_start = sent[previous + 1] if previous + 1 < len(sent) else None
            previous = i
        return report


def start_stream(node: Node, address: str, interval: float = 0.01, timeout: float = 1.0) -> ProbeStream:
    """A started stream from `node` (Node.start: made and kept where the node is)."""
    return ProbeStream(node, address, interval, timeout).start()
