"""`wgh run --configs DIR`: the world made around a directory of config files (pure:
the scenario is data; the example's files are the input)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.configs.world import WorldError, config_nodes, parse_behind_nat, world_scenario
from harness.scenario.load import load_data

V1 = Path(__file__).resolve().parents[2] / "examples" / "configs" / "v1"


def test_one_node_per_file_on_an_internet_router():
    data = world_scenario(V1)
    assert set(data["nodes"]) == {"internet", "laptop", "phone", "server"}
    assert sorted(tuple(link["ends"]) for link in data["links"]) == [("laptop", "internet"), ("phone", "internet"), ("server", "internet")]
    assert data["wireguard"]["server"] == {"config": "server.conf"}


def test_default_checks_cover_every_peer_pair():
    steps = world_scenario(V1)["steps"]
    handshakes = [tuple(s["handshake"]["between"]) for s in steps if "handshake" in s]
    # the road warriors have the server's endpoint; they initiate
    assert sorted(handshakes) == [("laptop", "server"), ("phone", "server")]
    pings = {(s["ping"]["from"], s["ping"]["to"]) for s in steps if "ping" in s}
    # every peer address the sender's AllowedIPs cover, both families
    assert ("laptop", "10.8.0.1") in pings and ("laptop", "fd08::1") in pings
    assert ("server", "10.8.0.3") in pings and ("server", "fd08::3") in pings
    assert ("phone", "10.8.0.1") in pings


def test_the_world_loads_like_a_file_with_its_endpoints_mapped(tmp_path):
    (case,) = load_data(world_scenario(V1), str(V1 / "(configs)"))
    # laptop's vpn.example.com matches no node: its peer's key says it is the server
    assert case.spec.wireguard["laptop"].peers["server"].endpoint == "server:51820"
    assert any("DNS: ignored" in note for note in case.notes)


def test_behind_nat_puts_a_node_behind_its_own_nat():
    data = world_scenario(V1, parse_behind_nat(["laptop=symmetric"]))
    (nat,) = [name for name, node in data["nodes"].items() if "nat" in node]
    assert data["nodes"][nat]["nat"] == {"outside": "internet", "type": "symmetric"}
    assert {"ends": ["laptop", nat]} in data["links"] and {"ends": [nat, "internet"]} in data["links"]
    load_data(data, str(V1 / "(configs)"))  # valid


def test_bad_inputs_say_what_is_wrong(tmp_path):
    with pytest.raises(WorldError, match="no \\*.conf"):
        config_nodes(tmp_path)
    shutil.copy(V1 / "server.conf", tmp_path / "My-Server.conf")
    with pytest.raises(WorldError, match="would be named 'My-Server'"):
        config_nodes(tmp_path)
    with pytest.raises(WorldError, match="'carrier-grade' is not a NAT type"):
        parse_behind_nat(["laptop=carrier-grade"])
    with pytest.raises(WorldError, match="no config for tablet"):
        world_scenario(V1, {"tablet": "symmetric"})
