"""A scenario file naming a Mininet Topo (`topology: {mininet: "file.py:Class"}`): its
hosts become the nodes, its file must live next to the scenario, and every mistake is
reported at the file's line. Loading only declares the Topo: no root, nothing built."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mininet")

from harness.scenario.load import ScenarioError, load_file  # noqa: E402

TOPOS = textwrap.dedent(
    """
    from mininet.topo import Topo

    class Pair(Topo):
        def build(self, hosts=2):
            s1 = self.addSwitch("s1")
            for i in range(1, hosts + 1):
                self.addLink(self.addHost(f"h{i}"), s1)

    class Shouting(Topo):
        def build(self):
            self.addHost("H1")
    """
)


def _scenario(tmp_path: Path, body: str, topos: str = TOPOS) -> Path:
    (tmp_path / "topos.py").write_text(topos)
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    return [str(p) for p in caught.value.problems]


def test_the_topos_hosts_are_the_nodes_and_the_engine_is_mininet(tmp_path):
    path = _scenario(
        tmp_path,
        """
        topology: {mininet: topos.py:Pair, args: {hosts: 3}}
        wireguard: {h1: {peers: {h3: {endpoint: h3}}}, h3: {}}
        steps: [{handshake: {between: [h1, h3]}}]
        """,
    )
    (case,) = load_file(path)
    assert list(case.spec.nodes) == ["h1", "h2", "h3"]  # switches are not nodes
    assert case.spec.engine == "mininet" and case.spec.topology.args == {"hosts": 3}


def test_names_outside_the_topo_are_reported_with_their_line(tmp_path):
    path = _scenario(
        tmp_path,
        """
        topology: {mininet: topos.py:Pair}
        wireguard: {h1: {peers: {h9: {endpoint: h9}}}}
        """,
    )
    (problem, *_) = _problems(path)
    assert problem.startswith(f"{path}:3: wireguard.h1.peers.h9")


@pytest.mark.parametrize(
    "topology, message",
    [
        ("{mininet: ../topos.py:Pair}", "the file in this scenario's directory (no leading '/' or '.')"),
        ("{mininet: sub/../../x.py:Pair}", "outside the scenario's directory"),
        ("{mininet: topos.py:Missing}", "has no Topo subclass 'Missing'"),
        ("{mininet: nothere.py:Pair}", "no file"),
        ("{mininet: topos.py:Shouting}", "cannot be scenario nodes"),
        ("{mininet: topos.py:Pair, args: {switches: 2}}", "unexpected keyword argument 'switches'"),
        ("{mininet: /etc/passwd.py:Pair}", "topology.mininet: expected 'file.py:ClassName'"),
        ("{mininet: topos.py:Pair, args: {hosts: [1]}}", "topology.args.hosts"),
    ],
)
def test_a_topology_that_cannot_be_loaded_is_a_problem_at_its_line(tmp_path, topology, message):
    path = _scenario(tmp_path, f"name: t\ntopology: {topology}\n")
    (problem,) = _problems(path)
    assert problem.startswith(f"{path}:2: topology") and message in problem, problem


def test_a_topology_replaces_nodes_and_links(tmp_path):
    path = _scenario(tmp_path, "topology: {mininet: topos.py:Pair}\nnodes: {a: {}}\n")
    (problem,) = _problems(path)
    assert problem.startswith(f"{path}:2: nodes") and "takes its nodes and links from the Topo" in problem
    path = _scenario(tmp_path, "topology: {mininet: topos.py:Pair}\nengine: netns\n")
    assert "built by the mininet engine" in _problems(path)[0]
