"""One UDP datagram sent from inside a node."""

from __future__ import annotations

import socket

from harness.net import nsexec

DISCARD_PORT = 9


def send_datagram(namespace: str, address: str, payload: bytes = b"wgharness handshake probe") -> None:
    """One UDP datagram to `address` (discard port) from inside `namespace`: into the
    tunnel, enough to start a handshake. Errors (no route, no peer) are ignored: the
    diagnosis says what they were."""

    def send() -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(payload, (address, DISCARD_PORT))
            except OSError:
                pass

    nsexec.call_in(namespace, send)
