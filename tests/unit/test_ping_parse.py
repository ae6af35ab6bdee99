"""harness.net.ping: iputils output parsing and the argv we run."""

import pytest

from harness.errors import MissingCapability
from harness.net import ping as ping_mod
from harness.net.ping import PingOutcome, PingUsageError, parse_ping, ping_argv

ALL_RECEIVED = """\
PING 100.64.0.2 (100.64.0.2) 56(84) bytes of data.

--- 100.64.0.2 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 402ms
rtt min/avg/max/mdev = 0.045/0.061/0.082/0.015 ms
"""

PARTIAL = """\
PING 198.18.2.2 (198.18.2.2) 56(84) bytes of data.

--- 198.18.2.2 ping statistics ---
5 packets transmitted, 3 received, 40% packet loss, time 4005ms
rtt min/avg/max/mdev = 40.512/45.250/52.003/4.871 ms
"""

ALL_LOST = """\
PING 198.18.1.1 (198.18.1.1) 56(84) bytes of data.

--- 198.18.1.1 ping statistics ---
3 packets transmitted, 0 received, 100% packet loss, time 2050ms

"""

ERRORS = """\
PING 198.18.1.1 (198.18.1.1) 56(84) bytes of data.
From 198.18.2.1 icmp_seq=1 Destination Net Unreachable

--- 198.18.1.1 ping statistics ---
4 packets transmitted, 0 received, +4 errors, 100% packet loss, time 3004ms
pipe 3
"""

ERRORS_PARTIAL = """\
--- 10.0.0.1 ping statistics ---
10 packets transmitted, 7 received, +3 errors, 30% packet loss, time 9012ms
rtt min/avg/max/mdev = 1.100/1.200/1.300/0.050 ms, pipe 2
"""

DUPLICATES = """\
--- 10.0.0.1 ping statistics ---
2 packets transmitted, 2 received, +2 duplicates, 0% packet loss, time 1001ms
rtt min/avg/max/mdev = 0.100/0.200/0.300/0.040 ms
"""

IPV6 = """\
PING fd00:64::2(fd00:64::2) 56 data bytes

--- fd00:64::2 ping statistics ---
2 packets transmitted, 2 received, 0% packet loss, time 13ms
rtt min/avg/max/mdev = 0.049/0.132/0.216/0.083 ms
"""


def test_all_received():
    outcome = parse_ping(ALL_RECEIVED)
    assert outcome == PingOutcome(3, 3, 0.045, 0.061, 0.082, 0.015)
    assert outcome.loss_percent == 0.0
    assert outcome.error == ""


def test_partial_loss():
    outcome = parse_ping(PARTIAL)
    assert (outcome.sent, outcome.received) == (5, 3)
    assert outcome.loss_percent == pytest.approx(40.0)
    assert outcome.rtt_min == pytest.approx(40.512)
    assert outcome.rtt_avg == pytest.approx(45.25)
    assert outcome.rtt_max == pytest.approx(52.003)
    assert outcome.rtt_mdev == pytest.approx(4.871)


def test_all_lost_has_no_rtt():
    outcome = parse_ping(ALL_LOST)
    assert (outcome.sent, outcome.received) == (3, 0)
    assert outcome.loss_percent == 100.0
    assert outcome.rtt_min is None and outcome.rtt_avg is None
    assert outcome.rtt_max is None and outcome.rtt_mdev is None


def test_errors_variant():
    outcome = parse_ping(ERRORS)
    assert (outcome.sent, outcome.received) == (4, 0)
    assert outcome.loss_percent == 100.0
    assert outcome.rtt_avg is None


def test_errors_variant_with_replies():
    outcome = parse_ping(ERRORS_PARTIAL)
    assert (outcome.sent, outcome.received) == (10, 7)
    assert outcome.loss_percent == pytest.approx(30.0)
    assert outcome.rtt_max == pytest.approx(1.3)


def test_duplicates_variant():
    outcome = parse_ping(DUPLICATES)
    assert (outcome.sent, outcome.received) == (2, 2)
    assert outcome.rtt_avg == pytest.approx(0.2)


def test_ipv6():
    outcome = parse_ping(IPV6)
    assert outcome == PingOutcome(2, 2, 0.049, 0.132, 0.216, 0.083)


def test_busybox_style_packets_received():
    outcome = parse_ping("--- x ping statistics ---\n3 packets transmitted, 2 packets received, 33% packet loss\n")
    assert (outcome.sent, outcome.received) == (3, 2)


def test_no_statistics_is_an_error_outcome():
    outcome = parse_ping("ping: connect: Network is unreachable\n")
    assert (outcome.sent, outcome.received) == (0, 0)
    assert outcome.loss_percent == 100.0
    assert outcome.error == "ping: connect: Network is unreachable"


@pytest.mark.parametrize(
    "output",
    [
        "ping: invalid argument: '0': out of range: 1 <= value <= 9223372036854775807\n",
        "ping: usage error: Destination address required\n",
        "Usage\n  ping [options] <destination>\n",
    ],
)
def test_usage_error_raises(output):
    with pytest.raises(PingUsageError) as exc:
        parse_ping(output)
    assert str(exc.value) == output.strip()


def test_ping_argv_shape(monkeypatch):
    monkeypatch.setattr(ping_mod.shutil, "which", lambda name: "/usr/bin/ping" if name == "ping" else None)
    argv = ping_argv("100.64.0.2", family=4, count=3, interval=0.2, timeout=2.0, size=None)
    assert argv == ["/usr/bin/ping", "-4", "-n", "-c", "3", "-i", "0.2", "-W", "2", "100.64.0.2"]
    assert "-w" not in argv  # a deadline makes iputils keep sending until `count` replies


def test_ping_argv_ipv6_and_size(monkeypatch):
    monkeypatch.setattr(ping_mod.shutil, "which", lambda name: "/bin/ping")
    argv = ping_argv("fd00:64::2", family=6, count=10, interval=0.05, timeout=0.5, size=1200)
    assert argv[0] == "/bin/ping"
    assert argv[1] == "-6"
    assert argv[argv.index("-c") + 1] == "10"
    assert argv[argv.index("-i") + 1] == "0.05"
    assert argv[argv.index("-W") + 1] == "0.5"
    assert argv[argv.index("-s") + 1] == "1200"
    assert argv[-1] == "fd00:64::2"


def test_ping_argv_without_ping(monkeypatch):
    monkeypatch.setattr(ping_mod.shutil, "which", lambda name: None)
    with pytest.raises(MissingCapability, match="iputils-ping"):
        ping_argv("100.64.0.2", family=4, count=1, interval=1, timeout=1, size=None)


PER_REPLY = """\
PING 100.64.0.2 (100.64.0.2) 56(84) bytes of data.
64 bytes from 100.64.0.2: icmp_seq=1 ttl=64 time=0.412 ms
64 bytes from 100.64.0.2: icmp_seq=2 ttl=64 time=0.051 ms
64 bytes from 100.64.0.2: icmp_seq=2 ttl=64 time=0.090 ms (DUP!)
64 bytes from 100.64.0.2: icmp_seq=3 ttl=64 time=0.048 ms

--- 100.64.0.2 ping statistics ---
3 packets transmitted, 3 received, +1 duplicates, 0% packet loss, time 402ms
rtt min/avg/max/mdev = 0.048/0.150/0.412/0.160 ms
"""


def test_parse_ping_keeps_each_replys_rtt_without_duplicates():
    outcome = parse_ping(PER_REPLY)
    assert outcome.rtts == (0.412, 0.051, 0.048)
    assert (outcome.sent, outcome.received, outcome.rtt_min) == (3, 3, 0.048)
