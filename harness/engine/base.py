"""The handle of one built host, whatever engine built it.

Steps and the diagnosis never name a namespace: they ask `network.node(name)` for a
`Node` and act through it. Only the engine knows whether the host is a named
namespace (/run/netns/<name>), an unnamed one held by a process
(/proc/<pid>/ns/net, as Mininet's hosts are), or nothing at all (a fake in tests).
"""

from __future__ import annotations

import socket
import subprocess
from typing import Any, Callable, Protocol, Sequence, TypeVar, runtime_checkable

T = TypeVar("T")


@runtime_checkable
class Node(Protocol):
    name: str

    @property
    def netns_path(self) -> str:
        """Its network namespace as a path another process can enter."""

    def run(self, argv: Sequence[str], *, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run a command inside it to completion, output captured as text."""

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        """Start a command inside it (it dies with the harness)."""

    def socket(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        """A socket opened inside it; it stays there wherever it is used from."""

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run a Python function in a thread inside its network namespace."""

    @property
    def netlink(self) -> Any:
        """A cached rtnetlink handle (pyroute2 IPRoute) opened inside it."""


def send_datagram(node: Node, address: str, payload: bytes = b"wgharness handshake probe", port: int = 9) -> None:
    """One UDP datagram from `node` to `address` (the discard port): into the tunnel,
    enough to start a handshake. Errors (no route, no peer) are ignored: the diagnosis
    says what they were."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with node.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(payload, (address, port))
        except OSError:
            pass
