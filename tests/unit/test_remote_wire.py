"""The frames between a controller and a worker, and what a worker agrees to run
(pure: pipes in memory)."""

from __future__ import annotations

import io
import traceback

import pytest

from harness.errors import BuildError, HarnessError
from harness.net.queries import RouteLookup
from harness.remote.client import function_path
from harness.remote.wire import HEADER, MAX_FRAME, RemoteError, WireError, failure_of, read_frame, write_frame
from harness.remote.worker import named_function, source_digest


def test_frames_round_trip_plain_data_in_order():
    stream = io.BytesIO()
    write_frame(stream, ("node", ("a", "route_to", ("198.18.2.2", None), {}), {}))
    write_frame(stream, RouteLookup(3, None, 1400))
    stream.seek(0)
    assert read_frame(stream) == ("node", ("a", "route_to", ("198.18.2.2", None), {}), {})
    assert read_frame(stream) == RouteLookup(3, None, 1400)
    with pytest.raises(EOFError):  # closed between frames: the other side is gone
        read_frame(stream)


def test_a_frame_cut_short_or_absurdly_long_is_a_broken_stream():
    whole = io.BytesIO()
    write_frame(whole, list(range(100)))
    with pytest.raises(WireError, match="in the middle of a frame"):
        read_frame(io.BytesIO(whole.getvalue()[:-5]))
    with pytest.raises(WireError, match="not a wgharness worker stream"):
        read_frame(io.BytesIO(HEADER.pack(MAX_FRAME + 1) + b"x"))


def _raised(exc: BaseException):
    try:
        raise exc
    except BaseException as caught:
        return failure_of(caught, traceback.format_exc())


def test_an_exception_comes_back_as_itself_when_it_pickles():
    with pytest.raises(BuildError, match="nft refused"):
        _raised(BuildError("nft refused the NAT rules")).raise_it()


class _Unpicklable(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


def test_else_as_a_remote_error_with_its_type_message_and_traceback():
    failure = _raised(_Unpicklable(1, 2))
    with pytest.raises(RemoteError) as raised:
        failure.raise_it()
    assert raised.value.kind == "_Unpicklable" and raised.value.remote_message == "1/2"
    assert "Traceback" in raised.value.traceback


def test_a_worker_runs_harness_functions_only():
    assert named_function(function_path(source_digest)) is source_digest
    for refused in ("os:system", "subprocess:run", "harness.remote.worker:", "harnessx.mod:f"):
        with pytest.raises(HarnessError):
            named_function(refused)


def test_the_source_digest_names_the_code():
    assert source_digest() == source_digest() and len(source_digest()) == 16


def test_a_worker_given_text_says_it_expects_frames_and_exits_2(capsys):
    from harness.remote.worker import serve

    assert serve(io.BytesIO(b"hello there\n"), io.BytesIO()) == 2
    assert "expected a controller's frames" in capsys.readouterr().err


def test_a_workers_clock_offset_comes_from_the_quickest_exchange_read_half_way():
    from harness.remote.client import clock_offset

    # the other clock is 100 s ahead; the second exchange is the quickest (2 ms round trip)
    samples = [(10.000, 110.004, 10.010), (10.020, 110.021, 10.022), (10.030, 110.040, 10.050)]
    offset, uncertainty = clock_offset(samples)
    assert offset == pytest.approx(100.0) and uncertainty == pytest.approx(0.001)
