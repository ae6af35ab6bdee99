"""Where some of a run's nodes are: this machine, or the machine a worker runs on
(harness.remote). What needs several nodes at once, or the run's record on that
machine (a DNS server's dnsmasq, a reach step's sockets in every source node), runs at
the place of those nodes: `place.apply(function, ...)` calls `function(here, ...)`
there, `place.start(factory, ...)` keeps what `factory(here, ...)` made there. `here`
is that machine's view: its nodes by name, its run record and its work directory.
What goes in and out is plain data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    from harness.cleanup import RunRegistry
    from harness.engine.base import Node

T = TypeVar("T")


@dataclass
class Here:
    """A place's own view (what a function applied there gets)."""

    node: Callable[[str], "Node"]
    registry: "RunRegistry"
    work_dir: Path


class LocalPlace:
    """The nodes on this machine."""

    def __init__(self, here: Here):
        self.here = here

    def apply(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return function(self.here, *args, **kwargs)

    def start(self, factory: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return factory(self.here, *args, **kwargs)
