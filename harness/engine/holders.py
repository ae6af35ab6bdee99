"""What holds an engine's unnamed namespaces, found by name: `wgh clean` sweeps with
these for runs that left no record (harness.engines names each engine's finder, so
the shared reaper knows no engine by itself)."""

from __future__ import annotations

from harness.processes import command_lines


def mininet_shells() -> list[tuple[int, str]]:
    """(pid, host name) of every Mininet host shell on the host (`bash … mininet:<name>`):
    each holds its host's namespace."""
    found = []
    for pid, argv in command_lines():
        name = next((a[len("mininet:"):] for a in argv[1:] if a.startswith("mininet:")), None)
        if name is not None:
            found.append((pid, name))
    return found
