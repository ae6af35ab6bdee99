"""Nodes of the netns engine: named network namespaces under /run/netns."""

from __future__ import annotations

import socket
import subprocess
from typing import Any, Callable, Sequence, TypeVar

from harness.net import nsexec

T = TypeVar("T")


class NetnsNode:
    """A node built as a named network namespace; `netlink` is the engine's own handle."""

    def __init__(self, name: str, namespace: str, netlink: Any):
        self.name = name
        self.namespace = namespace
        self._netlink = netlink

    @property
    def netns_path(self) -> str:
        return str(nsexec.netns_path(self.namespace))

    def run(self, argv: Sequence[str], *, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return nsexec.run(self.namespace, argv, timeout=timeout)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        return nsexec.popen(self.namespace, argv, **kwargs)

    def socket(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        return nsexec.call_in(self.namespace, lambda: socket.socket(family, kind, proto))

    def call(self, function: Callable[..., T], *args: Any) -> T:
        return nsexec.call_in(self.namespace, function, *args)

    @property
    def netlink(self) -> Any:
        return self._netlink

    def __repr__(self) -> str:
        return f"NetnsNode({self.name!r}, {self.netns_path!r})"
