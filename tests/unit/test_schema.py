"""harness.scenario.schema: the JSON Schema editors use must accept what we ship."""

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.scenario.load import load_file
from harness.scenario.schema import schema, schema_json

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator():
    data = schema()
    jsonschema.Draft202012Validator.check_schema(data)
    return jsonschema.Draft202012Validator(data)


def test_there_are_scenarios_to_check():
    assert SCENARIOS, "no scenarios/*.yaml found"


def test_schema_metadata():
    data = schema()
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert data["title"] == "wgharness scenario (format v1)"
    assert data["additionalProperties"] is False
    assert {"required": ["nodes"], "not": {"required": ["topology"]}} in data["oneOf"]  # nodes, or a Mininet topology


def test_a_topology_replaces_nodes_and_links(validator):
    topology = {"topology": {"mininet": "topos.py:TwoSiteWAN"}, "wireguard": {"hq": {}}}
    assert not list(validator.iter_errors(topology))
    assert list(validator.iter_errors({**topology, "nodes": {"a": {}}}))
    assert list(validator.iter_errors({**topology, "topology": {"mininet": "/etc/x.py:T"}}))


def test_schema_json_is_stable_text():
    text = schema_json()
    assert text.endswith("\n")
    assert json.loads(text) == schema()
    assert schema_json() == text


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_shipped_scenarios_validate(validator, path):
    document = yaml.safe_load(path.read_text())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []
    # and the harness's own loader agrees
    assert load_file(path)


def test_unknown_top_level_key_is_rejected(validator):
    document = yaml.safe_load(SCENARIOS[0].read_text())
    document["nodez"] = {}
    errors = list(validator.iter_errors(document))
    assert errors
    assert any("nodez" in e.message for e in errors)


def test_missing_nodes_is_rejected(validator):
    assert list(validator.iter_errors({"name": "x"}))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["links"][0].__setitem__("mtus", 1400),
        lambda d: d["links"][0].__setitem__("mtu", 10),
        lambda d: d["steps"].append({"sleep": "3 parsecs"}),
        lambda d: d["steps"].append({"pnig": {"from": "a", "to": "b"}}),
        lambda d: d["nodes"].__setitem__("Bad-Name", {}),
    ],
    ids=["unknown-link-key", "mtu-too-small", "bad-duration", "unknown-step", "bad-node-name"],
)
def test_schema_rejects_what_the_loader_rejects(validator, mutate):
    base = {
        "nodes": {"a": {}, "b": {}},
        "links": [{"ends": ["a", "b"]}],
        "wireguard": {"a": {"peers": {"b": {"endpoint": "b"}}}, "b": {}},
        "steps": [{"ping": {"from": "a", "to": "b"}}],
    }
    assert list(validator.iter_errors(base)) == []
    document = copy.deepcopy(base)
    mutate(document)
    assert list(validator.iter_errors(document))


COMMITTED = ROOT / "harness" / "schema" / "scenario.schema.json"


@pytest.mark.skipif(not COMMITTED.exists(), reason="no committed schema copy yet")
def test_committed_schema_matches_the_model():
    # regenerate with: wgh schema > harness/schema/scenario.schema.json
    assert json.loads(COMMITTED.read_text()) == schema()


@pytest.mark.skipif(not COMMITTED.exists(), reason="no committed schema copy yet")
def test_committed_schema_text_is_exactly_schema_json():
    assert COMMITTED.read_text() == schema_json()


def test_wgh_schema_prints_schema_json_verbatim(capsys):
    from argparse import Namespace

    from harness.cli import cmd_schema

    assert cmd_schema(Namespace()) == 0
    assert capsys.readouterr().out == schema_json()
