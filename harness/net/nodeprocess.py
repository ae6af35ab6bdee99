"""A process started in a node and kept where the node is (Node.start(NodeProcess,
argv)): what a step runs in the background and collects later (iperf3's server and
client). Its methods answer in plain data, so the node may be on another machine."""

from __future__ import annotations

import subprocess
from typing import Any, Sequence

from harness.processes import stop_children


class NodeProcess:
    def __init__(self, node: Any, argv: Sequence[str], *, capture: bool = False):
        """`capture`: keep stdout and stderr (as text) for communicate(); else discarded."""
        out = subprocess.PIPE if capture else subprocess.DEVNULL
        self.process = node.popen(list(argv), stdout=out, stderr=out, stdin=subprocess.DEVNULL, text=True)

    def poll(self) -> int | None:
        return self.process.poll()

    def communicate(self, timeout: float) -> tuple[str, str]:
        """Its output once it has exited (subprocess.TimeoutExpired if not by `timeout`)."""
        out, err = self.process.communicate(timeout=timeout)
        return out or "", err or ""

    def close(self) -> None:
        """Stop it (by PID, ours) if it still runs."""
        stop_children([self.process])
