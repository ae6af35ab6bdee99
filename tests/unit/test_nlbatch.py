"""Batched route messages are byte for byte what pyroute2 sends for the same route
(plus RTA_TABLE, which `ip route` also sends), so the kernel sees the same request."""

import struct

import pytest

from harness.net.nlbatch import NLM_F_EXCL, NLM_F_REPLACE, RTM_NEWROUTE, route_message


def pyroute2_message(command, **request):
    from pyroute2 import IPBatch

    batch = IPBatch()
    try:
        batch.route(command, **request)
        return bytes(batch.batch)
    finally:
        batch.close()


@pytest.mark.parametrize(
    "command, request_",
    [
        ("add", {"dst": "198.18.2.0/24", "gateway": "198.18.1.2", "oif": 1000}),
        ("replace", {"dst": "100.64.0.3/32", "oif": 5, "table": 254}),
        ("replace", {"dst": "100.64.0.3/32", "oif": 5, "table": 51820}),
        ("add", {"dst": "2001:2:0:2::/64", "gateway": "2001:2:0:1::2", "oif": 1000}),
    ],
)
def test_same_request_as_pyroute2(command, request_):
    ours = route_message(replace=command == "replace", **request_)
    theirs = pyroute2_message(command, **request_)
    length, kind, flags = struct.unpack_from("=IHH", ours)
    assert length == len(ours) and kind == RTM_NEWROUTE
    assert flags & (NLM_F_REPLACE if command == "replace" else NLM_F_EXCL)
    assert ours[4:8] == theirs[4:8]  # type and flags; sequence and port id are set when sent
    # the rtmsg header (a table above 255 goes in RTA_TABLE only, as `ip route` does it)
    header, their_header = bytearray(ours[16:28]), bytearray(theirs[16:28])
    if request_.get("table", 254) > 255:
        their_header[4] = 0
    assert header == their_header
    # pyroute2 sends RTA_TABLE only when a table is given; otherwise ours is its last attribute
    body, their_body = ours[28:], theirs[28:]
    assert body == their_body or body[: len(their_body)] == their_body and body[len(their_body):] == struct.pack("=HHI", 8, 15, 254)
