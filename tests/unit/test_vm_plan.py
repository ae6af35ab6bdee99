"""The VM runner's pure parts: kernel specs, package choice, the guest command."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from harness.matrix import Combination, combined_table
from harness.plugin.session import without_vm_options
from harness.kernels.cache import Kernel
from harness.vm.runner import VmOptions, cached_dirs, guest_script, vng_argv

def test_guest_script_loads_modules_then_runs_in_the_same_directory():
    script = guest_script(["pytest", "scenarios/", "-k", "nat and v6"], VmOptions(cwd=Path("/work/x y")))
    assert script.index("modprobe") < script.index("exec env")
    assert "wireguard" in script and "sch_netem" in script and "tun" in script
    assert "cd '/work/x y' &&" in script
    # the command survives the shell: same argv after splitting
    assert shlex.split(script.split("exec env ", 1)[1])[-4:] == ["pytest", "scenarios/", "-k", "nat and v6"]
    assert "WGH_IN_VM=1" in script
    # the throwaway guest lifts the limits of a large run before the command starts
    limits = script.index("ulimit -Hn 1048576")
    assert limits < script.index("exec env") and script.index("net.ipv4.neigh.default.gc_thresh3=16384") < script.index("exec env")


def test_vng_argv_kvm_and_writable_dirs(tmp_path):
    kernel = Kernel(tmp_path / "vmlinuz-6.1.0-56-amd64", "6.1.0-56-amd64", "path")
    options = VmOptions(cpus=3, memory="1G", writable=[tmp_path / "results"])
    with_kvm = vng_argv("vng", kernel, ["true"], options, use_kvm=True)
    without = vng_argv("vng", kernel, ["true"], options, use_kvm=False)
    assert "--disable-kvm" not in with_kvm and "--disable-kvm" in without
    assert with_kvm[with_kvm.index("--rwdir") + 1] == str(tmp_path / "results")
    assert with_kvm[with_kvm.index("--cpus") + 1] == "3" and with_kvm[with_kvm.index("--memory") + 1] == "1G"
    assert with_kvm[with_kvm.index("--run") + 1] == str(kernel.image)


def test_code_is_read_through_cached_mounts_but_never_what_the_guest_writes(tmp_path):
    for name in ("py", "py/lib", "repo/.venv", "repo/harness", "repo/results", "odd dir", "scratch/out"):
        (tmp_path / name).mkdir(parents=True)
    candidates = [tmp_path / n for n in ("py/lib", "py", "repo/.venv", "repo/harness", "odd dir", "scratch", "missing")]
    chosen = cached_dirs(candidates, writable=[tmp_path / "repo/results", tmp_path / "scratch/out"])
    # py/lib is inside py (one mount covers it); "scratch" holds a writable dir; a space
    # cannot pass through vng's shell; "missing" does not exist
    assert chosen == [tmp_path / "py", tmp_path / "repo/.venv", tmp_path / "repo/harness"]  # parents first
    assert cached_dirs([tmp_path / "repo"], writable=[tmp_path / "repo/results"]) == [], "would hide results/"
    assert cached_dirs([tmp_path / "repo/results"], writable=[tmp_path / "repo"]) == [], "would freeze a written dir"


def test_cached_mounts_are_exported_and_mounted_before_anything_runs(tmp_path):
    kernel = Kernel(tmp_path / "vmlinuz-6.1.0-56-amd64", "6.1.0-56-amd64", "path")
    argv = vng_argv("vng", kernel, ["true"], VmOptions(writable=[tmp_path / "results"]), use_kvm=False)
    assert argv[-1].startswith("--qemu-opts="), "vng takes QEMU's options last"
    exports = argv[-1].removeprefix("--qemu-opts=").split()
    tags = [arg.split("mount_tag=")[1] for arg in exports if "mount_tag=" in arg]
    assert tags and all("readonly=on" in arg for arg in exports if arg.startswith("local,"))
    script = guest_script(["true"], VmOptions(writable=[tmp_path / "results"]))
    for tag in tags:
        assert f"cache=loose,ro {tag} /" in script and script.index(tag) < script.index("modprobe")
    assert sys.prefix in argv[-1]
    assert "path=/usr," not in argv[-1], "virtme-ng links the guest kernel's modules under /usr/lib/modules"
    plain = vng_argv("vng", kernel, ["true"], VmOptions(cache_code=False), use_kvm=False)
    assert not any(arg.startswith("--qemu-opts") for arg in plain) and "cache=loose" not in guest_script(["true"], VmOptions(cache_code=False))


def test_the_guest_runs_a_script_file_not_a_kernel_command_line_full_of_it(tmp_path):
    kernel = Kernel(tmp_path / "vmlinuz-6.1.0-56-amd64", "6.1.0-56-amd64", "path")
    argv = vng_argv("vng", kernel, ["pytest"] + ["-k", "x" * 3000], VmOptions(), use_kvm=False, script=tmp_path / "guest.sh")
    assert argv[argv.index("--exec") + 1] == f"sh {tmp_path / 'guest.sh'}"
    assert all(len(arg) < 2048 for arg in argv), "vng puts --exec on the kernel command line (2048 bytes)"


def test_vm_options_are_not_passed_into_the_guest():
    args = ["scenarios/", "--vm-kernel", "6.1", "--wg-backend", "kernel", "--vm-timeout=60", "-n", "4", "--vm-memory", "3G", "--vm-cpus=2", "-q"]
    assert without_vm_options(args) == ["scenarios/", "--wg-backend", "kernel", "-n", "4", "-q"], "-n goes in: the workers run in the guest"


def test_combined_table_has_a_column_per_combination():
    def results(release, status, handshake):
        return {
            "environment": {"kernel_release": release},
            "scenarios": [
                {"id": "nat", "status": status, "steps": [{"measurements": {"time_to_handshake": {"value": handshake, "unit": "s"}}}]}
            ],
        }

    combos = [
        Combination("6.1", "kernel", "a", 0, results("6.1.0-56-amd64", "passed", 0.012)),
        Combination("6.12", "wireguard-go", "b", 1, results("6.12.117+deb12-amd64", "failed", 0.5)),
        Combination("6.12", "kernel", "c", 124, None, error="timed out after 60s"),
    ]
    table = combined_table(combos).splitlines()
    assert table[0].split() == ["scenario", "6.1.0-56-amd64/kernel", "6.12.117+deb12-amd64/wireguard-go", "6.12/kernel"]
    nat = next(line for line in table if line.startswith("nat"))
    assert "passed hs 12ms" in nat and "failed hs 500ms" in nat and nat.rstrip().endswith("-")
    assert "timed out after 60s" in table[-1]


def test_pytest_in_the_guest_knows_it_runs_in_ci_as_the_host_does(monkeypatch, tmp_path):
    """With CI set, pytest prints whole assertion messages; the guest's pytest gets the
    same variables, or a VM test's failure reaches the log cut after 8 lines."""
    from types import SimpleNamespace

    from harness.kernels import resolve as kernels
    from harness.plugin import session
    from harness.vm import runner

    seen = {}
    monkeypatch.setattr(kernels, "resolve", lambda spec: Kernel(Path("/boot/vmlinuz"), "6.1.0-57-amd64", "debian:x"))
    monkeypatch.setattr(runner, "run_in_vm", lambda kernel, command, options, log: seen.update(env=options.env) or SimpleNamespace(returncode=0))
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("WGH_IN_VM", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    options = {"vm_kernel": "6.1", "results_dir": str(tmp_path), "vm_timeout": 60.0, "vm_cpus": 2, "vm_memory": "1G"}
    config = SimpleNamespace(
        getoption=options.__getitem__,
        invocation_params=SimpleNamespace(args=("tests/", "--vm-kernel", "6.1"), dir=tmp_path),
    )
    assert session.pytest_cmdline_main(config) == 0
    assert seen["env"] == {"CI": "true"}


def test_a_link_to_another_vm_is_a_dgram_netdev_between_two_unix_sockets(tmp_path):
    from harness.vm.runner import VmLink

    one, other = VmLink.parse("/tmp/a.sock:/tmp/b.sock"), VmLink.parse("/tmp/b.sock:/tmp/a.sock")
    argv = vng_argv("vng", Kernel(tmp_path / "vmlinuz", "6.1.0-1-amd64", "cache"), ["true"], VmOptions(links=(one,), cache_code=False), use_kvm=False)
    (qemu,) = [a for a in argv if a.startswith("--qemu-opts=")]
    assert "-netdev dgram,id=wghlink0,local.type=unix,local.path=/tmp/a.sock,remote.type=unix,remote.path=/tmp/b.sock" in qemu
    assert "-device virtio-net-pci,netdev=wghlink0,mac=" in qemu
    mac = lambda link: link.qemu_options(0).split("mac=")[1].split()[0]  # noqa: E731
    assert mac(one) != mac(other), "the two ends of a link have different MACs"
    # udev names the NIC after its PCI slot: the guest renames it by its MAC before the command
    script = guest_script(["true"], VmOptions(links=(one,), cache_code=False, hang_report=False))
    assert "/link\\/ether 52:54:00:77:00:/" in script and 'name wghlink0' in script
    assert script.index("wghlink0") < script.index("exec env")
    for bad in ("/tmp/a.sock:/tmp/a.sock", "relative:/tmp/b.sock", "/tmp/a.sock", "/tmp/a b:/tmp/c"):
        with pytest.raises(ValueError, match="expected LOCAL:REMOTE"):
            VmLink.parse(bad)


def test_no_cached_mount_hides_the_guest_kernels_modules(monkeypatch, tmp_path):
    """virtme-ng mounts the guest kernel's modules at /usr/lib/modules: a cached mount
    of /usr (Python's prefix for Debian's Python, and in every container) hid them and
    the guest loaded neither WireGuard nor netem. Found by running the workflow's jobs
    in containers."""
    from harness.vm import runner

    assert runner.cached_dirs([Path("/"), Path("/usr"), Path("/usr/lib")], writable=[]) == []
    monkeypatch.setattr(runner.sys, "base_prefix", "/usr")
    monkeypatch.setattr(runner.sys, "base_exec_prefix", "/usr")
    dirs = runner.code_dirs()
    assert Path("/usr") not in dirs and any(d.parts[:3] == ("/", "usr", "lib") and d.name.startswith("python3") for d in dirs)
