"""WireGuard devices, one class per implementation, one interface for the rest.

- kernel: the in-tree module, configured over generic netlink (pyroute2).
- wireguard-go: the userspace implementation on a TUN device, configured over its
  UAPI socket. Its socket directory is not per namespace, hence host-unique names.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import BuildError, MissingCapability
from harness.net import nsexec
from harness.wg import uapi
from harness.wg.status import DeviceStatus, PeerStatus

BACKENDS = ("kernel", "wireguard-go")


@dataclass(frozen=True)
class PeerConfig:
    public_key: bytes
    allowed_ips: tuple[str, ...]
    endpoint: str | None = None
    persistent_keepalive: int = 0


class WgDevice(ABC):
    backend: str

    def __init__(self, namespace: str, ifname: str):
        self.namespace = namespace
        self.ifname = ifname

    @abstractmethod
    def configure(self, private_key: bytes, listen_port: int, peers: list[PeerConfig]) -> None:
        """Set the key, port and the complete peer list (replacing any peers)."""

    @abstractmethod
    def set_private_key(self, private_key: bytes) -> None:
        """Replace the key pair only: peers and their sessions' endpoints stay. A full
        `configure` would also replace the peers, losing a handshake already in flight
        with the new key; its retry, within 20 ms, is dropped by the peer as a flood and
        the next comes only after REKEY_TIMEOUT (5 s)."""

    @abstractmethod
    def update_peer(
        self,
        public_key: bytes,
        *,
        endpoint: str | None = None,
        persistent_keepalive: int | None = None,
        allowed_ips: tuple[str, ...] | None = None,
    ) -> None:
        """Change some settings of one peer (adding it if unknown)."""

    @abstractmethod
    def remove_peer(self, public_key: bytes) -> None: ...

    @abstractmethod
    def set_fwmark(self, mark: int) -> None:
        """Mark the device's own UDP packets, for policy routing (wg-quick's full tunnel)."""

    @abstractmethod
    def set_listen_port(self, port: int) -> None:
        """Listen on another UDP port (the socket is reopened; peers learn it from the next packet)."""

    @abstractmethod
    def status(self) -> DeviceStatus: ...

    def close(self) -> None:
        pass


# --- kernel -----------------------------------------------------------------------

PEERS_PER_MESSAGE = 32  # keeps a message well under a page per ~100-byte peer nest


async def _set_device(core: Any, ifname: str, device: dict[str, Any], peers: list[dict[str, Any]]) -> None:
    """WG_CMD_SET_DEVICE with several peers in one message (pyroute2's `set` takes one).
    The peer nests are built by pyroute2's own encoder, then sent as one list."""
    from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
    from pyroute2.netlink.generic.wireguard import WG_CMD_SET_DEVICE, WG_GENL_VERSION, wgmsg

    msg = wgmsg()
    msg["attrs"].append(["WGDEVICE_A_IFNAME", ifname])
    if "private_key" in device:
        msg["attrs"].append(["WGDEVICE_A_PRIVATE_KEY", device["private_key"]])
    if "listen_port" in device:
        msg["attrs"].append(["WGDEVICE_A_LISTEN_PORT", device["listen_port"]])
    if peers:
        scratch: dict[str, list] = {"attrs": []}
        for peer in peers:
            core._wg_set_peer(scratch, peer)  # appends ['WGDEVICE_A_PEERS', [nest]]
        msg["attrs"].append(["WGDEVICE_A_PEERS", [nest for _, nests in scratch["attrs"] for nest in nests]])
    msg["cmd"] = WG_CMD_SET_DEVICE
    msg["version"] = WG_GENL_VERSION
    msg["header"]["type"] = core.prid
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
    msg["header"]["pid"] = core.pid
    msg.encode()
    core.sendto(msg.data, (0, 0))
    (reply,) = [x async for x in core.get()]
    error = reply["header"].get("error", None)
    if error is not None:
        raise error


class KernelDevice(WgDevice):
    backend = "kernel"

    def __init__(self, namespace: str, ifname: str):
        super().__init__(namespace, ifname)
        self._genl: Any = None

    @property
    def genl(self) -> Any:
        if self._genl is None:
            from pyroute2 import WireGuard

            self._genl = WireGuard(fileno=nsexec.netlink_fd(self.namespace, nsexec.NETLINK_GENERIC))
        return self._genl

    @staticmethod
    def create(ipr: Any, namespace: str, ifname: str) -> "KernelDevice":
        try:
            ipr.link("add", ifname=ifname, kind="wireguard")
        except Exception as exc:  # NetlinkError: EOPNOTSUPP when the module is missing
            raise MissingCapability(
                f"cannot create a kernel WireGuard interface ({exc}): load the module "
                "(modprobe wireguard) or choose the wireguard-go backend"
            ) from None
        return KernelDevice(namespace, ifname)

    @staticmethod
    def _peer(peer: PeerConfig) -> dict[str, Any]:
        data: dict[str, Any] = {
            "public_key": base64.b64encode(peer.public_key).decode(),
            "allowed_ips": list(peer.allowed_ips),
            "replace_allowed_ips": True,
            "persistent_keepalive": peer.persistent_keepalive,
        }
        if peer.endpoint:
            host, _, port = peer.endpoint.rpartition(":")
            data["endpoint_addr"] = host.strip("[]")
            data["endpoint_port"] = int(port)
        return data

    def configure(self, private_key: bytes, listen_port: int, peers: list[PeerConfig]) -> None:
        # One netlink message per batch of peers, as wg(8) does: a call per peer costs
        # a round trip through pyroute2's event loop, which dominated building a
        # 25-node mesh (600 peers) in an emulated VM.
        batches = [peers[i : i + PEERS_PER_MESSAGE] for i in range(0, len(peers), PEERS_PER_MESSAGE)] or [[]]
        for number, batch in enumerate(batches):
            device: dict[str, Any] = {}
            if number == 0:
                device = {"private_key": base64.b64encode(private_key).decode(), "listen_port": listen_port}
            self.genl._run_with_cleanup(_set_device, self.genl.asyncore, self.ifname, device, [self._peer(p) for p in batch])

    def set_private_key(self, private_key: bytes) -> None:
        self.genl.set(self.ifname, private_key=base64.b64encode(private_key).decode())

    def update_peer(self, public_key, *, endpoint=None, persistent_keepalive=None, allowed_ips=None) -> None:
        data: dict[str, Any] = {"public_key": base64.b64encode(public_key).decode()}
        if endpoint is not None:
            host, _, port = endpoint.rpartition(":")
            data["endpoint_addr"] = host.strip("[]")
            data["endpoint_port"] = int(port)
        if persistent_keepalive is not None:
            data["persistent_keepalive"] = persistent_keepalive
        if allowed_ips is not None:
            data["allowed_ips"] = list(allowed_ips)
            data["replace_allowed_ips"] = True
        self.genl.set(self.ifname, peer=data)

    def remove_peer(self, public_key: bytes) -> None:
        self.genl.set(self.ifname, peer={"public_key": base64.b64encode(public_key).decode(), "remove": True})

    def set_fwmark(self, mark: int) -> None:
        """Mark the device's own UDP packets (0 clears it), as `wg set fwmark` does."""
        self.genl.set(self.ifname, fwmark=mark)

    def set_listen_port(self, port: int) -> None:
        self.genl.set(self.ifname, listen_port=port)

    def status(self) -> DeviceStatus:
        listen_port = None
        peers: dict[bytes, dict[str, Any]] = {}
        # a device with many peers arrives split over several messages: merge by key
        for msg in self.genl.info(self.ifname):
            listen_port = msg.get_attr("WGDEVICE_A_LISTEN_PORT") or listen_port
            for peer in msg.get_attr("WGDEVICE_A_PEERS") or []:
                key = _raw_key(peer.get_attr("WGPEER_A_PUBLIC_KEY"))
                entry = peers.setdefault(key, {"allowed_ips": []})
                endpoint = peer.get_attr("WGPEER_A_ENDPOINT")
                if endpoint and endpoint.get("addr") and endpoint.get("port"):
                    host = endpoint["addr"]
                    entry["endpoint"] = f"[{host}]:{endpoint['port']}" if ":" in host else f"{host}:{endpoint['port']}"
                handshake = peer.get_attr("WGPEER_A_LAST_HANDSHAKE_TIME")
                if handshake is not None:
                    entry["handshake"] = handshake["tv_sec"] + handshake["tv_nsec"] / 1e9
                for name in ("rx_bytes", "tx_bytes"):
                    value = peer.get_attr(f"WGPEER_A_{name.upper()}")
                    if value is not None:
                        entry[name] = value
                keepalive = peer.get_attr("WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL")
                if keepalive is not None:
                    entry["keepalive"] = keepalive
                for allowed in peer.get_attr("WGPEER_A_ALLOWEDIPS") or []:
                    if allowed.get("addr"):
                        entry["allowed_ips"].append(allowed["addr"])
        return DeviceStatus(
            listen_port,
            tuple(
                PeerStatus(
                    key,
                    e.get("endpoint"),
                    e.get("handshake", 0.0),
                    e.get("rx_bytes", 0),
                    e.get("tx_bytes", 0),
                    tuple(e["allowed_ips"]),
                    e.get("keepalive", 0),
                )
                for key, e in peers.items()
            ),
        )

    def close(self) -> None:
        if self._genl is not None:
            self._genl.close()
            self._genl = None


def _raw_key(attr: Any) -> bytes:
    if isinstance(attr, (bytes, str)):
        return base64.b64decode(attr)
    if "key" in attr:
        return bytes(attr["key"])
    return base64.b64decode(attr["value"])


# --- wireguard-go ---------------------------------------------------------------------


class WireguardGoDevice(WgDevice):
    backend = "wireguard-go"

    def __init__(self, namespace: str, ifname: str, process: subprocess.Popen, log_path: Path, socket_namespace: str | None = None):
        super().__init__(namespace, ifname)
        self.process = process
        self.log_path = log_path
        self.socket_namespace = socket_namespace  # where the process and its UDP socket live, if not `namespace`
        self._moved = False

    @staticmethod
    def start(namespace: str, ifname: str, log_dir: Path, on_started, *, socket_namespace: str | None = None) -> "WireguardGoDevice":
        """Start the daemon; `on_started(pid)` records it at once. Call wait_ready() next.
        With `socket_namespace` the daemon runs there (its UDP socket with it) and
        wait_ready() moves its TUN into `namespace`, as netns.sh moves wg0."""
        binary = shutil.which("wireguard-go")
        if binary is None:
            raise MissingCapability("wireguard-go is not installed: apt-get install wireguard-go")
        log_path = log_dir / f"wireguard-go-{ifname}.log"
        env = dict(os.environ, LOG_LEVEL="verbose" if os.environ.get("WGH_DEBUG") else "error")
        with open(log_path, "wb") as log:
            process = nsexec.popen(
                socket_namespace or namespace, [binary, "-f", ifname], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        on_started(process.pid)
        return WireguardGoDevice(namespace, ifname, process, log_path, socket_namespace)

    def wait_ready(self, timeout: float = 10.0) -> None:
        path = uapi.socket_path(self.ifname)
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if self.process.poll() is not None:
                log = self.log_path.read_text(errors="replace").strip()[-2000:]
                raise BuildError(f"wireguard-go for {self.ifname} exited with {self.process.returncode}: {log}")
            if time.monotonic() > deadline:
                raise BuildError(f"wireguard-go for {self.ifname} did not open its UAPI socket within {timeout:.0f}s")
            time.sleep(0.002)
        if self.socket_namespace is not None and not self._moved:
            from harness.net.linkmove import move_link_from

            # the TUN exists before the UAPI socket does; the process keeps its fd after the move
            move_link_from(self.socket_namespace, self.ifname, self.namespace)
            self._moved = True

    def configure(self, private_key: bytes, listen_port: int, peers: list[PeerConfig]) -> None:
        lines = [f"private_key={private_key.hex()}", f"listen_port={listen_port}", "replace_peers=true"]
        for peer in peers:
            lines += uapi.peer_lines(
                peer.public_key,
                allowed_ips=peer.allowed_ips,
                endpoint=peer.endpoint,
                persistent_keepalive=peer.persistent_keepalive,
            )
        uapi.set_config(self.ifname, lines)

    def set_private_key(self, private_key: bytes) -> None:
        uapi.set_config(self.ifname, [f"private_key={private_key.hex()}"])

    def update_peer(self, public_key, *, endpoint=None, persistent_keepalive=None, allowed_ips=None) -> None:
        uapi.set_config(
            self.ifname,
            uapi.peer_lines(public_key, endpoint=endpoint, persistent_keepalive=persistent_keepalive, allowed_ips=allowed_ips),
        )

    def remove_peer(self, public_key: bytes) -> None:
        uapi.set_config(self.ifname, uapi.peer_lines(public_key, remove=True))

    def set_fwmark(self, mark: int) -> None:
        """Mark the device's own UDP packets (0 clears it): SO_MARK on wireguard-go's sockets."""
        uapi.set_config(self.ifname, [f"fwmark={mark}"])

    def set_listen_port(self, port: int) -> None:
        uapi.set_config(self.ifname, [f"listen_port={port}"])

    def status(self) -> DeviceStatus:
        return uapi.get_status(self.ifname)

    def close(self) -> None:
        from harness.cleanup import process_start_time, stop_process

        if self.process.poll() is None:
            stop_process(self.process.pid, process_start_time(self.process.pid))
        self.process.wait(timeout=5)
        # wireguard-go removes its socket on SIGTERM; a SIGKILLed one leaves it behind
        Path(uapi.socket_path(self.ifname)).unlink(missing_ok=True)
