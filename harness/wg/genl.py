"""Kernel WireGuard over generic netlink, through pyroute2.

The one module that knows how pyroute2's WireGuard class works inside. Its public
`set()` takes one peer per call, and each call is a round trip through pyroute2's event
loop (~5 ms here, far more in an emulated VM), so configuring a 25-node mesh (600
peers) one peer at a time dominated the build. Here a WG_CMD_SET_DEVICE message
carries up to PEERS_PER_MESSAGE peers, as wg(8) sends them. The message is pyroute2's
own `wgmsg` with the kernel's attribute names (linux/wireguard.h); sending it needs the
synchronous wrapper's event loop (`_run_with_cleanup`, `asyncore`), which are not
public API. pyproject.toml bounds pyroute2's version, and
tests/unit/test_pyroute2_contract.py fails on an upgrade that changes any of this.
"""

from __future__ import annotations

import base64
import socket
from typing import Any, Iterable, Sequence

from pyroute2 import WireGuard
from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
from pyroute2.netlink.generic.wireguard import (
    WG_CMD_SET_DEVICE,
    WG_GENL_VERSION,
    WGPEER_F_REMOVE_ME,
    WGPEER_F_REPLACE_ALLOWEDIPS,
    wgmsg,
)

from harness.endpoint import Endpoint
from harness.net import nsexec
from harness.wg.config import PeerChange

PEERS_PER_MESSAGE = 32  # keeps a message well under a page per ~100-byte peer nest


def _key(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def peer_nest(change: PeerChange) -> dict[str, Any]:
    """One WGDEVICE_A_PEERS entry (linux/wireguard.h), in pyroute2's NLA form."""
    attrs: list[list[Any]] = [["WGPEER_A_PUBLIC_KEY", _key(change.public_key)]]
    if change.remove:
        attrs.append(["WGPEER_A_FLAGS", WGPEER_F_REMOVE_ME])
        return {"attrs": attrs}
    if change.endpoint is not None:
        endpoint = Endpoint.parse(change.endpoint)
        attrs.append(["WGPEER_A_ENDPOINT", {"addr": endpoint.host, "port": endpoint.port}])
    if change.persistent_keepalive is not None:
        attrs.append(["WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL", change.persistent_keepalive])
    if change.preshared_key is not None:
        attrs.append(["WGPEER_A_PRESHARED_KEY", _key(change.preshared_key)])
    attrs.append(["WGPEER_A_FLAGS", WGPEER_F_REPLACE_ALLOWEDIPS if change.allowed_ips is not None else 0])
    if change.allowed_ips is not None:
        allowed = []
        for network in change.allowed_ips:
            address, _, prefix = network.partition("/")
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            allowed.append(
                {
                    "attrs": [
                        ["WGALLOWEDIP_A_FAMILY", family],
                        ["WGALLOWEDIP_A_IPADDR", socket.inet_pton(family, address)],
                        ["WGALLOWEDIP_A_CIDR_MASK", int(prefix)],
                    ]
                }
            )
        attrs.append(["WGPEER_A_ALLOWEDIPS", allowed])
    return {"attrs": attrs}


def set_device_message(
    ifname: str,
    *,
    private_key: bytes | None = None,
    listen_port: int | None = None,
    fwmark: int | None = None,
    peers: Sequence[PeerChange] = (),
) -> wgmsg:
    """WG_CMD_SET_DEVICE for `ifname` (header type and port id are filled in by `send`)."""
    msg = wgmsg()
    msg["attrs"].append(["WGDEVICE_A_IFNAME", ifname])
    if private_key is not None:
        msg["attrs"].append(["WGDEVICE_A_PRIVATE_KEY", _key(private_key)])
    if listen_port is not None:
        msg["attrs"].append(["WGDEVICE_A_LISTEN_PORT", listen_port])
    if fwmark is not None:
        msg["attrs"].append(["WGDEVICE_A_FWMARK", fwmark])
    if peers:
        msg["attrs"].append(["WGDEVICE_A_PEERS", [peer_nest(p) for p in peers]])
    msg["cmd"] = WG_CMD_SET_DEVICE
    msg["version"] = WG_GENL_VERSION
    return msg


async def _send(core: Any, msg: wgmsg) -> None:
    msg["header"]["type"] = core.prid
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
    msg["header"]["pid"] = core.pid
    msg.encode()
    core.sendto(msg.data, (0, 0))
    (reply,) = [x async for x in core.get()]
    error = reply["header"].get("error", None)
    if error is not None:
        raise error


def batches(peers: Sequence[PeerChange]) -> list[Sequence[PeerChange]]:
    return [peers[i : i + PEERS_PER_MESSAGE] for i in range(0, len(peers), PEERS_PER_MESSAGE)] or [()]


class WireGuardNetlink:
    """A generic netlink socket for WireGuard, opened inside a network namespace."""

    def __init__(self, namespace: str):
        self._wireguard = WireGuard(fileno=nsexec.netlink_fd(namespace, nsexec.NETLINK_GENERIC))

    def set_device(
        self,
        ifname: str,
        *,
        private_key: bytes | None = None,
        listen_port: int | None = None,
        fwmark: int | None = None,
        peers: Sequence[PeerChange] = (),
    ) -> None:
        """Device settings and any number of peer changes, PEERS_PER_MESSAGE per message."""
        for number, batch in enumerate(batches(peers)):
            first = number == 0
            msg = set_device_message(
                ifname,
                private_key=private_key if first else None,
                listen_port=listen_port if first else None,
                fwmark=fwmark if first else None,
                peers=batch,
            )
            self._wireguard._run_with_cleanup(_send, self._wireguard.asyncore, msg)

    def info(self, ifname: str) -> Iterable[Any]:
        """WG_CMD_GET_DEVICE: the device in one or more messages (many peers are split)."""
        return self._wireguard.info(ifname)

    def close(self) -> None:
        self._wireguard.close()
