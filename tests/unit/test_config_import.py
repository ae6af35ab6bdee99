"""wg-quick and networkd files as scenario nodes (`wireguard.<node>.config`): what each
setting becomes, how peers and endpoints find their nodes, keys replaced or kept,
YAML overrides, and file:line problems (pure: files in a temporary directory, keys
made per test)."""

from __future__ import annotations

import ipaddress
import textwrap
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.plan.network import build_plan
from harness.scenario.load import load_file
from harness.wg.keys import KeyPair, b64

KEYS = {name: KeyPair.generate() for name in ("server", "laptop", "phone", "other")}
PSK = b"\x07" * 32


def private(name: str) -> str:
    return b64(KEYS[name].private)


def public(name: str) -> str:
    return KEYS[name].public_b64


def server_conf(extra_peer: str = "", interface: str = "") -> str:
    return f"""\
        # the hub
        [Interface]
        PrivateKey = {private("server")}
        Address = 10.8.0.1/24, fd08::1/64
        ListenPort = 51820
        {interface}

        [Peer]  # laptop
        PublicKey = {public("laptop")}
        AllowedIPs = 10.8.0.2/32
        AllowedIPs = fd08::2/128
        PresharedKey = {b64(PSK)}

        [Peer]
        # phone
        PublicKey = {public("phone")}
        AllowedIPs = 10.8.0.3/32
        {extra_peer}
        """


def laptop_conf(endpoint: str = "vpn.example.com:51820", psk: bool = True) -> str:
    return f"""\
        [Interface]
        PrivateKey = {private("laptop")}
        Address = 10.8.0.2/32
        Address = fd08::2/128
        DNS = 10.8.0.1
        MTU = 1380

        [Peer]
        PublicKey = {public("server")}
        {f"PresharedKey = {b64(PSK)}" if psk else ""}
        Endpoint = {endpoint}
        AllowedIPs = 10.8.0.0/24, fd08::/64
        PersistentKeepalive = 25
        """


def phone_conf() -> str:
    return f"""\
        [Interface]
        PrivateKey = {private("phone")}
        Address = 10.8.0.3/32

        [Peer]
        PublicKey = {public("server")}
        Endpoint = [2001:db8::1]:51820
        AllowedIPs = 0.0.0.0/0
        """


SCENARIO = """\
    nodes:
      internet: {router: true}
      server: {}
      laptop: {}
      phone: {}
    links:
      - {ends: [server, internet]}
      - {ends: [laptop, internet]}
      - {ends: [phone, internet]}
    configs:
      hosts: {vpn.example.com: server}
    wireguard:
      server: {config: server.conf}
      laptop: {config: laptop.conf}
      phone: {config: phone.conf}
    """


def write(tmp_path: Path, files: dict[str, str], scenario: str = SCENARIO) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(scenario))
    return path


def default_files(**changed: str) -> dict[str, str]:
    return {"server.conf": server_conf(), "laptop.conf": laptop_conf(), "phone.conf": phone_conf(), **changed}


def load_one(path: Path):
    (case,) = load_file(path)
    return case


def problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as exc:
        load_file(path)
    return [str(p) for p in exc.value.problems]


def test_every_setting_becomes_the_nodes_wireguard_section(tmp_path):
    case = load_one(write(tmp_path, default_files()))
    server, laptop, phone = (case.spec.wireguard[n] for n in ("server", "laptop", "phone"))
    assert [str(a) for a in server.address] == ["10.8.0.1/24", "fd08::1/64"]
    assert server.listen_port == 51820 and laptop.mtu == 1380
    assert [str(a) for a in laptop.address] == ["10.8.0.2/32", "fd08::2/128"]
    # repeated AllowedIPs lines add up; peers are nodes, found by public key
    assert set(server.peers) == {"laptop", "phone"}
    assert server.peers["laptop"].allowed_ips == ["10.8.0.2/32", "fd08::2/128"]
    assert laptop.peers["server"].persistent_keepalive == 25
    # the endpoint names the server's node (through configs.hosts), the port as written
    assert laptop.peers["server"].endpoint == "server:51820"
    # an IPv6 endpoint in brackets: its peer's node
    assert phone.peers["server"].endpoint == "server:51820"
    assert phone.peers["server"].allowed_ips == ["0.0.0.0/0"]
    assert server.config == ["server.conf"]


def test_the_plan_routes_as_wg_quick_does(tmp_path):
    case = load_one(write(tmp_path, default_files()))
    plan = build_plan(case.spec, "t00001", "wireguard-go")
    # phone's AllowedIPs 0.0.0.0/0 with the default Table: wg-quick's fwmark policy routing
    assert plan.wireguard["phone"].full_tunnel and plan.wireguard["phone"].fwmark == 51820
    assert plan.wireguard["laptop"].peer("server").endpoint.port == 51820


def test_preshared_keys_keep_who_shares_one_and_are_replaced(tmp_path):
    case = load_one(write(tmp_path, default_files()))
    server, laptop, phone = (case.spec.wireguard[n] for n in ("server", "laptop", "phone"))
    assert server.peers["laptop"].preshared_key == laptop.peers["server"].preshared_key == "psk.laptop.server"
    # neither end of server ↔ phone has one
    assert server.peers["phone"].preshared_key is False and phone.peers["server"].preshared_key is False
    assert case.secrets is None  # keys: fresh: nothing of the files' keys is kept


def test_a_preshared_key_on_one_end_only_stays_a_mismatch(tmp_path):
    case = load_one(write(tmp_path, default_files(**{"laptop.conf": laptop_conf(psk=False)})))
    plan = build_plan(case.spec, "t00001", "wireguard-go")
    assert plan.wireguard["server"].peer("laptop").preshared_key == "psk.server.for.laptop"
    assert plan.wireguard["laptop"].peer("server").preshared_key is None


def test_keys_as_is_keeps_the_files_keys_in_memory_only(tmp_path):
    scenario = SCENARIO.replace("hosts: {vpn.example.com: server}", "hosts: {vpn.example.com: server}\n      keys: as-is")
    case = load_one(write(tmp_path, default_files(), scenario))
    assert case.secrets.private_keys["laptop"] == KEYS["laptop"].private
    assert case.secrets.preshared["psk.laptop.server"] == PSK
    shown = repr(case) + repr(case.secrets) + case.spec.model_dump_json()
    assert all(b64(k.private) not in shown for k in KEYS.values()) and b64(PSK) not in shown


def test_yaml_next_to_config_overrides_the_file(tmp_path):
    scenario = SCENARIO.replace(
        "laptop: {config: laptop.conf}",
        "laptop: {config: laptop.conf, mtu: 1280, peers: {server: {persistent_keepalive: 5}}}",
    )
    laptop = load_one(write(tmp_path, default_files(), scenario)).spec.wireguard["laptop"]
    assert laptop.mtu == 1280
    assert laptop.peers["server"].persistent_keepalive == 5
    assert laptop.peers["server"].allowed_ips == ["10.8.0.0/24", "fd08::/64"]  # the rest from the file


def test_notes_name_file_and_line_of_what_is_left_out(tmp_path):
    stranger = f"[Peer]\nPublicKey = {public('other')}\nAllowedIPs = 10.8.0.9/32\n"
    path = write(tmp_path, default_files(**{"server.conf": server_conf(extra_peer=stranger)}))
    notes = load_one(path).notes
    laptop, server = tmp_path / "laptop.conf", tmp_path / "server.conf"
    assert f"{laptop}:5: DNS: ignored (wg-quick hands it to the host's resolvconf; a test node keeps its own resolver)" in notes
    assert any(n.startswith(f"{server}:18: [Peer] {public('other')[:8]}… is none of the scenario's nodes") for n in notes), notes


def test_configs_peers_maps_a_key_to_a_node_without_a_file(tmp_path):
    scenario = SCENARIO.replace("phone: {config: phone.conf}", "phone: {peers: {server: {endpoint: server}}}").replace(
        "hosts: {vpn.example.com: server}", f"hosts: {{vpn.example.com: server}}\n      peers: {{'{public('phone')}': phone}}"
    )
    files = default_files()
    del files["phone.conf"]
    case = load_one(write(tmp_path, files, scenario))
    assert case.spec.wireguard["server"].peers["phone"].allowed_ips == ["10.8.0.3/32"]


def test_a_hook_is_refused_at_its_line_unless_ignored(tmp_path):
    files = default_files(**{"server.conf": server_conf(interface="PostUp = iptables -A FORWARD -i %i -j ACCEPT")})
    assert problems(write(tmp_path, files)) == [
        f"{tmp_path / 'server.conf'}:6: PostUp: a hook runs a command as root, and a scenario never chooses those; test the "
        "config without it with `configs: {hooks: ignore}` (what the hook sets up is then missing), or express it in the scenario"
    ]
    scenario = SCENARIO.replace("hosts: {vpn.example.com: server}", "hosts: {vpn.example.com: server}\n      hooks: ignore")
    notes = load_one(write(tmp_path, files, scenario)).notes
    assert f"{tmp_path / 'server.conf'}:6: PostUp: not run (configs.hooks: ignore)" in notes


def test_a_bad_value_from_a_file_is_reported_at_the_files_line(tmp_path):
    files = default_files(**{"laptop.conf": laptop_conf().replace("MTU = 1380", "MTU = 1000")})
    assert problems(write(tmp_path, files)) == [f"{tmp_path / 'laptop.conf'}:6: wireguard.laptop.mtu: must be ≥ 1280"]


def test_a_syntax_error_is_reported_at_its_line(tmp_path):
    files = default_files(**{"laptop.conf": laptop_conf().replace("MTU = 1380", "MTU 1380")})
    (problem,) = problems(write(tmp_path, files))
    assert problem.startswith(f"{tmp_path / 'laptop.conf'}:6: ")


def test_two_files_with_one_key_are_refused(tmp_path):
    files = default_files(**{"phone.conf": phone_conf().replace(private("phone"), private("laptop"))})
    (problem,) = problems(write(tmp_path, files))
    assert problem.startswith(f"{tmp_path / 'phone.conf'}:2: PrivateKey: the same key as laptop's")


def test_a_config_path_must_stay_next_to_the_scenario(tmp_path):
    (tmp_path / "inner").mkdir()
    write(tmp_path, default_files())
    scenario = (tmp_path / "s.yaml").read_text()
    (tmp_path / "inner" / "s.yaml").write_text(scenario.replace("config: server.conf", "config: inner/../../server.conf"))
    found = problems(tmp_path / "inner" / "s.yaml")
    assert any("wireguard.server.config: 'inner/../../server.conf' is outside the scenario's directory" in p for p in found), found
    (tmp_path / "inner" / "s.yaml").write_text(scenario.replace("config: server.conf", "config: ../server.conf"))
    assert problems(tmp_path / "inner" / "s.yaml")[0].endswith(
        "wireguard.server.config[0]: '../server.conf': expected a path relative to the scenario's directory, e.g. configs/wg0.conf (no leading '/' or '.')"
    )


def test_networkd_files_import_alike(tmp_path):
    netdev = f"""\
        [NetDev]
        Name = wg0
        Kind = wireguard

        [WireGuard]
        PrivateKey = {private("server")}
        ListenPort = 51820
        RouteTable = main

        [WireGuardPeer]
        PublicKey = {public("laptop")}
        PresharedKey = {b64(PSK)}
        AllowedIPs = 10.8.0.2/32, fd08::2/128
        """
    network = """\
        [Match]
        Name = wg0

        [Network]
        Address = 10.8.0.1/24
        Address = fd08::1/64
        """
    files = {"server.netdev": netdev, "server.network": network, "laptop.conf": laptop_conf()}
    scenario = SCENARIO.replace("server: {config: server.conf}", "server: {config: server.netdev}").replace("      phone: {config: phone.conf}\n", "")
    case = load_one(write(tmp_path, files, scenario))
    server = case.spec.wireguard["server"]
    assert [str(a) for a in server.address] == ["10.8.0.1/24", "fd08::1/64"]
    assert server.table == "main" and set(server.peers) == {"laptop"}
    assert server.peers["laptop"].preshared_key == case.spec.wireguard["laptop"].peers["server"].preshared_key
    assert ipaddress.ip_network("10.8.0.2/32") in build_plan(case.spec, "t00001", "kernel").wireguard["server"].peer("laptop").allowed_ips


def test_a_matrix_over_config_versions_gives_one_case_per_file(tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    files = default_files()
    for version in ("v1", "v2"):
        for name, text in files.items():
            (tmp_path / version / name).write_text(textwrap.dedent(text))
    narrowed = textwrap.dedent(server_conf()).replace("AllowedIPs = 10.8.0.3/32", "AllowedIPs = 10.8.0.4/32")
    (tmp_path / "v2" / "server.conf").write_text(narrowed)
    scenario = SCENARIO.replace("server: {config: server.conf}", "server: {config: v1/server.conf}")
    scenario = scenario.replace("laptop.conf", "v1/laptop.conf").replace("phone.conf", "v1/phone.conf")
    scenario = scenario.rstrip(" ") + "    matrix: {wireguard.server.config: [v1/server.conf, v2/server.conf]}\n"
    cases = load_file(write(tmp_path, {}, scenario))
    assert [c.spec.wireguard["server"].peers["phone"].allowed_ips for c in cases] == [["10.8.0.3/32"], ["10.8.0.4/32"]]


def effective(plan) -> dict:
    """What a device does, whatever form its config came in."""
    return {
        name: (wg.addresses, wg.listen_port, wg.mtu, wg.fwmark, wg.routes_by_table(), wg.policy_families(),
               tuple((p.node, p.allowed_ips, str(p.endpoint), p.persistent_keepalive, p.preshared_key) for p in wg.peers))
        for name, wg in plan.wireguard.items()
    }


@pytest.mark.parametrize("form", ["wg-quick", "networkd"])
def test_import_export_import_gives_the_same_effective_config(tmp_path, form):
    from harness.configs.export import export_case

    as_is = SCENARIO.replace("hosts: {vpn.example.com: server}", "hosts: {vpn.example.com: server}\n      keys: as-is")
    if form == "networkd":  # networkd has no wg-quick policy routing: the full-tunnel phone is wg-quick's only
        as_is = as_is.replace("      phone: {config: phone.conf}\n", "")
    first = load_one(write(tmp_path, default_files(), as_is))
    written = export_case(first, tmp_path / "out", form=form)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in written)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o700
    suffix = ".conf" if form == "wg-quick" else ".netdev"
    again = as_is.replace("server.conf", f"out/server{suffix}").replace("laptop.conf", f"out/laptop{suffix}").replace("phone.conf", f"out/phone{suffix}")
    (tmp_path / "again.yaml").write_text(textwrap.dedent(again))
    second = load_one(tmp_path / "again.yaml")
    # the files' own keys went out and came back (keys: as-is)
    assert second.secrets.private_keys == first.secrets.private_keys
    plans = [build_plan(c.spec, "t00001", "kernel") for c in (first, second)]
    if form == "networkd":  # wg-quick's Table = auto becomes networkd's RouteTable=main: the same routes
        assert {wg.table for wg in plans[1].wireguard.values()} == {"main"}
    assert effective(plans[0]) == effective(plans[1])


def test_run_artifacts_hold_configs_without_keys(tmp_path):
    from harness.configs.export import NodeKeys, write_configs

    case = load_one(write(tmp_path, default_files()))
    plan = build_plan(case.spec, "t00001", "kernel")
    public = {name: KeyPair.generate().public for name in plan.wireguard}
    write_configs(tmp_path / "art", plan.wireguard, NodeKeys(public))
    text = (tmp_path / "art" / "laptop.conf").read_text()
    assert "\nPrivateKey" not in text and "\nPresharedKey" not in text
    assert "# PrivateKey: not written" in text and "# PresharedKey (psk.laptop.server): not written" in text
    assert f"PublicKey = {b64(public['server'])}" in text
