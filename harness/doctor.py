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
    from harness.vm.runner import cached_kvm_verdict

    slow = "VMs use software emulation (TCG, 10-50x slower); enable (nested) virtualisation for speed"
    dev = Path("/dev/kvm")
    if not dev.exists():
        return Capability("kvm", False, "/dev/kvm missing", slow)
    try:
        fd = os.open(dev, os.O_RDWR)
        os.close(fd)
    except OSError as exc:
        return Capability("kvm", False, f"/dev/kvm: {exc.strerror}", "run as root or join the kvm group")
    verdict = cached_kvm_verdict()
    if verdict is None:
        return Capability("kvm", True, "/dev/kvm opens; whether a guest runs on it is tested at the first `wgh vm`")
    if verdict:
        return Capability("kvm", True, "a guest booted with KVM on this host")
    return Capability("kvm", False, "/dev/kvm opens but a guest fails on it (nested KVM): `wgh vm` uses TCG", slow)


def _kernels() -> Capability:
    from harness.kernels.cache import cached_kernels, kernels_dir

    cached = cached_kernels()
    if not cached:
        return Capability("vm kernels", False, f"none cached in {kernels_dir()}", "fetched on first use: wgh vm --kernel 6.1 -- true")
    return Capability("vm kernels", True, ", ".join(k.release or k.image.name for k in cached) + f" (in {kernels_dir()})")


def _vng() -> Capability:
    from harness.vm.runner import _tools_dir

    path = shutil.which("vng", path=f"{_tools_dir()}{os.pathsep}{os.environ.get('PATH', '')}")
    return Capability("virtme-ng", path is not None, path or "not found", "pip install virtme-ng (scripts/install.sh --vm)")


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
        Capability(
            "mininet engine",
            not caps.mininet_missing(),
            caps.mininet_missing() or "the mininet module and mnexec are here",
            "scripts/install.sh (Debian's mininet for mnexec, PyPI's mininet for the module)",
        ),
        _vng(),
        _tool("qemu", "qemu-system-x86_64", "apt-get install --no-install-recommends qemu-system-x86"),
        _tool("busybox (VM initramfs)", "busybox", "apt-get install busybox-static"),
        _tool("udev (VM console)", "udevadm", "apt-get install udev"),
        _kernels(),
        _kvm(),
    ]
