"""Every step kind the file format accepts has exactly one runner, found by name; the
format's side of a kind is declared once (harness/scenario/steps/) and the union,
STEP_KINDS, the schema, the validation dispatch and the requirements follow from it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.scenario import schema
from harness.scenario.load import load_data, load_file
from harness.scenario.model import STEP_KINDS, step_kind
from harness.scenario.steps import registry as kinds
from harness.scenario.steps.basic import PingArgs
from harness.scenario.validate import check_references
from harness.steps import registry

ROOT = Path(__file__).resolve().parents[2]


def test_every_step_kind_of_the_format_has_a_runner_and_no_runner_is_orphaned():
    assert registry.registered_kinds() == frozenset(kinds.names())


def test_a_second_runner_for_a_kind_is_refused():
    first = registry.runner("sleep")

    def impostor(network, index, args):
        raise AssertionError("never runs")

    with pytest.raises(ValueError, match="two runners"):
        registry.runs("sleep")(impostor)
    assert registry.runner("sleep") is first


def test_an_unknown_kind_names_the_known_ones():
    with pytest.raises(LookupError, match="no runner registered for step kind 'teleport'.*handshake"):
        registry.runner("teleport")


# --- the format's side ---------------------------------------------------------------


def test_the_kinds_the_format_knows_are_the_registry_s_in_its_order():
    assert STEP_KINDS == kinds.names()
    steps = schema.schema()["properties"]["steps"]["items"]["oneOf"]
    assert [s["$ref"].rpartition("/")[2] for s in steps] == [k.wrapper.__name__ for k in kinds.kinds()]
    assert kinds.kind("ping").args is PingArgs
    assert kinds.kind("nat_rebind").wrapper.__name__ == "NatRebindStep"


def test_a_kind_declared_twice_is_refused():
    before = kinds.names()
    with pytest.raises(ValueError, match="'ping' is declared twice"):
        kinds.step("ping", PingArgs)
    assert kinds.names() == before


def test_a_kind_declared_after_the_union_was_built_is_refused():
    # the model (imported above) has built its union: a kind added now would not be in it
    with pytest.raises(RuntimeError, match="after the Step union was built"):
        kinds.step("teleport", PingArgs)
    assert "teleport" not in kinds.names()


def test_validation_calls_each_kind_s_checks_for_each_of_its_steps(monkeypatch):
    """check_references has no list of kinds: it calls what each kind declared, per step."""
    called: list[tuple[str, str, int]] = []

    def spy(round_name, kind, check):
        def wrapped(args, view):
            called.append((round_name, kind, view.path[1]))
            return check(args, view)

        return wrapped

    for entry in kinds.kinds():
        checks = {f: spy(f, entry.name, getattr(entry, f)) for f in ("check", "check_plan") if getattr(entry, f) is not None}
        monkeypatch.setitem(kinds._KINDS, entry.name, dataclasses.replace(entry, **checks))
    files = sorted((ROOT / "scenarios").glob("*.yaml"))
    seen = set()
    for path in files:
        for case in load_file(path):
            expected = [
                (round_name, step_kind(s), i)
                for round_name in ("check", "check_plan")
                for i, s in enumerate(case.spec.steps)
                if getattr(kinds.kind(step_kind(s)), round_name) is not None
            ]
            del called[:]
            assert check_references(case.spec, case.source) == []
            assert called == expected, case.id
            seen |= {kind for _, kind, _ in expected}
    assert {"ping", "link", "stop", "reach", "endpoint"} <= seen  # both rounds were exercised


@pytest.mark.parametrize("change, netem", [({"delay": "10ms"}, True), ({"towards": {"b": {"loss": 1}}}, True), ({"up": False}, False), ({"rate": "1mbit"}, False)])
def test_a_step_s_needs_join_the_case_s_requirements(change, netem):
    from harness.run import requirements

    (case,) = load_data({"nodes": {"a": {}, "b": {}}, "links": [{"ends": ["a", "b"]}], "steps": [{"link": {"name": "a-b", **change}}]})
    assert ("netem" in requirements(case)) is netem


# a kind declared outside the harness (in a subprocess: the registry is sealed here)
THROWAWAY = textwrap.dedent(
    """
    import json
    from harness.scenario.fields import NodeName, Strict
    from harness.scenario.steps.registry import step

    class TeleportArgs(Strict):
        node: NodeName

    def check(args, c):
        if args.node not in c.spec.nodes:
            c.problem(f"no node '{args.node}' to teleport", "node")

    step("teleport", TeleportArgs, check=check, needs=lambda args: {"teleporter"})

    from harness.errors import ScenarioError
    from harness.run import requirements
    from harness.scenario.load import load_text
    from harness.scenario.model import STEP_KINDS
    from harness.scenario.schema import schema

    text = "nodes: {a: {}}\\nsteps:\\n  - teleport: {node: %s}\\n"
    (case,) = load_text(text % "a", "t.yaml")
    try:
        load_text(text % "b", "t.yaml")
        problems = []
    except ScenarioError as exc:
        problems = [str(p) for p in exc.problems]
    try:
        load_text(text.replace("teleport", "teleprot") % "a", "t.yaml")
    except ScenarioError as exc:
        problems += [str(p) for p in exc.problems]
    steps = schema()["properties"]["steps"]["items"]["oneOf"]
    print(json.dumps({
        "kinds": list(STEP_KINDS),
        "schema": steps[-1]["$ref"],
        "problems": problems,
        "needs": sorted(requirements(case)),
    }))
    """
)


def test_a_new_kind_is_one_declaration_and_everything_follows():
    proc = subprocess.run([sys.executable, "-c", THROWAWAY], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["kinds"] == list(STEP_KINDS) + ["teleport"]
    assert out["schema"] == "#/$defs/TeleportStep"
    assert out["problems"] == [
        "t.yaml:3: steps[0].teleport.node: no node 'b' to teleport",
        "t.yaml:3: steps[0]: unknown step 'teleprot' (did you mean 'teleport'?)",
    ]
    assert out["needs"] == ["root", "teleporter"]
