"""Which sysctls a scenario file may set (pure).

A sysctl name becomes a path under /proc/sys, written as root from a thread that has
entered only the node's *network* namespace. Everything outside /proc/sys/net is the
host's own (kernel.hostname, kernel.core_pattern, vm.*), and so is anything that is not
a plain dotted name (an absolute path, '..'). Only `net.*` names made of plain
components are allowed; whether such a key is per network namespace is decided by the
kernel: keys that are global (net.core.rmem_max, …) do not exist inside a new
namespace, and writing them fails the build with a message naming the key.
"""

from __future__ import annotations

import re

# net.<family>.<...>: components are letters, digits, '_' and '-' (interface names such
# as eth0 or wgh…); no '/', no '..', no empty component
SYSCTL_NAME_PATTERN = r"^net(\.[A-Za-z0-9_-]{1,64}){2,6}$"
_NAME = re.compile(SYSCTL_NAME_PATTERN)
# values are numbers or short words, possibly several separated by blanks (e.g.
# `net.ipv4.ip_local_port_range: 1024 65000`); no newlines: one write, one value
SYSCTL_VALUE_PATTERN = r"^[A-Za-z0-9_.:-]+( [A-Za-z0-9_.:-]+){0,7}$"
_VALUE = re.compile(SYSCTL_VALUE_PATTERN)


def sysctl_name_problem(name: object) -> str | None:
    """Why `name` may not be set from a scenario file, or None if it may."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return (
            f"{name!r} is not allowed: only per-network-namespace sysctls may be set, written as dotted "
            "names under net. (e.g. net.ipv4.conf.all.rp_filter); other keys would change the host itself"
        )
    return None


def sysctl_value_problem(value: object) -> str | None:
    if isinstance(value, bool):
        return f"expected a number or a word, got {value!r}"
    if isinstance(value, int):
        return None
    if not isinstance(value, str) or not _VALUE.fullmatch(value):
        return f"expected a number or short words without newlines, got {value!r}"
    return None
