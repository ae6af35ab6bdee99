"""Names of everything a run creates. All carry the run id, so runs never collide
and a reaper can tell a crashed run's leftovers from anything else on the host."""

from __future__ import annotations

import re
import secrets
import string

RUN_ID_LENGTH = 6
_ALPHABET = string.ascii_lowercase + string.digits

# a node's namespace, or a LAN's bridge's (`lan-<N>`: a '-' no node name has)
NAMESPACE_RE = re.compile(r"^wgh-(?P<run>[a-z0-9]{6})-(?P<node>[a-z][a-z0-9_]{0,14}|lan-\d{1,5})$")
# up to 15 characters: the run's 9, then the node's index (6 digits: past any group's size)
WG_IFNAME_RE = re.compile(r"^wgh(?P<run>[a-z0-9]{6})(?P<index>\d{1,6})$")


def new_run_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(RUN_ID_LENGTH))


def namespace_name(run_id: str, node: str) -> str:
    return f"wgh-{run_id}-{node}"


def lan_namespace_name(run_id: str, position: int) -> str:
    """The namespace of a LAN's bridge (`position` from 1): never a node's name."""
    return f"wgh-{run_id}-lan-{position}"


def wg_ifname(run_id: str, index: int) -> str:
    """Host-wide unique (wireguard-go's UAPI sockets are not per namespace), ≤ 15 chars."""
    return f"wgh{run_id}{index}"


def veth_name(position: int) -> str:
    """Underlay interfaces live inside the run's namespaces, so short names suffice."""
    return f"eth{position}"


def run_of(name: str) -> str | None:
    """The run id a namespace or interface/socket name belongs to, if it is ours."""
    for pattern in (NAMESPACE_RE, WG_IFNAME_RE):
        match = pattern.match(name)
        if match:
            return match.group("run")
    return None
