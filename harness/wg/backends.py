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
    def status(self) -> DeviceStatus: ...

    def close(self) -> None:
        pass


# --- kernel -----------------------------------------------------------------------


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
        self.genl.set(self.ifname, private_key=base64.b64encode(private_key).decode(), listen_port=listen_port)
        for peer in peers:
            self.genl.set(self.ifname, peer=self._peer(peer))

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

    def __init__(self, namespace: str, ifname: str, process: subprocess.Popen, log_path: Path):
        super().__init__(namespace, ifname)
        self.process = process
        self.log_path = log_path

    @staticmethod
    def start(namespace: str, ifname: str, log_dir: Path, on_started) -> "WireguardGoDevice":
        """Start the daemon; `on_started(pid)` records it at once. Call wait_ready() next."""
        binary = shutil.which("wireguard-go")
        if binary is None:
            raise MissingCapability("wireguard-go is not installed: apt-get install wireguard-go")
        log_path = log_dir / f"wireguard-go-{ifname}.log"
        env = dict(os.environ, LOG_LEVEL="verbose" if os.environ.get("WGH_DEBUG") else "error")
        with open(log_path, "wb") as log:
            process = nsexec.popen(
                namespace, [binary, "-f", ifname], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        on_started(process.pid)
        return WireguardGoDevice(namespace, ifname, process, log_path)

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

    def update_peer(self, public_key, *, endpoint=None, persistent_keepalive=None, allowed_ips=None) -> None:
        uapi.set_config(
            self.ifname,
            uapi.peer_lines(public_key, endpoint=endpoint, persistent_keepalive=persistent_keepalive, allowed_ips=allowed_ips),
        )

    def remove_peer(self, public_key: bytes) -> None:
        uapi.set_config(self.ifname, uapi.peer_lines(public_key, remove=True))

    def status(self) -> DeviceStatus:
        return uapi.get_status(self.ifname)

    def close(self) -> None:
        from harness.cleanup import process_start_time, stop_process

        if self.process.poll() is None:
            stop_process(self.process.pid, process_start_time(self.process.pid))
        self.process.wait(timeout=5)
        # wireguard-go removes its socket on SIGTERM; a SIGKILLed one leaves it behind
        Path(uapi.socket_path(self.ifname)).unlink(missing_ok=True)
