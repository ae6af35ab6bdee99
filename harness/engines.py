"""The engines that can build a run's network, by name (pure).

An engine turns a plan's nodes and links into something packets cross: the netns
engine makes one named network namespace per node and veth pairs between them. Every
choice list reads this table: `wgh run --engine`, `pytest --wg-engine`, WGH_ENGINE,
a file's `engine:` and the results' environment. The class is named by its import path
so that choosing an engine loads nothing (harness/engine/ holds the implementations).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from harness.errors import HarnessError

DEFAULT = "netns"
ENV_VAR = "WGH_ENGINE"


@dataclass(frozen=True)
class EngineKind:
    name: str
    description: str
    implementation: str  # "module:Class", a class satisfying harness.engine.base.Engine
    needs: frozenset[str] = frozenset({"root"})  # capability names (harness/caps.py) any build of it needs
    # "module:function" listing (pid, name) of the processes that hold its unnamed
    # namespaces, by name: `wgh clean` ends those of runs that left no record
    holders: str | None = None


ENGINES: dict[str, EngineKind] = {
    kind.name: kind
    for kind in (
        EngineKind("netns", "one named network namespace per node (/run/netns), veth pairs for links", "harness.engine.netns:NetnsEngine"),
        EngineKind(
            "mininet",
            "a Mininet network built from the plan as a Topo: hosts in unnamed namespaces held by a shell, veth links",
            "harness.engine.mininet:MininetEngine",
            frozenset({"root", "mininet"}),
            "harness.engine.holders:mininet_shells",
        ),
    )
}
CHOICES: tuple[str, ...] = tuple(ENGINES)


class EngineChoiceError(HarnessError, ValueError):
    """An engine name nobody registered; the message lists the known ones."""


def choose_engine(given: str | None = None, file: str | None = None, environ: dict[str, str] | None = None) -> str:
    """The engine of one scenario: the file's own `engine:` if it has one (as a node's
    own `backend:` wins: the file knows what its topology needs), else the run's
    (`--engine`), else WGH_ENGINE's, else the default."""
    environ = os.environ if environ is None else environ
    for source, name in (("the scenario file", file), ("the command line", given), (ENV_VAR, environ.get(ENV_VAR))):
        if name:
            if name not in ENGINES:
                raise EngineChoiceError(f"{source} asks for engine {name!r}; known engines: {', '.join(CHOICES)}")
            return name
    return DEFAULT
