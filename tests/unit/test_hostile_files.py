"""The hostile corpus (tests/hostile/): every file is rejected with `file:line: …`,
exit 2, quickly and in bounded memory, and never reaches the host."""

from __future__ import annotations

import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario.load import load_file

CORPUS = sorted((Path(__file__).parent.parent / "hostile").glob("*.yaml"))
PROBLEM_LINE = re.compile(r"^(?P<file>[^:\n]+\.yaml):(?P<line>\d+): \S")


def test_corpus_is_there():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_each_hostile_file_is_rejected_with_a_line(path):
    with pytest.raises(ScenarioError) as err:
        load_file(path)
    for problem in err.value.problems:
        assert problem.file == str(path)
        assert problem.line is not None and problem.line >= 1, str(problem)
        assert "\n" not in str(problem), f"an error message spans lines: {problem!s}"


def _limits() -> None:
    gib = 1 << 30
    resource.setrlimit(resource.RLIMIT_AS, (2 * gib, 2 * gib))  # an expansion bomb dies, not the machine


def test_wgh_validate_rejects_the_whole_corpus_with_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "validate", *map(str, CORPUS)],
        capture_output=True, text=True, timeout=60, preexec_fn=_limits,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(PROBLEM_LINE.match(line) for line in lines), "\n".join(l for l in lines if not PROBLEM_LINE.match(l))
    assert {PROBLEM_LINE.match(line)["file"] for line in lines} == {str(p) for p in CORPUS}


@pytest.mark.parametrize(
    "key",
    ["/etc/hostname", "kernel.hostname", "kernel.core_pattern", "vm.swappiness", "fs.protected_symlinks",
     "net.ipv4/../../kernel.hostname", "net..ipv4", "net.ipv4.", "net", "net.ipv4", "net/ipv4/ip_forward", " net.ipv4.ip_forward"],
)
def test_only_network_namespace_sysctls_are_allowed(key):
    from harness.scenario.load import load_data

    with pytest.raises(ScenarioError) as err:
        load_data({"nodes": {"a": {"sysctls": {key: 1}}}})
    assert "only per-network-namespace sysctls" in str(err.value)


def test_allowed_sysctls_still_validate():
    from harness.scenario.load import load_data

    (case,) = load_data({"nodes": {"a": {"sysctls": {"net.ipv4.conf.all.rp_filter": 2, "net.ipv4.conf.eth0.forwarding": "1", "net.ipv4.ip_local_port_range": "1024 65000"}}}})
    assert case.spec.nodes["a"].sysctls["net.ipv4.conf.eth0.forwarding"] == "1"


def test_the_sysctl_writer_refuses_other_paths_by_itself():
    """Defence in depth: even a name that skipped validation never becomes a host path."""
    from harness.net import nsexec

    for name in ("kernel.hostname", "/tmp/x", "net.ipv4/../../kernel"):
        with pytest.raises(ValueError):
            nsexec.write_sysctls("wgh-never-created", {name: "1"})


# every string a file may give that is not constrained by the schema itself (a pattern or
# a list of choices), and where it is checked; a new free string must be added here
# with its check, or it is an injection point waiting to happen
PARSED_STRINGS = {
    "EndpointArgs.to": "endpoint syntax (scenario/steps/timeline.py)",
    "PeerSpec.endpoint": "endpoint syntax (validate.py)",
    "LearnedEndpointArgs.is": "address:port (scenario/steps/wgstate.py)",
    "PingArgs.to": "node name or IP address (scenario/steps/basic.py)",
    "ProbeArgs.to": "node name or IP address (scenario/steps/background.py)",
    "PingArgs.source": "an address of the node (validate.py)",
    "LinkSpec.addresses": "HostInterface",
    "LanSpec.subnet": "Subnet (scenario/fields.py)",
    "LanSpec.subnet6": "Subnet (scenario/fields.py)",
    "WireGuardSpec.address": "HostInterface",
    "PeerSpec.allowed_ips": "CIDR or node name (validate.py)",
    "RoamArgs.renumber": "IP interface",
    "*.cause": "Text: printable, one line",
    "ScenarioSpec.description": "Text: printable, one line",
    "TopologySpec.args": "Text: printable, one line; only ever a keyword value of the Topo's own build()",
}


def test_every_free_string_in_the_schema_is_accounted_for():
    from harness.scenario.model import ScenarioSpec

    schema = ScenarioSpec.model_json_schema(by_alias=True)
    free = set()

    def walk(node, model, prop):
        if isinstance(node, dict):
            if node.get("type") == "string" and not any(k in node for k in ("pattern", "enum", "const")):
                free.add(f"{model}.{prop}")
            for key, value in node.items():
                if key == "properties":
                    for name, sub in value.items():
                        walk(sub, model, name)
                elif key == "$defs":
                    for name, sub in value.items():
                        walk(sub, name, None)
                else:
                    walk(value, model, prop)
        elif isinstance(node, list):
            for value in node:
                walk(value, model, prop)

    walk(schema, "ScenarioSpec", None)
    unknown = {f for f in free if f not in PARSED_STRINGS and f"*.{f.split('.')[-1]}" not in PARSED_STRINGS}
    assert not unknown, f"free-form strings without a stated check: {sorted(unknown)}"


BASE = {
    "nodes": {"a": {}, "b": {}},
    "links": [{"ends": ["a", "b"]}],
    "wireguard": {"a": {"peers": {"b": {"endpoint": "b"}}}, "b": {}},
    "steps": [{"handshake": {"between": ["a", "b"]}}],
}


@pytest.mark.parametrize(
    "path, value",
    [
        (("steps", 0), {"ping": {"from": "a", "to": "-f"}}),
        (("steps", 0), {"ping": {"from": "a", "to": "b", "source": "-I eth0"}}),
        (("steps", 0), {"ping": {"from": "a", "to": "$(reboot)"}}),
        (("steps", 0), {"endpoint": {"node": "a", "peer": "b", "to": "$(reboot):51820"}}),
        (("steps", 0), {"learned_endpoint": {"node": "a", "peer": "b", "is": "x;y:1"}}),
        (("steps", 0), {"capture": {"name": "../x", "link": "a-b"}}),
        (("steps", 0), {"probe": {"name": "a b", "from": "a", "to": "b"}}),
        (("wireguard", "a", "peers", "b", "endpoint"), "b;reboot"),
        (("wireguard", "a", "peers", "b", "allowed_ips"), ["../../etc"]),
        (("links", 0, "name"), "eth0/../x"),
        (("name",), "../../x"),
        (("description",), "line\nbreak"),
    ],
)
def test_hostile_strings_in_parsed_fields_are_rejected(path, value):
    import copy

    from harness.scenario.load import load_data

    data = copy.deepcopy(BASE)
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(ScenarioError):
        load_data(data)
