"""Waiting for one descriptor to become readable.

select() cannot watch a descriptor numbered 1 024 or above (FD_SETSIZE): it raises
ValueError. A 1 000-node run holds thousands of descriptors, so the sockets a step
opens late are numbered past that. poll() has no such limit.
"""

from __future__ import annotations

import select
from typing import Any


def readable(fileobj: Any, timeout: float | None) -> bool:
    """Whether `fileobj` (a socket, file or descriptor) is readable within `timeout`
    seconds (None: wait for ever)."""
    poller = select.poll()
    poller.register(fileobj, select.POLLIN)
    return bool(poller.poll(None if timeout is None else max(0.0, timeout) * 1000))
