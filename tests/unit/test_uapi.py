"""harness.wg.uapi against a fake wireguard-go UAPI server on a unix socket."""

import os
import socket
import threading

import pytest

from harness.wg import uapi
from harness.wg.status import DeviceStatus

PRIVATE_HEX = "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a"
PEER1_HEX = "b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33"
PEER2_HEX = "58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceae2f3ba4e8a"
PSK_HEX = "188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52"

GET_REPLY = f"""\
private_key={PRIVATE_HEX}
listen_port=51820
public_key={PEER1_HEX}
preshared_key={PSK_HEX}
protocol_version=1
endpoint=198.18.2.2:51820
last_handshake_time_sec=1700000000
last_handshake_time_nsec=500000000
tx_bytes=1234
rx_bytes=5678
persistent_keepalive_interval=25
allowed_ip=100.64.0.2/32
allowed_ip=fd00:64::2/128
public_key={PEER2_HEX}
preshared_key=0000000000000000000000000000000000000000000000000000000000000000
protocol_version=1
last_handshake_time_sec=0
last_handshake_time_nsec=0
tx_bytes=0
rx_bytes=0
persistent_keepalive_interval=0
errno=0

"""


class FakeUapi:
    """Accepts connections, records each request (read up to the blank line), sends `reply`."""

    def __init__(self, path, reply):
        self.path = path
        self.reply = reply
        self.requests = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(4)
        self.server.settimeout(5)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not data.endswith(b"\n\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data.decode())
                if self.reply is not None:
                    conn.sendall(self.reply.encode())

    def close(self):
        try:
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        self.server.close()
        self.thread.join(timeout=5)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    servers = []
    monkeypatch.setattr(uapi, "SOCKET_DIR", str(tmp_path))

    def start(ifname, reply):
        server = FakeUapi(os.path.join(tmp_path, f"{ifname}.sock"), reply)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_socket_path_uses_socket_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(uapi, "SOCKET_DIR", str(tmp_path))
    assert uapi.socket_path("wgh0") == f"{tmp_path}/wgh0.sock"


def test_set_config_sends_exact_protocol_text(fake):
    server = fake("wg0", "errno=0\n\n")
    lines = [f"private_key={PRIVATE_HEX}", "listen_port=51820", "replace_peers=true"]
    lines += uapi.peer_lines(
        bytes.fromhex(PEER1_HEX),
        allowed_ips=["100.64.0.2/32", "fd00:64::2/128"],
        endpoint="198.18.2.2:51820",
        persistent_keepalive=25,
    )
    uapi.set_config("wg0", lines)
    assert server.requests == [
        "set=1\n"
        f"private_key={PRIVATE_HEX}\n"
        "listen_port=51820\n"
        "replace_peers=true\n"
        f"public_key={PEER1_HEX}\n"
        "endpoint=198.18.2.2:51820\n"
        "persistent_keepalive_interval=25\n"
        "replace_allowed_ips=true\n"
        "allowed_ip=100.64.0.2/32\n"
        "allowed_ip=fd00:64::2/128\n"
        "\n"
    ]


def test_set_config_raises_on_nonzero_errno(fake):
    fake("wg1", "errno=22\n\n")
    with pytest.raises(uapi.UapiError) as exc:
        uapi.set_config("wg1", ["listen_port=0"])
    assert exc.value.errno == 22
    assert "wg1" in str(exc.value) and "errno=22" in str(exc.value)


def test_no_errno_in_reply_is_an_error(fake):
    fake("wg2", "")  # the server closes without answering
    with pytest.raises(uapi.UapiError, match="no reply from wireguard-go"):
        uapi.set_config("wg2", ["listen_port=1"])


def test_missing_socket_raises_oserror(tmp_path, monkeypatch):
    monkeypatch.setattr(uapi, "SOCKET_DIR", str(tmp_path))
    with pytest.raises(OSError):
        uapi.get_status("nosuch")


def test_peer_lines_remove():
    assert uapi.peer_lines(bytes.fromhex(PEER1_HEX), remove=True, endpoint="1.2.3.4:5") == [
        f"public_key={PEER1_HEX}",
        "remove=true",
    ]


def test_peer_lines_minimal_does_not_touch_allowed_ips():
    assert uapi.peer_lines(bytes.fromhex(PEER1_HEX)) == [f"public_key={PEER1_HEX}"]


def test_get_status_parses_peers(fake):
    server = fake("wg3", GET_REPLY)
    status = uapi.get_status("wg3")
    assert server.requests == ["get=1\n\n"]
    assert isinstance(status, DeviceStatus)
    assert status.listen_port == 51820
    assert len(status.peers) == 2
    first, second = status.peers
    assert first.public_key == bytes.fromhex(PEER1_HEX)
    assert first.endpoint == "198.18.2.2:51820"
    assert first.latest_handshake == pytest.approx(1700000000.5)
    assert first.tx_bytes == 1234
    assert first.rx_bytes == 5678
    assert first.allowed_ips == ("100.64.0.2/32", "fd00:64::2/128")
    assert first.persistent_keepalive == 25
    assert first.handshake_age(now=1700000010.5) == pytest.approx(10.0)
    assert second.public_key == bytes.fromhex(PEER2_HEX)
    assert second.endpoint is None
    assert second.latest_handshake == 0
    assert second.handshake_age() is None
    assert second.allowed_ips == ()
    assert second.persistent_keepalive == 0
    assert status.peer(bytes.fromhex(PEER2_HEX)) is second
    assert status.peer(b"\0" * 32) is None


def test_get_status_keeps_no_secrets(fake):
    fake("wg4", GET_REPLY)
    status = uapi.get_status("wg4")
    text = repr(status) + str(status)
    assert PRIVATE_HEX not in text
    assert bytes.fromhex(PRIVATE_HEX) not in repr(status).encode()
    assert repr(bytes.fromhex(PRIVATE_HEX)) not in text
    assert PSK_HEX not in text
    assert repr(bytes.fromhex(PSK_HEX)) not in text
    for peer in status.peers:
        assert PRIVATE_HEX not in repr(vars(peer))


def test_get_status_with_errno(fake):
    fake("wg5", "errno=2\n\n")
    with pytest.raises(uapi.UapiError) as exc:
        uapi.get_status("wg5")
    assert exc.value.errno == 2
