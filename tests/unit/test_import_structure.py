"""The package's import graph: no cycles (module- or function-level imports), and the
pure layers (the model, the plan, the shared syntax modules) import nothing that acts
on the network, so they can be loaded, tested and reused without root or pyroute2."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pydantic

import harness

PACKAGE_DIR = Path(harness.__file__).parent
# the cause codes are data the model checks `cause:` against: pure, in the diagnosis package
PURE_DIAGNOSIS = ("harness.diagnosis", "harness.diagnosis.causes", "harness.diagnosis.result")
PURE = ("harness.scenario", "harness.plan", "harness.allowedips", "harness.backends", "harness.engines", "harness.nattypes", "harness.endpoint", "harness.dnsnames", "harness.sysctls", "harness.units", "harness.errors", "harness.schedule") + PURE_DIAGNOSIS
SIDE_EFFECTS = ("harness.net", "harness.wg", "harness.steps", "harness.diagnosis", "harness.engine", "harness.run", "harness.cleanup")


def _acts(module: str) -> bool:
    return _within(module, SIDE_EFFECTS) and module not in PURE_DIAGNOSIS


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every harness module `name` imports, at any depth of its code (functions too)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # a package's own __init__ is not an edge of its submodules
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_checker_sees_function_level_imports_and_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    modules = _modules()
    # harness.steps.registry imports step modules only by name at run time; harness.run
    # imports the step runner at module level: both must be seen as edges of the graph
    assert "harness.steps.checks" in _graph()["harness.run"]
    assert len(modules) > 50


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_pure_layers_import_nothing_that_acts_on_the_network():
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in _graph().items()
        if _within(module, PURE) and (module in PURE_DIAGNOSIS or not _within(module, SIDE_EFFECTS))
        for target in targets
        if _acts(target)
    )
    assert wrong == []


def test_loading_and_planning_a_scenario_loads_no_network_code():
    """At run time too: nothing pulls netlink or the step runners in by the back door."""
    script = (
        "import sys\n"
        "from harness.scenario.load import load_file\n"
        "from harness.plan.network import build_plan\n"
        "for name in ('nat-keepalive', 'dns-endpoint', 'mesh', 'lossy-link'):\n"
        "    for case in load_file(f'scenarios/{name}.yaml'):\n"
        "        build_plan(case.spec, 'x1')\n"
        f"bad = sorted(m for m in sys.modules if (any(m == p or m.startswith(p + '.') for p in {SIDE_EFFECTS!r}) and m not in {PURE_DIAGNOSIS!r}) or m.split('.')[0] in ('pyroute2', 'scapy'))\n"
        "print(' '.join(bad))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PACKAGE_DIR.parent, check=True)
    assert completed.stdout.split() == []


# dns, reach, link conditions (both ways, one way, bursty loss) and a link step
EVERYTHING = {
    "nodes": {"laptop": {}, "home": {"router": True, "dns": {"vpn.wgh.test": "vpn"}}, "vpn": {}},
    "links": [
        {"ends": ["laptop", "home"], "delay": "20ms", "rate": "10mbit", "towards": {"laptop": {"gilbert_elliott": {"p": 1, "r": 10}}}},
        {"ends": ["home", "vpn"], "loss": "1%"},
    ],
    "wireguard": {"vpn": {}, "laptop": {"peers": {"vpn": {"endpoint": "vpn.wgh.test:51820"}}}},
    "steps": [{"reach": {"among": ["laptop", "vpn"]}}, {"link": {"name": "home-vpn", "delay": "5ms"}}],
}


def _pydantic_values(value, path: str = "plan") -> list[str]:
    """Where in `value` (dataclasses, mappings, sequences, all the way down) a pydantic model sits."""
    if isinstance(value, pydantic.BaseModel):
        return [f"{path}: {type(value).__name__}"]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [found for f in dataclasses.fields(value) for found in _pydantic_values(getattr(value, f.name), f"{path}.{f.name}")]
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in _pydantic_values(k, f"{path}[key]") + _pydantic_values(v, f"{path}[{k!r}]")]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [found for i, item in enumerate(value) for found in _pydantic_values(item, f"{path}[{i}]")]
    return []


def test_the_plan_is_plain_data_without_the_spec():
    """The plan is the only input to a build: it holds no scenario model, neither the
    spec nor any part of it (link conditions are the plan's own Conditions)."""
    from harness.plan.network import NetworkPlan, build_plan
    from harness.plan.types import Conditions
    from harness.scenario.load import load_data, load_file

    assert "spec" not in {f.name for f in dataclasses.fields(NetworkPlan)}
    (case,) = load_data(EVERYTHING)
    plan = build_plan(case.spec, "x1")
    assert not hasattr(plan, "spec")
    assert plan.nodes["home"].dns and isinstance(plan.veths[0].egress("laptop"), Conditions)  # the walk sees them
    assert _pydantic_values(plan) == []
    for path in sorted((PACKAGE_DIR.parent / "scenarios").glob("*.yaml")):
        for case in load_file(str(path)):
            assert _pydantic_values(build_plan(case.spec, "x1"), f"{path.name}: plan") == []


def test_the_walk_finds_a_model_anywhere():
    from harness.scenario.model import Impairment

    @dataclasses.dataclass(frozen=True)
    class Holder:
        inner: object

    assert _pydantic_values(Holder({"a": (1, Impairment())})) == ["plan.inner['a'][1]: Impairment"]
