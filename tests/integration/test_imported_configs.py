"""Users' own wg-quick and networkd files, run for real (wireguard-go on this host,
the kernel module in the VM): the example's v1 passes and v2's typo is diagnosed, a
networkd pair works alike, and no imported private key shows up anywhere a run
leaves traces: results, artifacts, logs, output, or any process's command line or
environment while it runs. Needs root."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from harness.wg.keys import KeyPair, b64

from .placement import config_logic_host_only

pytestmark = pytest.mark.requires("root", "wireguard")
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "configs" / "road-warriors.yaml"


def run_json(wgh_cli, *args: str, timeout: float = 300) -> tuple[dict, subprocess.CompletedProcess]:
    done = wgh_cli("run", "--json", "--no-report", *args, timeout=timeout)
    assert done.stdout, done.stderr[-3000:]
    return json.loads(done.stdout), done


def steps_of(document: dict, case: str) -> list[dict]:
    (scenario,) = [s for s in document["scenarios"] if s["case"] == case]
    return scenario["steps"]


@config_logic_host_only
def test_the_example_v1_passes_and_v2s_typo_is_diagnosed(wgh_cli, tmp_path):
    document, done = run_json(wgh_cli, "--results-dir", str(tmp_path), str(EXAMPLE))
    assert done.returncode == 1, done.stderr[-3000:]  # v2 fails, by design
    statuses = {s["case"]: s["status"] for s in document["scenarios"]}
    assert statuses == {"v1": "passed", "v2": "failed"}, done.stderr[-3000:]
    failed = [s for s in steps_of(document, "v2") if s["outcome"] != "pass"]
    # every failing step involves the phone, and names the server's AllowedIPs for it
    assert failed and all("phone" in s["title"] for s in failed)
    assert "[allowed-ips-receiver]" in failed[0]["message"] and "server's AllowedIPs for phone" in failed[0]["message"]
    assert "examples/configs/v1/laptop.conf:5: DNS: ignored" in done.stderr


def write_pair(directory: Path, keys: dict[str, KeyPair], psk: bytes) -> None:
    """server as a networkd .netdev/.network (keys in a file), client as wg-quick."""
    (directory / "server.key").write_text(b64(keys["server"].private) + "\n")
    (directory / "server.key").chmod(0o600)
    (directory / "server.netdev").write_text(textwrap.dedent(f"""\
        [NetDev]
        Name=wg0
        Kind=wireguard

        [WireGuard]
        PrivateKeyFile={directory / "server.key"}
        ListenPort=51000
        RouteTable=main

        [WireGuardPeer]
        PublicKey={keys["client"].public_b64}
        PresharedKey={b64(psk)}
        AllowedIPs=10.9.0.2/32
        """))
    (directory / "server.network").write_text("[Match]\nName=wg0\n\n[Network]\nAddress=10.9.0.1/24\n")
    (directory / "client.conf").write_text(textwrap.dedent(f"""\
        [Interface]
        PrivateKey = {b64(keys["client"].private)}
        Address = 10.9.0.2/32

        [Peer]
        PublicKey = {keys["server"].public_b64}
        PresharedKey = {b64(psk)}
        Endpoint = 192.0.2.1:51000
        AllowedIPs = 10.9.0.0/24
        """))
    (directory / "pair.yaml").write_text(textwrap.dedent("""\
        nodes: {server: {}, client: {}}
        links: [{ends: [client, server]}]
        configs: {keys: as-is}
        wireguard:
          server: {config: server.netdev}
          client: {config: client.conf}
        steps:
          - handshake: {between: [client, server], within: 3s}
          - ping: {from: client, to: server, count: 3, interval: 50ms}
          - ping: {from: server, to: client, count: 3, interval: 50ms}
        """))


class ProcessWatch:
    """Every process's command line and environment, sampled while a run goes on."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for pid in filter(str.isdigit, os.listdir("/proc")):
                for part in ("cmdline", "environ"):
                    try:
                        self.seen.add(Path(f"/proc/{pid}/{part}").read_bytes())
                    except OSError:
                        pass
            time.sleep(0.02)

    def __enter__(self) -> "ProcessWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_networkd_and_wg_quick_files_with_their_own_keys_never_show_them(wgh_cli, tmp_path):
    keys = {name: KeyPair.generate() for name in ("server", "client")}
    psk = os.urandom(32)
    write_pair(tmp_path, keys, psk)
    results = tmp_path / "results"
    with ProcessWatch() as watch:
        document, done = run_json(wgh_cli, "--results-dir", str(results), "--run-id", "imported", str(tmp_path / "pair.yaml"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert [s["status"] for s in document["scenarios"]] == ["passed"]
    secrets = [keys["server"].private, keys["client"].private, psk]
    forms = [form for secret in secrets for form in (b64(secret).encode(), secret.hex().encode(), base64.b64encode(secret).decode().rstrip("=").encode())]
    # the run's traces: results, report inputs, artifacts (effective configs, logs), output
    traces = [p.read_bytes() for p in results.rglob("*") if p.is_file()] + [done.stdout.encode(), done.stderr.encode()]
    assert any(p.name == "client.conf" for p in results.rglob("*")), "the run exported the effective configs"
    assert watch.seen, "the process table was sampled"
    for form in forms:
        assert not any(form in trace for trace in traces)
        assert not any(form in entry for entry in watch.seen)
    # the keys in use were the files' own (keys: as-is): the exported config names the server's public key
    exported = next(p for p in results.rglob("client.conf")).read_text()
    assert f"PublicKey = {keys['server'].public_b64}" in exported and "# PrivateKey: not written" in exported


def broken_set(directory: Path) -> None:
    """A hub and four spokes, three of them broken the way real configs break."""
    keys = {name: KeyPair.generate() for name in ("hub", "good", "badport", "halfpsk", "narrowed")}
    psk = os.urandom(32)
    spokes = {
        "good": ("10.7.0.2", "10.7.0.2/32", 51820, ""),
        "badport": ("10.7.0.3", "10.7.0.3/32", 51821, ""),  # the spoke sends to a port the hub does not use
        "halfpsk": ("10.7.0.4", "10.7.0.4/32", 51820, f"PresharedKey = {b64(psk)}\n"),  # only the spoke has one
        "narrowed": ("10.7.0.5", "10.7.0.50/32", 51820, ""),  # the hub's entry has a typo
    }
    hub = f"[Interface]\nPrivateKey = {b64(keys['hub'].private)}\nAddress = 10.7.0.1/24\nListenPort = 51820\n"
    for name, (address, allowed, port, spoke_psk) in spokes.items():
        hub += f"\n[Peer]\nPublicKey = {keys[name].public_b64}\nAllowedIPs = {allowed}\n"
        (directory / f"{name}.conf").write_text(
            f"[Interface]\nPrivateKey = {b64(keys[name].private)}\nAddress = {address}/32\n\n"
            f"[Peer]\nPublicKey = {keys['hub'].public_b64}\n{spoke_psk}Endpoint = hub.example.net:{port}\n"
            f"AllowedIPs = 10.7.0.0/24\nPersistentKeepalive = 25\n"
        )
    (directory / "hub.conf").write_text(hub)


@config_logic_host_only
def test_a_broken_config_set_gets_its_diagnosis_per_pair(wgh_cli, tmp_path):
    broken_set(tmp_path)
    done = wgh_cli("run", "--no-results", "--configs", str(tmp_path), timeout=300)
    assert done.returncode == 1, done.stderr[-3000:]
    table = done.stdout[done.stdout.index("peer pair"):]
    rows = {line.split()[0] + line.split()[2]: line for line in table.splitlines()[2:] if "↔" in line}
    assert "[" not in rows["goodhub"] and " ok " in rows["goodhub"]
    assert " none " in rows["badporthub"] and "[port-mismatch]" in rows["badporthub"]
    assert " none " in rows["halfpskhub"] and "[psk-mismatch]" in rows["halfpskhub"]
    assert " ok " in rows["hubnarrowed"] and "[allowed-ips-receiver]" in rows["hubnarrowed"]
