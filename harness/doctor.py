"""`wgh doctor`: every capability the harness can use, probed, with how to get it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness import caps
from harness.caps import Capability


def _tool(name: str, binary: str, how: str) -> Capability:
    path = shutil.which(binary)
    return Capability(name, path is not None, path or "not found", how)


def _kvm() -> Capability:
    dev = Path("/dev/kvm")
    if not dev.exists():
        return Capability("kvm", False, "/dev/kvm missing", "VMs fall back to software emulation (slower); enable (nested) virtualisation for speed")
    try:
        fd = os.open(dev, os.O_RDWR)
        os.close(fd)
    except OSError as exc:
        return Capability("kvm", False, f"/dev/kvm: {exc.strerror}", "run as root or join the kvm group")
    return Capability("kvm", True, "/dev/kvm opens (nested KVM can still fail: `wgh vm` falls back to TCG)")


def checks() -> list[Capability]:
    return [
        Capability("root", caps.is_root(), f"euid {os.geteuid()}", "run as root (namespaces, netlink, TUN)"),
        Capability(
            "kernel wireguard",
            caps.kernel_wireguard(),
            "module loaded" if caps.kernel_wireguard() else "modprobe wireguard failed",
            "install a kernel with WireGuard (linux-image-amd64 ≥ 5.6), or run scenarios in a VM",
        ),
        Capability(
            "netem",
            caps.netem(),
            "sch_netem available" if caps.netem() else "modprobe sch_netem failed",
            "install linux-modules-extra / a full kernel, or run scenarios in a VM",
        ),
        Capability("backend auto", True, f"would pick {caps.resolve_backend('auto')}"),
        _tool("wireguard-go", "wireguard-go", "apt-get install wireguard-go"),
        _tool("wg", "wg", "apt-get install wireguard-tools"),
        _tool("ping", "ping", "apt-get install iputils-ping"),
        _tool("iperf3", "iperf3", "apt-get install iperf3"),
        _tool("nftables", "nft", "apt-get install nftables"),
        _tool("iptables", "iptables", "apt-get install iptables"),
        _tool("tc", "tc", "apt-get install iproute2"),
        _tool("mininet", "mnexec", "apt-get install mininet bridge-utils"),
        _tool("virtme-ng", "vng", "pip install virtme-ng"),
        _tool("qemu", "qemu-system-x86_64", "apt-get install --no-install-recommends qemu-system-x86"),
        _kvm(),
    ]
