"""A scenario file's `topology: {mininet: "topos.py:TwoSiteWAN", args: {...}}`: a Mininet
`Topo` class from a Python file next to the scenario, whose hosts become the file's
nodes (the `wireguard:` and `steps:` sections name them). Loading it runs that file's
code, as Mininet's own `mn --custom` does: so the path must stay inside the scenario
file's own directory, and the file is imported once per process and path.

Pure as far as the harness goes (no root, nothing built): the Topo is only declared
here; harness.engine.topology builds it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.scenario.yamlsource import beside_scenario

NAME = re.compile(r"^[a-z][a-z0-9_]{0,14}$")  # as a scenario's node names


class TopologyError(HarnessError, ValueError):
    """The topology cannot be loaded; the message says why and names the path."""


def topology_path(reference: str, scenario_file: str) -> tuple[Path, str]:
    """('<dir>/topos.py', 'TwoSiteWAN') for 'topos.py:TwoSiteWAN' named in `scenario_file`
    (a file given as text or data is relative to the working directory)."""
    relative, _, class_name = reference.rpartition(":")
    try:
        return beside_scenario(relative, scenario_file, "a topology"), class_name
    except ValueError as exc:
        raise TopologyError(str(exc)) from None


def load_topology(reference: str, args: dict[str, Any], scenario_file: str) -> Any:
    """An instance of the named Topo class, built with `args` (its `build()` keywords)."""
    path, class_name = topology_path(reference, scenario_file)
    module = _import(path, path.stat().st_mtime_ns)
    cls = getattr(module, class_name, None)
    try:
        from mininet.topo import Topo
    except ImportError:
        raise TopologyError("a Mininet topology needs the mininet Python module: scripts/install.sh installs it") from None
    if not (isinstance(cls, type) and issubclass(cls, Topo)):
        raise TopologyError(f"{path.name} has no Topo subclass {class_name!r}")
    try:
        return cls(**args)
    except Exception as exc:
        raise TopologyError(f"{class_name}(**{args!r}) failed: {type(exc).__name__}: {exc}") from exc


def topology_nodes(topo: Any) -> list[str]:
    """The Topo's hosts (routers added with addNode included; switches are not nodes of
    the scenario), checked to be valid node names."""
    names = list(topo.hosts(sort=False))
    bad = [name for name in names if not NAME.match(name)]
    if bad:
        raise TopologyError(f"host names {bad} cannot be scenario nodes: lowercase letters, digits and '_', at most 15, starting with a letter")
    return names


@cache
def _import(path: Path, mtime: int) -> Any:
    name = f"wgh_topology_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TopologyError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    directory = str(path.parent)
    added = directory not in sys.path
    if added:  # its own imports of neighbouring files work, as under `mn --custom`
        sys.path.insert(0, directory)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise TopologyError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if added:
            sys.path.remove(directory)
    return module
