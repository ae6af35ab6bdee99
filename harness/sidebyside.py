"""Calls made side by side in a few threads, for work that waits on another process or
the kernel (a wireguard-go daemon applying 999 peers, the kernel computing their key
agreements): the harness's own Python is one core, and the machine's other cores work
meanwhile."""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")

# a few more threads than cores: each spends most of its time waiting on a socket
DEFAULT_THREADS = min(8, 2 * (os.cpu_count() or 1))


def each_after(
    background: Callable[[T], object], foreground: Callable[[T], object], items: Iterable[T], threads: int = DEFAULT_THREADS
) -> None:
    """`background(item)` for every item, `threads` at a time, and `foreground(item)` in
    the caller's thread, in the items' order, each once its item's background call has
    returned (for what must stay on one thread, e.g. a pyroute2 socket).

    On the first exception no new call starts, and the background calls already running
    finish, so none is left half done while the caller tears down. Then that exception
    is raised, in item order. The same applies on Ctrl-C."""
    items = list(items)
    if threads <= 1 or len(items) <= 1:
        for item in items:
            background(item)
            foreground(item)
        return
    with ThreadPoolExecutor(max_workers=min(threads, len(items)), thread_name_prefix="wgh-side") as pool:
        futures: list[Future] = [pool.submit(background, item) for item in items]
        try:
            for item, future in zip(items, futures):
                future.result()
                foreground(item)
        finally:
            for future in futures:
                future.cancel()  # those not started; the pool's exit waits for the rest
