"""Choosing an engine: the table, precedence, and every choice list reading it."""

from __future__ import annotations

import json
import textwrap
from importlib import resources

import pytest

from harness.cli import build_parser
from harness.engine import make_engine
from harness.engine.base import Engine
from harness.engine.fake import FakeEngine, FakeWorld
from harness.engines import CHOICES, DEFAULT, ENGINES, EngineChoiceError, choose_engine
from harness.errors import ScenarioError
from harness.scenario.load import load_text
from harness.scenario.model import ScenarioSpec


def test_precedence_is_file_then_command_line_then_environment_then_default():
    env = {"WGH_ENGINE": "netns"}
    assert choose_engine(None, None, {}) == DEFAULT
    assert choose_engine(None, None, env) == "netns"
    assert choose_engine("netns", None, {"WGH_ENGINE": "bogus"}) == "netns", "the command line wins over the environment"
    assert choose_engine("bogus-cli", "netns", {}) == "netns", "a file's own engine wins, as a node's backend does"


@pytest.mark.parametrize(
    "given, file, env, source",
    [("mininet2", None, {}, "the command line"), (None, "lxc", {}, "the scenario file"), (None, None, {"WGH_ENGINE": "docker"}, "WGH_ENGINE")],
)
def test_an_unknown_engine_names_where_it_came_from_and_the_known_ones(given, file, env, source):
    with pytest.raises(EngineChoiceError) as caught:
        choose_engine(given, file, env)
    assert source in str(caught.value) and "known engines: netns" in str(caught.value)


def test_every_registered_engine_builds_and_satisfies_the_protocol():
    for name in ENGINES:
        engine = make_engine(name)
        assert isinstance(engine, Engine), f"{name}: {type(engine).__name__} lacks part of the Engine protocol"
        assert engine.name == name
    assert isinstance(FakeEngine(FakeWorld()), Engine)
    with pytest.raises(EngineChoiceError):
        make_engine("nope")


def test_every_choice_list_reads_the_table():
    assert CHOICES == tuple(ENGINES)
    run = build_parser().parse_args(["run", "--engine", "netns", "x.yaml"])
    assert run.engine == "netns"
    choice = ScenarioSpec.model_json_schema()["properties"]["engine"]["anyOf"][0]
    assert choice.get("enum", [choice.get("const")]) == list(CHOICES)  # one choice is written as a const
    schema = json.loads(resources.files("harness").joinpath("schema/results.schema.json").read_text())
    assert schema["$defs"]["scenario"]["properties"]["engine"]["enum"] == list(CHOICES)


def test_a_file_may_name_its_engine_and_a_wrong_one_is_a_located_error():
    base = "nodes: {a: {}, b: {}}\nlinks: [{ends: [a, b]}]\n"
    (case,) = load_text(base + "engine: netns\n", "ok.yaml")
    assert case.spec.engine == "netns"
    with pytest.raises(ScenarioError) as caught:
        load_text(base + "engine: lxd\n", "bad.yaml")
    problem = str(caught.value)
    assert "bad.yaml:3" in problem and "engine" in problem and "netns" in problem


def test_a_run_records_its_engine():
    from harness.run import ScenarioResult

    (case,) = load_text(textwrap.dedent("nodes: {a: {}}\n"), "one.yaml")
    result = ScenarioResult(case, engine="netns")
    assert result.to_json()["engine"] == "netns"
    assert "engine" not in ScenarioResult(case).to_json(), "a case skipped before choosing an engine records none"


def test_wgh_run_help_describes_every_backend_and_engine(capsys):
    from harness.backends import BACKENDS

    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    shown = capsys.readouterr().out
    for kind in list(BACKENDS.values()) + list(ENGINES.values()):
        assert kind.description in shown


def test_an_engines_own_needs_are_asked_of_the_host(monkeypatch):
    # an engine that needs what this host lacks makes its cases skip, saying what is missing
    from dataclasses import replace

    from harness import caps, run

    case = load_text("name: x\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b]}]\nsteps: [{sleep: 0s}]\n", "x.yaml")[0]
    monkeypatch.setattr(caps, "is_root", lambda: True)
    monkeypatch.setattr(caps, "netem", lambda: False)
    assert run.missing_for(case, "wireguard-go", None, "netns") == []
    monkeypatch.setitem(ENGINES, "netns", replace(ENGINES["netns"], needs=frozenset({"root", "netem"})))
    missing = run.missing_for(case, "wireguard-go", None, "netns")
    assert len(missing) == 1 and "sch_netem" in missing[0]


def test_engines_over_other_machines_satisfy_the_protocol_and_say_they_are_elsewhere():
    from harness.hosts.engine import MultiHostEngine
    from harness.hosts.inventory import parse_inventory

    spread = MultiHostEngine(parse_inventory("hosts:\n  alpha: {underlay: 192.0.2.1}\n", "hosts.yaml"))
    assert isinstance(spread, Engine) and spread.elsewhere
    assert not make_engine("netns").elsewhere and make_engine("netns").place("a") is None


def test_what_a_case_needs_is_asked_of_its_engine_and_a_lack_skips_it_naming_where(monkeypatch):
    """Over several hosts the hosts answer, not this machine: the engine's own answer
    skips the case, and the engine (nothing built) is let go."""
    from harness import caps
    from harness.run import run_case
    from harness.scenario.load import load_data

    monkeypatch.setattr(caps, "is_root", lambda: True)
    asked, closed = [], []

    class Elsewhere(FakeEngine):
        def missing(self, needs, backend, userspace):
            asked.append(set(needs))
            return ["host beta: needs sch_netem, which this kernel lacks"]

        def close(self):
            closed.append(True)

    (case,) = load_data({"nodes": {"a": {}, "b": {}}, "links": [{"ends": ["a", "b"], "delay": "5ms"}], "steps": []})
    result = run_case(case, engine_factory=lambda name: Elsewhere(FakeWorld()))
    assert result.status == "skipped" and result.error == "host beta: needs sch_netem, which this kernel lacks"
    assert asked == [{"root", "netem"}] and closed == [True]


def test_an_engines_namespace_holders_are_found_by_its_own_registered_finder():
    import importlib

    for kind in ENGINES.values():
        if kind.holders:
            module, _, function = kind.holders.partition(":")
            assert callable(getattr(importlib.import_module(module), function)), kind.holders
    assert ENGINES["mininet"].holders == "harness.engine.holders:mininet_shells"
