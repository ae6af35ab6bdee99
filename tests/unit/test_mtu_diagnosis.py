"""harness.diagnosis.mtu: the arithmetic and the verdict of the MTU black-hole diagnosis (pure)."""

import pytest

from harness.diagnosis.causes import CAUSES
from harness.diagnosis.mtu import (
    PathMtu,
    fitting_tunnel_mtu,
    inner_packet_size,
    largest_contiguous,
    outer_packet_size,
    padded,
    probe_sizes,
    tunnel_overhead,
    verdict,
)


def test_overhead_is_outer_ip_udp_and_wireguard_header_and_tag():
    assert tunnel_overhead(4) == 20 + 8 + 32 == 60
    assert tunnel_overhead(6) == 40 + 8 + 32 == 80
    # WireGuard's default MTU is what a 1500-byte path leaves over an IPv6 underlay
    assert fitting_tunnel_mtu(1500, 6) == 1420
    assert fitting_tunnel_mtu(1400, 4) == 1340
    assert fitting_tunnel_mtu(1400, 6) == 1320


def test_inner_packet_of_a_ping():
    assert inner_packet_size(56, 4) == 84
    assert inner_packet_size(1392, 4) == 1420
    assert inner_packet_size(1372, 6) == 1420


@pytest.mark.parametrize(
    "inner, mtu, expected",
    [
        (84, 1420, 96),  # padded to a multiple of 16
        (96, 1420, 96),
        (1420, 1420, 1420),  # 1424 would exceed the MTU: no padding past it
        (1410, 1420, 1420),  # padding stops at the MTU
        (1280, 1280, 1280),
        (0, 1420, 0),  # a keepalive carries nothing
    ],
)
def test_padding_never_exceeds_the_mtu(inner, mtu, expected):
    assert padded(inner, mtu) == expected


def test_outer_size_of_full_and_fragmented_inner_packets():
    assert outer_packet_size(1420, 1420, 4) == 1480
    assert outer_packet_size(1420, 1420, 6) == 1500
    # at MTU 1280 a 1420-byte inner packet is fragmented inside the tunnel first
    assert outer_packet_size(1420, 1280, 4) == 1340
    assert outer_packet_size(84, 1420, 4) == 156


def test_probe_sizes_include_both_ends():
    assert probe_sizes(576, 640, 16) == [576, 592, 608, 624, 640]
    assert probe_sizes(576, 650, 16)[-2:] == [640, 650]
    assert probe_sizes(1401, 1403, 1) == [1401, 1402, 1403]
    assert probe_sizes(1500, 1400, 16) == []


def test_largest_contiguous_ignores_survivors_above_a_loss():
    sent = [576, 592, 608, 624]
    assert largest_contiguous(sent, {576, 592, 608, 624}) == 624
    assert largest_contiguous(sent, {576, 592}) == 592
    assert largest_contiguous(sent, {576, 608, 624}) == 576
    assert largest_contiguous(sent, set()) is None


BLACK_HOLE = dict(src="client", dst="server", large_inner=1420, small_ok=True, tunnel_mtu=1420, outer_family=4, probed=True)


def test_black_hole_names_path_mtu_and_a_fitting_tunnel_mtu():
    cause = verdict(**BLACK_HOLE, path_mtu=1400)
    assert cause is not None
    assert "1480-byte packets on the underlay" in cause
    assert "carries at most 1400 bytes" in cause
    assert "at most 1340 fits, e.g. 1280" in cause
    assert "mtu-blackhole" in CAUSES


def test_no_verdict_when_small_packets_fail_too():
    assert verdict(**{**BLACK_HOLE, "small_ok": False}, path_mtu=1400) is None


def test_no_verdict_when_the_path_carries_the_packet():
    assert verdict(**BLACK_HOLE, path_mtu=1500) is None
    assert verdict(**BLACK_HOLE, path_mtu=1480) is None
    assert verdict(**BLACK_HOLE, path_mtu=1479) is not None


def test_lowered_tunnel_mtu_fits_where_the_default_does_not():
    # the same 1420-byte inner packet at tunnel MTU 1280 crosses a 1400-byte path
    assert verdict(**{**BLACK_HOLE, "tunnel_mtu": 1280}, path_mtu=1400) is None


def test_ipv6_underlay_needs_more_room():
    cause = verdict(**{**BLACK_HOLE, "outer_family": 6}, path_mtu=1400)
    assert "1500-byte packets" in cause and "at most 1320 fits" in cause


def test_path_too_narrow_for_1280_warns_about_ipv6():
    cause = verdict(**BLACK_HOLE, path_mtu=1300)
    assert "at most 1240 fits" in cause and "IPv6's minimum" in cause and "e.g. 1280" not in cause


def test_unmeasured_path_still_names_the_symptom():
    cause = verdict(**{**BLACK_HOLE, "probed": False}, path_mtu=None)
    assert "large packets vanish while small ones pass" in cause and "could not be measured" in cause


def test_path_mtu_description():
    hole = PathMtu("client", "server", "198.18.3.2", 1400, 1500)
    assert hole.describe() == (
        "underlay client → server (198.18.3.2): path MTU 1400 (UDP probes with DF; client's interface MTU 1500, "
        "1401+ byte packets vanish); no ICMP 'fragmentation needed' reached client"
    )
    told = PathMtu("client", "server", "198.18.3.2", 1400, 1500, cached_mtu=1400)
    assert "ICMP 'fragmentation needed' did reach client (cached path MTU 1400)" in told.describe()
    clear = PathMtu("client", "server", "198.18.3.2", 1500, 1500)
    assert clear.describe().endswith("interface MTU 1500)")
    assert "not even 576-byte" in PathMtu("a", "b", "198.18.1.2", None, 1500).describe()
