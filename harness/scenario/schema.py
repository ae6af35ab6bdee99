"""The JSON Schema of the scenario format, generated from the model for editors
(yaml-language-server, VS Code). `wgh schema` prints it; schema/scenario.schema.json
is the committed copy, kept equal by a test."""

from __future__ import annotations

import json

from harness.scenario.model import ScenarioSpec


def schema() -> dict:
    data = ScenarioSpec.model_json_schema(by_alias=True)
    data["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    data["title"] = "wgharness scenario (format v1)"
    return data


def schema_json() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"
