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
from pathlib import Path
from typing import Any, Sequence

from pyroute2.netlink.exceptions import NetlinkError

from harness.backends import UserspaceCommand
from harness.endpoint import format_endpoint
from harness.errors import BuildError, HarnessError, MissingCapability
from harness.interrupts import checkpoint, held
from harness.plan.naming import run_of
from harness.net import nsexec
from harness.processes import stop_children
from harness.wg import uapi
from harness.wg.config import PeerChange, PeerConfig
from harness.wg.genl import WireGuardNetlink
from harness.wg.status import DeviceStatus, PeerStatus, psk_fingerprint

__all__ = ["DeviceUnavailable", "KernelDevice", "PeerChange", "PeerConfig", "UserspaceDevice", "WgDevice"]


class DeviceUnavailable(HarnessError):
    """A WireGuard device does not answer: its interface or its process is gone."""


class WgDevice(ABC):
    backend: str

    def __init__(self, namespace: str, ifname: str):
        self.namespace = namespace
        self.ifname = ifname

    def for_another_thread(self) -> "WgDevice":
        """A handle on this device that another thread may use while this one is in use
        (a background step's): the same object where each call opens its own connection."""
        return self

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
    def update_peers(self, changes: Sequence[PeerChange]) -> None:
        """Apply peer changes (adding peers that are unknown, removing those marked so)
        in as few requests as the backend allows."""

    def update_peer(
        self,
        public_key: bytes,
        *,
        endpoint: str | None = None,
        persistent_keepalive: int | None = None,
        allowed_ips: tuple[str, ...] | None = None,
    ) -> None:
        """Change some settings of one peer (adding it if unknown)."""
        self.update_peers([PeerChange(public_key, endpoint, persistent_keepalive, allowed_ips)])

    def remove_peer(self, public_key: bytes) -> None:
        self.update_peers([PeerChange(public_key, remove=True)])

    @abstractmethod
    def set_fwmark(self, mark: int) -> None:
        """Mark the device's own UDP packets, for policy routing (wg-quick's full tunnel)."""

    @abstractmethod
    def set_listen_port(self, port: int) -> None:
        """Listen on another UDP port (the socket is reopened; peers learn it from the next packet)."""

    def status(self) -> DeviceStatus:
        """The device's state as `wg show` has it; DeviceUnavailable if the device (or
        its process) is gone, whichever backend it is."""
        try:
            return self._read_status()
        except (OSError, NetlinkError) as exc:
            raise DeviceUnavailable(f"{self.backend} device {self.ifname} in {self.namespace} does not answer: {exc}") from exc

    @abstractmethod
    def _read_status(self) -> DeviceStatus: ...

    def close(self) -> None:
        pass


# --- kernel -----------------------------------------------------------------------


class KernelDevice(WgDevice):
    backend = "kernel"

    def __init__(self, namespace: str, ifname: str):
        super().__init__(namespace, ifname)
        self._netlink: WireGuardNetlink | None = None

    def for_another_thread(self) -> "KernelDevice":
        """Its own netlink socket: one socket must not serve two threads."""
        return KernelDevice(self.namespace, self.ifname)

    @property
    def netlink(self) -> WireGuardNetlink:
        if self._netlink is None:
            self._netlink = WireGuardNetlink(self.namespace)
        return self._netlink

    @staticmethod
    def create(ipr: Any, namespace: str, ifname: str) -> "KernelDevice":
        try:
            ipr.link("add", ifname=ifname, kind="wireguard")
        except NetlinkError as exc:  # EOPNOTSUPP when the module is missing
            raise MissingCapability(
                f"cannot create a kernel WireGuard interface ({exc}): load the module "
                "(modprobe wireguard) or choose the wireguard-go backend"
            ) from None
        return KernelDevice(namespace, ifname)

    def configure(self, private_key: bytes, listen_port: int, peers: list[PeerConfig]) -> None:
        self.netlink.set_device(
            self.ifname, private_key=private_key, listen_port=listen_port, peers=[PeerChange.from_config(p) for p in peers]
        )

    def set_private_key(self, private_key: bytes) -> None:
        self.netlink.set_device(self.ifname, private_key=private_key)

    def update_peers(self, changes: Sequence[PeerChange]) -> None:
        if changes:
            self.netlink.set_device(self.ifname, peers=changes)

    def set_fwmark(self, mark: int) -> None:
        """Mark the device's own UDP packets (0 clears it), as `wg set fwmark` does."""
        self.netlink.set_device(self.ifname, fwmark=mark)

    def set_listen_port(self, port: int) -> None:
        self.netlink.set_device(self.ifname, listen_port=port)

    def _read_status(self) -> DeviceStatus:
        listen_port = None
        peers: dict[bytes, dict[str, Any]] = {}
        # a device with many peers arrives split over several messages: merge by key
        for msg in self.netlink.info(self.ifname):
            listen_port = msg.get_attr("WGDEVICE_A_LISTEN_PORT") or listen_port
            for peer in msg.get_attr("WGDEVICE_A_PEERS") or []:
                key = _raw_key(peer.get_attr("WGPEER_A_PUBLIC_KEY"))
                entry = peers.setdefault(key, {"allowed_ips": []})
                endpoint = peer.get_attr("WGPEER_A_ENDPOINT")
                if endpoint and endpoint.get("addr") and endpoint.get("port"):
                    entry["endpoint"] = format_endpoint(endpoint["addr"], endpoint["port"])
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
                psk = peer.get_attr("WGPEER_A_PRESHARED_KEY")
                if psk is not None:  # kept only as a fingerprint
                    entry["psk"] = psk_fingerprint(_raw_key(psk))
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
                    e.get("psk"),
                )
                for key, e in peers.items()
            ),
        )

    def close(self) -> None:
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None


def _raw_key(attr: Any) -> bytes:
    if isinstance(attr, (bytes, str)):
        return base64.b64decode(attr)
    if "key" in attr:
        return bytes(attr["key"])
    return base64.b64decode(attr["value"])


# --- userspace (wireguard-go, or any UAPI-speaking implementation) ------------------


def wireguard_go_argv(ifname: str) -> list[str]:
    binary = shutil.which("wireguard-go")
    if binary is None:
        raise MissingCapability("wireguard-go is not installed: apt-get install wireguard-go")
    return [binary, "-f", ifname]


def userspace_argv(command: UserspaceCommand, ifname: str) -> list[str]:
    argv = command.argv_for(ifname)
    if shutil.which(argv[0]) is None:
        raise MissingCapability(f"the userspace backend's command {command.program!r} is not on PATH (from --userspace {command.template!r})")
    return argv


class UserspaceDevice(WgDevice):
    """A process that creates the TUN interface and serves the UAPI socket."""

    def __init__(
        self, namespace: str, ifname: str, process: subprocess.Popen, log_path: Path, socket_namespace: str | None = None, backend: str = "wireguard-go"
    ):
        super().__init__(namespace, ifname)
        self.backend = backend
        self.process = process
        self.log_path = log_path
        self.socket_namespace = socket_namespace  # where the process and its UDP socket live, if not `namespace`
        self._moved = False

    @staticmethod
    def start(
        namespace: str, ifname: str, argv: list[str], log_dir: Path, on_started, *, backend: str, socket_namespace: str | None = None
    ) -> "UserspaceDevice":
        """Start the daemon (`argv`, without a shell); `on_started(pid)` records it at
        once. Call wait_ready() next. With `socket_namespace` the daemon runs there (its
        UDP socket with it) and wait_ready() moves its TUN into `namespace`, as netns.sh
        moves wg0."""
        log_path = log_dir / f"{backend}-{ifname}.log"
        env = dict(os.environ, LOG_LEVEL="verbose" if os.environ.get("WGH_DEBUG") else "error")
        with held(f"starting {backend}"), open(log_path, "wb") as log:  # started and recorded as one
            process = nsexec.spawn(socket_namespace or namespace, argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
            checkpoint(f"{backend}-started", run_of(ifname) or "")  # a SIGKILL here leaves it unrecorded (tests)
            on_started(process.pid)
        return UserspaceDevice(namespace, ifname, process, log_path, socket_namespace, backend)

    def wait_ready(self, timeout: float = 10.0) -> None:
        path = uapi.socket_path(self.ifname)
        deadline = time.monotonic() + timeout
        while not uapi.accepting(self.ifname):
            if self.process.poll() is not None:
                log = self.log_path.read_text(errors="replace").strip()[-2000:] or "(no output)"
                # exit 0 before the socket: a daemon that forked into the background
                hint = "; it must stay in the foreground (wireguard-go -f, boringtun-cli --foreground)" if self.process.returncode == 0 else ""
                raise BuildError(f"{self.backend} for {self.ifname} exited with {self.process.returncode}{hint}: {log}")
            if time.monotonic() > deadline:
                raise BuildError(f"{self.backend} for {self.ifname} did not listen on its UAPI socket {path} within {timeout:.0f}s")
            time.sleep(0.002)
        if self.socket_namespace is not None and not self._moved:
            from harness.net.linkmove import move_link_from

            # the TUN exists before the UAPI socket does; the process keeps its fd after the move
            move_link_from(self.socket_namespace, self.ifname, self.namespace)
            self._moved = True

    def configure(self, private_key: bytes, listen_port: int, peers: list[PeerConfig]) -> None:
        lines = [f"private_key={private_key.hex()}", f"listen_port={listen_port}", "replace_peers=true"]
        for peer in peers:
            lines += uapi.change_lines(PeerChange.from_config(peer))
        uapi.set_config(self.ifname, lines)

    def set_private_key(self, private_key: bytes) -> None:
        uapi.set_config(self.ifname, [f"private_key={private_key.hex()}"])

    def update_peers(self, changes: Sequence[PeerChange]) -> None:
        if changes:  # one UAPI set operation for all of them
            uapi.set_config(self.ifname, [line for change in changes for line in uapi.change_lines(change)])

    def set_fwmark(self, mark: int) -> None:
        """Mark the device's own UDP packets (0 clears it): SO_MARK on wireguard-go's sockets."""
        uapi.set_config(self.ifname, [f"fwmark={mark}"])

    def set_listen_port(self, port: int) -> None:
        uapi.set_config(self.ifname, [f"listen_port={port}"])

    def _read_status(self) -> DeviceStatus:
        return uapi.get_status(self.ifname)

    def close(self) -> None:
        stuck = stop_children([self.process])
        if stuck:
            raise RuntimeError(f"{self.backend} {self.process.pid} for {self.ifname} would not die (SIGKILL ignored)")
        # a daemon removes its socket on SIGTERM; a SIGKILLed one leaves it behind
        Path(uapi.socket_path(self.ifname)).unlink(missing_ok=True)
