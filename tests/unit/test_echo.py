"""The ping step's prober (harness/net/echo.py) against a scripted socket: replies are
waited for as long as the step's timeout says, counted once, and timed by the kernel's
receive stamp."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from harness.net import echo


class ScriptedIcmp:
    """A raw ICMP socket whose replies arrive when `delays[seq]` says (None: never),
    through a socketpair so that select() works. `extra` lists packets to deliver
    first, before any reply: strangers' replies, requests, junk."""

    def __init__(self, delays: dict[int, float | None], *, source: str = "100.64.0.2", duplicate: bool = False,
                 extra: list[bytes] = (), fail_sends: bool = False):
        self.delays = delays
        self.source = source
        self.duplicate = duplicate
        self.fail_sends = fail_sends
        self.options: list[tuple] = []
        self.bound: tuple | None = None
        self.closed = False
        self._ours, self._theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._timers: list[threading.Timer] = []
        self.requests: list[bytes] = []
        for packet in extra:
            self._theirs.send(bytes([0x45]) + bytes(19) + packet)

    def fileno(self) -> int:
        return self._ours.fileno()

    def setsockopt(self, *args) -> None:
        self.options.append(args)

    def bind(self, address: tuple) -> None:
        self.bound = address

    def sendto(self, packet: bytes, target: tuple) -> int:
        if self.fail_sends:
            raise OSError(101, "Network is unreachable")
        self.requests.append(packet)
        seq = struct.unpack("!H", packet[6:8])[0]
        delay = self.delays.get(seq)
        if delay is not None:
            reply = bytes([0x45]) + bytes(19) + bytes([0]) + packet[1:]
            for _ in range(2 if self.duplicate else 1):
                timer = threading.Timer(delay, self._theirs.send, (reply,))
                timer.start()
                self._timers.append(timer)
        return len(packet)

    def recvmsg(self, size: int, ancillary: int = 0):
        return self._ours.recv(size), [], 0, (self.source, 0)

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self.closed = True


class Node:
    def __init__(self, sock: ScriptedIcmp):
        self.sock = sock

    def socket(self, family: int, kind: int, proto: int = 0) -> ScriptedIcmp:
        assert kind == socket.SOCK_RAW
        return self.sock


def test_a_late_last_reply_counts_while_the_timeout_lasts():
    # iputils would give up 2 × 1 ms after its last probe and call the third lost
    sock = ScriptedIcmp({0: 0.001, 1: 0.001, 2: 0.3})
    started = time.monotonic()
    outcome = echo.ping(Node(sock), "100.64.0.2", count=3, interval=0.05, timeout=2.0)
    elapsed = time.monotonic() - started
    assert (outcome.sent, outcome.received) == (3, 3)
    assert outcome.rtt_max == pytest.approx(300, abs=150)
    assert elapsed < 1.0  # done once the last reply is in, not at the timeout
    assert sock.closed


def test_a_lost_reply_is_waited_for_until_the_timeout_then_counted_lost():
    sock = ScriptedIcmp({0: 0.001, 1: 0.001, 2: None})
    started = time.monotonic()
    outcome = echo.ping(Node(sock), "100.64.0.2", count=3, interval=0.05, timeout=0.4)
    elapsed = time.monotonic() - started
    assert (outcome.sent, outcome.received) == (3, 2)
    assert outcome.loss_percent == pytest.approx(100 / 3)
    assert 0.1 + 0.4 <= elapsed < 2.0


def test_probes_are_paced_by_the_interval():
    sock = ScriptedIcmp({i: 0.001 for i in range(5)})
    started = time.monotonic()
    outcome = echo.ping(Node(sock), "100.64.0.2", count=5, interval=0.1, timeout=1.0)
    assert outcome.received == 5
    assert time.monotonic() - started >= 0.4
    assert [struct.unpack("!H", p[6:8])[0] for p in sock.requests] == [0, 1, 2, 3, 4]


def test_duplicates_and_strangers_do_not_count():
    stranger = echo.echo_request(0x1234, 0, 4)  # another prober's request, not a reply
    junk = b"\x00\x00"
    sock = ScriptedIcmp({0: 0.001, 1: None}, duplicate=True, extra=[stranger, junk])
    outcome = echo.ping(Node(sock), "100.64.0.2", count=2, interval=0.05, timeout=0.3)
    assert (outcome.sent, outcome.received) == (2, 1)


def test_a_reply_from_another_address_does_not_count():
    sock = ScriptedIcmp({0: 0.001}, source="100.64.0.9")
    outcome = echo.ping(Node(sock), "100.64.0.2", count=1, interval=0.05, timeout=0.2)
    assert outcome.received == 0


def test_every_send_failing_is_an_error_that_says_why():
    sock = ScriptedIcmp({}, fail_sends=True)
    outcome = echo.ping(Node(sock), "100.64.0.2", count=2, interval=0.01, timeout=0.1)
    assert outcome.received == 0 and "Network is unreachable" in outcome.error


def test_size_source_and_timestamps_reach_the_socket():
    sock = ScriptedIcmp({0: 0.001})
    echo.ping(Node(sock), "100.64.0.2", count=1, interval=0.05, timeout=0.2, size=1200, source="100.64.0.1")
    assert sock.bound == ("100.64.0.1", 0)
    assert len(sock.requests[0]) == 8 + 1200  # ICMP header + `size` payload bytes, as ping -s
    assert (socket.SOL_SOCKET, echo.SO_TIMESTAMPNS, 1) in sock.options


def test_the_kernels_receive_stamp_times_the_reply():
    sent = 1000.0
    stamp = struct.pack("@qq", 1000, 250_000_000)  # 250 ms later
    assert echo._received_at([(socket.SOL_SOCKET, echo.SO_TIMESTAMPNS, stamp)]) - sent == pytest.approx(0.25)
    assert echo._received_at([]) is None


def test_summary_matches_iputils_statistics():
    # iputils: min/avg/max and mdev = sqrt(mean(x²) − mean²)
    outcome = echo.summarize(4, [1.0, 2.0, 3.0])
    assert (outcome.sent, outcome.received) == (4, 3)
    assert (outcome.rtt_min, outcome.rtt_avg, outcome.rtt_max) == (1.0, 2.0, 3.0)
    assert outcome.rtt_mdev == pytest.approx(0.816, abs=0.001)
    assert outcome.rtts == (1.0, 2.0, 3.0)
    assert echo.summarize(3, []).rtt_avg is None


@pytest.mark.parametrize("family", [4, 6])
def test_a_request_round_trips_through_the_reply_parser(family):
    request = echo.echo_request(0xBEEF, 7, family)
    reply = bytes([0 if family == 4 else 129]) + request[1:]
    if family == 4:
        reply = bytes([0x45]) + bytes(19) + reply
        assert echo.checksum(request) == 0  # a valid ICMP checksum sums to zero
    assert echo.parse_reply(reply, family) == (0xBEEF, 7)
    assert echo.parse_reply(request if family == 6 else bytes([0x45]) + bytes(19) + request, family) is None
