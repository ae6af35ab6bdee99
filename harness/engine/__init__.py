"""Engines: what builds a plan into real (or emulated) hosts, and the handle the steps,
the WireGuard fleet and the diagnosis use to act inside one of them.

- `base`: the `Engine` protocol (build, the timeline's operations, close) and the
  `Node` protocol (a built host: its network namespace by path, commands, sockets and
  netlink opened inside it).
- `underlay`: what every engine whose nodes are network namespaces shares (the node
  handle, node preparation, veths, and everything configured once they exist).
- `netns`: the netns engine (named namespaces under /run/netns, veth pairs).
- `mininet`: the Mininet engine (the plan as a Topo; Mininet's hosts, unnamed
  namespaces held by shells, and links).
- `fake`: an engine whose nodes do nothing on the host, for unit tests of steps and
  diagnosis.

`make_engine(name)` builds the one harness/engines.py names; a pytest conftest may
supply its own through the `pytest_wgh_make_engine` hook.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from harness.engines import ENGINES, EngineChoiceError

if TYPE_CHECKING:
    from harness.engine.base import Engine


def make_engine(name: str) -> "Engine":
    """A new, unbuilt engine of kind `name` (one per run)."""
    kind = ENGINES.get(name)
    if kind is None:
        raise EngineChoiceError(f"unknown engine {name!r}; known engines: {', '.join(ENGINES)}")
    module, _, cls = kind.implementation.partition(":")
    return getattr(importlib.import_module(module), cls)()
