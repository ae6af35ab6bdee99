"""Batched route messages are byte for byte what pyroute2 sends for the same route
(plus RTA_TABLE, which `ip route` also sends), so the kernel sees the same request;
address and link-up messages decode to the same request as pyroute2's."""

import ipaddress
import struct

import pytest

from harness.net.nlbatch import IFA_F_NODAD, NLM_F_EXCL, NLM_F_REPLACE, RTM_NEWROUTE, address_message, link_message, route_message, up_message


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


def decoded(parser, data):
    message = parser(data)
    message.decode()
    fields = {k: v for k, v in message.items() if k not in ("attrs", "header")}
    return message["header"]["type"], message["header"]["flags"], fields, sorted((a[0], a[1]) for a in message["attrs"])


@pytest.mark.parametrize("address", ["198.18.0.2/24", "2001:2:0:1::2/64"])
def test_address_request_as_pyroute2(address):
    """An address add decodes to what pyroute2 sends for it; IPv6 asks for no duplicate
    address detection (IFA_F_NODAD), as harness.net.iface.add_address does."""
    from pyroute2 import IPBatch
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

    interface = ipaddress.ip_interface(address)
    extra = {"flags": IFA_F_NODAD} if interface.version == 6 else {}
    batch = IPBatch()
    try:
        batch.addr("add", index=7, address=str(interface.ip), prefixlen=interface.network.prefixlen, **extra)
        theirs = bytes(batch.batch)
    finally:
        batch.close()
    ours = address_message(7, interface)
    assert struct.unpack_from("=I", ours)[0] == len(ours)
    assert decoded(ifaddrmsg, ours) == decoded(ifaddrmsg, theirs)
    assert (("IFA_FLAGS", IFA_F_NODAD) in decoded(ifaddrmsg, ours)[3]) == (interface.version == 6)


@pytest.mark.parametrize("mtu", [None, 1400])
def test_up_request_as_pyroute2(mtu):
    from pyroute2 import IPBatch
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    batch = IPBatch()
    try:
        batch.link("set", index=7, state="up", **({"mtu": mtu} if mtu else {}))
        theirs = bytes(batch.batch)
    finally:
        batch.close()
    ours = up_message(7, mtu)
    assert decoded(ifinfmsg, ours) == decoded(ifinfmsg, theirs)
    assert decoded(ifinfmsg, ours)[3] == ([("IFLA_MTU", mtu)] if mtu else [])


def test_link_flags_request_as_pyroute2():
    """Multicast off (a full tunnel's interface, harness.net.policy.prepare)."""
    from pyroute2 import IPBatch
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    batch = IPBatch()
    try:
        batch.link("set", index=7, flags=0, change=0x1000)
        theirs = bytes(batch.batch)
    finally:
        batch.close()
    assert decoded(ifinfmsg, link_message(7, 0, 0x1000)) == decoded(ifinfmsg, theirs)
