"""Simulated hosts for the multihost tests: each "host" is a network namespace whose
sshd (Debian's openssh-server, a throwaway host key, one authorized key) is started by
ssh's ProxyCommand in inetd mode (`sshd -i`), so nothing listens anywhere; the hosts
share a "physical network" (a bridge in a namespace of its own, a veth and an address
per host). The harness reaches them exactly as real machines: ssh with BatchMode, a
known_hosts file, a ControlMaster, `wgh worker` at the other end.

Everything is in a run record of its own (the reaper removes it if a test dies) and in
a private 0700 directory (the keys)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from harness.cleanup import RunRegistry
from harness.hosts.inventory import Host, Inventory
from harness.net import nsexec
from harness.plan.naming import namespace_name, new_run_id

SSHD = "/usr/sbin/sshd"
PHYSICAL_SUBNET = "10.250.0"  # inside the simulated hosts' own namespaces only
PHYSICAL_MTU = 1600  # room for VXLAN's 50 bytes around a 1500-byte link between hosts (as jumbo frames would)
SSHD_CONFIG = """\
HostKey {host_key}
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
LogLevel ERROR
"""


SSHD_HOW_TO = "apt-get install openssh-server openssh-client (scripts/install.sh installs them)"


def sshd_available() -> bool:
    return os.access(SSHD, os.X_OK) and shutil.which("ssh-keygen") is not None and shutil.which("ssh") is not None


def need_sshd() -> None:
    if not sshd_available():
        pytest.skip(f"simulated hosts need sshd, ssh and ssh-keygen: {SSHD_HOW_TO}")


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wgharness-test", "-f", str(path)], check=True)
    return Path(f"{path}.pub").read_text().strip()


@contextmanager
def simulated_hosts(names: list[str]) -> Iterator[Inventory]:
    """An inventory of `names`, each a namespace with its sshd behind ProxyCommand."""
    need_sshd()
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    run_id = new_run_id()
    registry = RunRegistry(run_id)
    private = Path(tempfile.mkdtemp(prefix="wgh-simhosts-"))
    registry.add_dir(str(private))
    try:
        client_key = private / "client"
        client_public = _keygen(client_key)
        (private / "authorized_keys").write_text(client_public + "\n")
        known_hosts = private / "known_hosts"
        wgh = (str(Path(sys.executable).parent / "wgh"),)  # this checkout's, as install.sh puts it there
        physical = namespace_name(run_id, "phys")
        namespaces = {name: namespace_name(run_id, f"host-{name}") for name in names}
        registry.add_namespaces([physical, *namespaces.values()])
        from pyroute2 import IPRoute

        with IPRoute(fileno=nsexec.create_namespace(physical)) as bridge_side:
            bridge_side.link("add", ifname="phys", kind="bridge")
            bridge = bridge_side.link_lookup(ifname="phys")[0]
            bridge_side.link("set", index=bridge, state="up")
            hosts = {}
            for number, name in enumerate(names, start=1):
                host_key = private / f"host-{name}"
                (private / f"sshd-{name}.conf").write_text(
                    SSHD_CONFIG.format(host_key=host_key, authorized_keys=private / "authorized_keys")
                )
                public = _keygen(host_key)
                with known_hosts.open("a") as out:
                    out.write(f"{name} {' '.join(public.split()[:2])}\n")
                with IPRoute(fileno=nsexec.create_namespace(namespaces[name])) as inside:
                    inside.link("set", index=inside.link_lookup(ifname="lo")[0], state="up")
                    bridge_side.link("add", ifname=f"p-{name}", kind="veth", peer={"ifname": "eth0", "net_ns_fd": str(nsexec.netns_path(namespaces[name]))})
                    port = bridge_side.link_lookup(ifname=f"p-{name}")[0]
                    bridge_side.link("set", index=port, master=bridge, mtu=PHYSICAL_MTU, state="up")
                    eth0 = inside.link_lookup(ifname="eth0")[0]
                    underlay = f"{PHYSICAL_SUBNET}.{number}"
                    inside.addr("add", index=eth0, address=underlay, prefixlen=24)
                    inside.link("set", index=eth0, mtu=PHYSICAL_MTU, state="up")
                proxy = shlex.join(["nsenter", f"--net={nsexec.netns_path(namespaces[name])}", SSHD, "-i", "-f", str(private / f"sshd-{name}.conf")])
                hosts[name] = Host(
                    name, name, identity=str(client_key), known_hosts=str(known_hosts), underlay=underlay,
                    wgh=wgh, ssh_options=(("ProxyCommand", proxy),),
                )
        inventory_file = private / "hosts.yaml"  # as a user writes one (for the CLI's --hosts)
        inventory_file.write_text(yaml.safe_dump({"hosts": {
            name: {
                "address": host.address, "identity": host.identity, "known_hosts": host.known_hosts,
                "underlay": host.underlay, "wgh": shlex.join(host.wgh), "ssh_options": dict(host.ssh_options),
            }
            for name, host in hosts.items()
        }}))
        yield Inventory(str(inventory_file), hosts)
    finally:
        leftovers = registry.release()
        assert not leftovers, leftovers


def namespace_of(pid: int) -> int:
    """The inode of a process's network namespace."""
    return os.stat(f"/proc/{pid}/ns/net").st_ino
