"""The cross-platform WireGuard configuration protocol spoken by wireguard-go on
/var/run/wireguard/<ifname>.sock (https://www.wireguard.com/xplatform/).
Keys travel over the socket only: never on a command line or in a file."""

from __future__ import annotations

import socket
from typing import Iterable

from harness.errors import HarnessError
from harness.wg.config import PeerChange
from harness.wg.status import DeviceStatus, PeerStatus, psk_fingerprint

SOCKET_DIR = "/var/run/wireguard"


class UapiError(HarnessError, OSError):
    pass


def socket_path(ifname: str) -> str:
    return f"{SOCKET_DIR}/{ifname}.sock"


def accepting(ifname: str) -> bool:
    """The daemon listens on its UAPI socket. The file appears at bind(), a moment
    before listen(): a connect in between is refused (seen under load, with -j)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(socket_path(ifname))
        except (FileNotFoundError, ConnectionRefusedError):
            return False
    return True


def _exchange(ifname: str, request: str, timeout: float = 5.0) -> list[str]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path(ifname))
        sock.sendall(request.encode())
        data = b""
        while not data.endswith(b"\n\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    lines = data.decode().splitlines()
    errno = next((line.split("=", 1)[1] for line in lines if line.startswith("errno=")), None)
    if errno is None:
        raise UapiError(f"{ifname}: no reply from wireguard-go")
    if errno != "0":
        raise UapiError(int(errno), f"{ifname}: wireguard-go refused the configuration (errno={errno})")
    return [line for line in lines if line and not line.startswith("errno=")]


def set_config(ifname: str, lines: Iterable[str]) -> None:
    _exchange(ifname, "set=1\n" + "".join(f"{line}\n" for line in lines) + "\n")


def peer_lines(
    public_key: bytes,
    *,
    allowed_ips: Iterable[str] | None = None,
    endpoint: str | None = None,
    persistent_keepalive: int | None = None,
    remove: bool = False,
    preshared_key: bytes | None = None,
) -> list[str]:
    lines = [f"public_key={public_key.hex()}"]
    if remove:
        return lines + ["remove=true"]
    if preshared_key is not None:
        lines.append(f"preshared_key={preshared_key.hex()}")
    if endpoint is not None:
        lines.append(f"endpoint={endpoint}")
    if persistent_keepalive is not None:
        lines.append(f"persistent_keepalive_interval={persistent_keepalive}")
    if allowed_ips is not None:
        lines.append("replace_allowed_ips=true")
        lines += [f"allowed_ip={net}" for net in allowed_ips]
    return lines


def change_lines(change: PeerChange) -> list[str]:
    return peer_lines(
        change.public_key,
        allowed_ips=change.allowed_ips,
        endpoint=change.endpoint,
        persistent_keepalive=change.persistent_keepalive,
        remove=change.remove,
        preshared_key=change.preshared_key,
    )


def get_status(ifname: str) -> DeviceStatus:
    listen_port = None
    peers: list[dict] = []
    for line in _exchange(ifname, "get=1\n\n"):
        key, _, value = line.partition("=")
        if key == "public_key":
            peers.append({"public_key": bytes.fromhex(value), "allowed_ips": []})
        elif key == "listen_port":
            listen_port = int(value)
        elif not peers:
            continue  # device-level keys, the private key among them: not kept
        elif key == "endpoint":
            peers[-1]["endpoint"] = value
        elif key == "last_handshake_time_sec":
            peers[-1]["sec"] = int(value)
        elif key == "last_handshake_time_nsec":
            peers[-1]["nsec"] = int(value)
        elif key in ("rx_bytes", "tx_bytes"):
            peers[-1][key] = int(value)
        elif key == "allowed_ip":
            peers[-1]["allowed_ips"].append(value)
        elif key == "persistent_keepalive_interval":
            peers[-1]["keepalive"] = int(value)
        elif key == "preshared_key":  # kept only as a fingerprint
            peers[-1]["psk"] = psk_fingerprint(bytes.fromhex(value))
    return DeviceStatus(
        listen_port,
        tuple(
            PeerStatus(
                public_key=p["public_key"],
                endpoint=p.get("endpoint"),
                latest_handshake=p.get("sec", 0) + p.get("nsec", 0) / 1e9,
                rx_bytes=p.get("rx_bytes", 0),
                tx_bytes=p.get("tx_bytes", 0),
                allowed_ips=tuple(p["allowed_ips"]),
                persistent_keepalive=p.get("keepalive", 0),
                preshared_key=p.get("psk"),
            )
            for p in peers
        ),
    )
