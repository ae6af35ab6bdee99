"""The JSON Schema of the scenario format, generated from the model for editors
(yaml-language-server, VS Code). `wgh schema` prints it; schema/scenario.schema.json
is the committed copy, kept equal by a test."""

from __future__ import annotations

import json

from harness.scenario.model import ScenarioSpec


def _close_pattern_maps(node: object) -> None:
    """Mappings keyed by node name: reject names that don't match, as the loader does."""
    if isinstance(node, dict):
        if "patternProperties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _close_pattern_maps(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_maps(value)


def schema() -> dict:
    data = ScenarioSpec.model_json_schema(by_alias=True)
    _close_pattern_maps(data)
    # nodes and links come either from the file or from a Mininet Topo (`topology:`)
    data["required"] = [name for name in data.get("required", []) if name != "nodes"]
    data["oneOf"] = [{"required": ["nodes"], "not": {"required": ["topology"]}}, {"required": ["topology"], "not": {"anyOf": [{"required": ["nodes"]}, {"required": ["links"]}]}}]
    data["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    data["title"] = "wgharness scenario (format v1)"
    return data


def schema_json() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"
