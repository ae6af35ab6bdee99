"""The backend table, the userspace command template, and every choice list reading them."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from harness.backends import BACKENDS, CHOICES, USERSPACE, TemplateError, UserspaceCommand
from harness.cli import build_parser
from harness.errors import ScenarioError
from harness.plan.network import build_plan
from harness.scenario.load import load_data
from harness.scenario.model import WireGuardSpec

PAIR = {
    "nodes": {"a": {}, "b": {}},
    "links": [{"ends": ["a", "b"]}],
    "wireguard": {"a": {"peers": {"b": {"endpoint": "b"}}}, "b": {"backend": "kernel"}},
}


def test_a_template_becomes_arguments_without_a_shell():
    command = UserspaceCommand.parse("boringtun-cli --foreground --log '/tmp/x y.log' {ifname}")
    assert command.argv_for("wgh0abc") == ["boringtun-cli", "--foreground", "--log", "/tmp/x y.log", "wgh0abc"]
    assert command.program == "boringtun-cli"
    # shell syntax is just text: no expansion, no second command
    assert UserspaceCommand.parse("wg-go {ifname}; reboot").argv_for("w") == ["wg-go", "w;", "reboot"]


@pytest.mark.parametrize(
    "template, message",
    [
        ("", "empty"),
        ("wireguard-go -f wg0", r"\{ifname\}"),
        ("wireguard-go {iface}", r"unknown placeholder \{iface\}"),
        ("wireguard-go 'unclosed {ifname}", "cannot split"),
        ("wireguard-go\n{ifname}", "one printable line"),
        ("x " * 300 + "{ifname}", "at most 500"),
    ],
)
def test_bad_templates_say_why(template, message):
    with pytest.raises(TemplateError, match=message):
        UserspaceCommand.parse(template)


def test_every_choice_list_reads_the_table():
    assert CHOICES == ("auto", *BACKENDS)
    run = build_parser().parse_args(["run", "--backend", USERSPACE, "--userspace", "wireguard-go -f {ifname}", "x.yaml"])
    assert (run.backend, run.userspace) == (USERSPACE, "wireguard-go -f {ifname}")
    assert WireGuardSpec.model_json_schema()["properties"]["backend"]["anyOf"][0]["enum"] == list(CHOICES)
    schema = json.loads(resources.files("harness").joinpath("schema/results.schema.json").read_text())
    assert schema["properties"]["environment"]["properties"]["backend_requested"]["enum"] == list(CHOICES)
    assert schema["$defs"]["scenario"]["properties"]["backends"]["additionalProperties"]["enum"] == list(BACKENDS)


def test_the_plan_gives_the_command_only_to_userspace_nodes():
    case = load_data(PAIR)[0]
    command = UserspaceCommand.parse("wireguard-go -f {ifname}")
    plan = build_plan(case.spec, "t00001", USERSPACE, command)
    assert (plan.wireguard["a"].backend, plan.wireguard["a"].userspace) == (USERSPACE, command)
    assert (plan.wireguard["b"].backend, plan.wireguard["b"].userspace) == ("kernel", None)


def test_a_file_may_name_the_userspace_backend_but_not_its_command():
    load_data({**PAIR, "wireguard": {"a": {"backend": "userspace"}, "b": {}}})
    with pytest.raises(ScenarioError, match="backend"):
        load_data({**PAIR, "wireguard": {"a": {"backend": {"userspace": "rm -rf / {ifname}"}}, "b": {}}})
