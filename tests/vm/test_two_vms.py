"""One topology over two machines with their own kernels: two VMs, each booted from
Debian's 6.1 kernel under virtme-ng, joined by an Ethernet that QEMU carries over unix
datagram sockets (`wgh vm --link`: nothing on the host's network). Each runs sshd on
that Ethernet; alpha also runs the controller, `wgh run --hosts` over both. A
WireGuard pair is split between them on purpose (`placement:`), with kernel
WireGuard in both kernels; the link between the hosts is VXLAN over the VMs'
Ethernet, whose netem gives the "physical network" 25 ms each way. The link's
configured 40 ms must hold: the measured 25 ms comes off it (a round trip of 80 ms,
not 130: far enough apart that a busy machine, which only adds, cannot blur them)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.requires("root", "vm")
KERNEL = "6.1"
ADDRESSES = {"alpha": "10.251.0.1", "beta": "10.251.0.2"}  # inside the VMs only
PHYSICAL_DELAY_MS = 25  # netem on each VM's Ethernet: what the hosts' network adds one way
LINK_DELAY_MS = 40  # the file's, on the link that crosses
SCENARIO = f"""\
name: split
nodes:
  a: {{}}
  r: {{router: true}}
  b: {{}}
links:
  - {{ends: [a, r], delay: {LINK_DELAY_MS}ms}}
  - {{ends: [r, b]}}
wireguard:
  a: {{peers: {{b: {{endpoint: b}}}}}}
  b: {{peers: {{a: {{}}}}}}
placement:
  alpha: [a]
  beta: [r, b]
steps:
  - handshake: {{between: [a, b], within: 60s}}
  - ping: {{from: a, to: r, via: underlay, count: 20, timeout: 10s}}
  - ping: {{from: a, to: b, count: 5, timeout: 10s}}
"""
SSHD_CONFIG = """\
HostKey {keys}/host-{name}
AuthorizedKeysFile {keys}/authorized_keys
ListenAddress {address}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel ERROR
"""
# the keys are copied into the guest's own tmpfs (the shared directory is 9p: its
# modes are the host's view)
GUEST_COMMON = """\
set -e
ip link set wghlink0 mtu 1600 up
ip addr add {address}/24 dev wghlink0
tc qdisc add dev wghlink0 root netem delay {delay}ms
keys=/run/wgh-twovm-keys; mkdir -m 700 -p $keys /run/sshd
cp {shared}/keys/* $keys/ && chmod 600 $keys/*
# the guest's root account is locked ('!'), and sshd without PAM then refuses even a
# key: in this guest only, a copy of /etc/shadow with root's password merely unset
if grep -q '^root:!' /etc/shadow; then
  sed 's/^root:!*/root:*/' /etc/shadow > $keys/shadow && chmod 600 $keys/shadow && mount --bind $keys/shadow /etc/shadow
fi
/usr/sbin/sshd -f $keys/sshd-{name}.conf
"""
GUEST_BETA = """\
touch {shared}/beta-ready
i=0; until [ -e {shared}/done ] || [ $i -ge 1500 ]; do sleep 1; i=$((i+1)); done
"""
GUEST_ALPHA = """\
i=0; until [ -e {shared}/beta-ready ] || [ $i -ge 600 ]; do sleep 1; i=$((i+1)); done
set +e
{wgh} run --hosts $keys/hosts.yaml --backend kernel --results-dir {shared}/results -q {shared}/split.yaml > {shared}/run.log 2>&1
echo $? > {shared}/rc
touch {shared}/done
"""


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wgharness-test", "-f", str(path)], check=True)
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


def _prepare(shared: Path, wgh: str) -> None:
    """Keys, sshd configs, the inventory (paths inside the guests) and the guests' scripts."""
    keys = shared / "keys"
    keys.mkdir(mode=0o700)
    in_guest = "/run/wgh-twovm-keys"
    client = _keygen(keys / "client")
    (keys / "authorized_keys").write_text(client + "\n")
    known = []
    for name, address in ADDRESSES.items():
        known.append(f"{address} {_keygen(keys / f'host-{name}')}")
        (keys / f"sshd-{name}.conf").write_text(SSHD_CONFIG.format(keys=in_guest, name=name, address=address))
    (keys / "known_hosts").write_text("\n".join(known) + "\n")
    (keys / "hosts.yaml").write_text("hosts:\n" + "".join(
        f"  {name}: {{address: {address}, underlay: {address}, identity: {in_guest}/client, known_hosts: {in_guest}/known_hosts, wgh: {wgh}}}\n"
        for name, address in ADDRESSES.items()
    ))
    (shared / "split.yaml").write_text(SCENARIO)
    for name, rest in (("alpha", GUEST_ALPHA), ("beta", GUEST_BETA)):
        script = (GUEST_COMMON + rest).format(address=ADDRESSES[name], delay=PHYSICAL_DELAY_MS, shared=shared, name=name, wgh=shlex.quote(wgh))
        (shared / f"{name}.sh").write_text(script)


def _boot(wgh: str, name: str, shared: Path, link: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [wgh, "vm", "--kernel", KERNEL, "--cpus", "1", "--memory", "1536M", "--timeout", "1500",
         "--rwdir", str(shared), "--link", link, "--", "sh", str(shared / f"{name}.sh")],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )


def test_one_topology_over_two_vms_with_their_own_kernels(wgh_cli):
    if shutil.which("ssh-keygen") is None or not Path("/usr/sbin/sshd").exists():
        pytest.skip("two VMs reached over SSH need openssh-server and openssh-client (scripts/install.sh installs them)")
    from harness.kernels.resolve import resolve

    resolve(KERNEL)  # fetched and cached once, before two guests want it
    wgh = str(Path(sys.executable).parent / "wgh")
    shared = Path(tempfile.mkdtemp(prefix="wgh-twovm-"))  # 0700; the guests see it (--rwdir)
    try:
        _prepare(shared, wgh)
        sockets = (shared / "alpha.sock", shared / "beta.sock")
        beta = _boot(wgh, "beta", shared, f"{sockets[1]}:{sockets[0]}", shared / "beta.log")
        alpha = _boot(wgh, "alpha", shared, f"{sockets[0]}:{sockets[1]}", shared / "alpha.log")
        try:
            alpha.wait(timeout=1600)
            (shared / "done").touch()  # beta's guest ends once alpha's run is over, whatever became of it
            beta.wait(timeout=120)
        finally:
            for vm in (alpha, beta):
                if vm.poll() is None:
                    vm.terminate()  # wgh vm ends its guest's whole group
                    vm.wait(timeout=60)
        logs = "".join(f"\n--- {f.name}\n{f.read_text()[-3000:]}" for f in sorted(shared.glob("*.log")))
        assert alpha.returncode == 0 and beta.returncode == 0, logs
        assert (shared / "rc").read_text().strip() == "0", logs
        (results,) = (shared / "results").glob("*/results.json")
        (case,) = json.loads(results.read_text())["scenarios"]
        assert case["status"] == "passed", logs
        assert case["placement"] == {"a": "alpha", "r": "beta", "b": "beta"}
        assert case["backends"] == {"a": "kernel", "b": "kernel"}  # WireGuard in each VM's own kernel
        (underlay,) = case["underlay"]
        assert underlay["hosts"] == ["alpha", "beta"] and underlay["received"] == underlay["sent"]
        assert PHYSICAL_DELAY_MS * 0.9 <= underlay["one_way"] <= PHYSICAL_DELAY_MS * 1.5, underlay
        # the file's 40 ms each way over the link between hosts: an 80 ms round trip
        # with the hosts' 25 ms taken off, 130 ms if it were not. The floor is exact:
        # netem on each tunnel end (the file's delay less the measured one way) and on
        # each VM's Ethernet never deliver early. The ceiling sits half-way to 130: a
        # busy machine only adds, and CI under load has added 18 ms to the minimum.
        rtt_min = case["steps"][1]["measurements"]["rtt_min"]["value"]
        floor = 2 * (LINK_DELAY_MS - underlay["one_way"]) + 2 * PHYSICAL_DELAY_MS
        expected = 2 * LINK_DELAY_MS
        assert floor - 1 <= rtt_min < expected + PHYSICAL_DELAY_MS, (rtt_min, floor, underlay, logs)
        print(f"two VMs: underlay one way {underlay['one_way']} ms; link {LINK_DELAY_MS} ms each way, round trip min {rtt_min} ms (wanted {expected})")
    finally:
        shutil.rmtree(shared, ignore_errors=True)
