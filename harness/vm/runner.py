"""Boot a kernel with virtme-ng and run one command inside, sharing the host's
filesystem (read-only, except the directories given as writable). The guest's
output streams live; its exit code becomes ours; a hung guest is killed."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import MissingCapability
from harness.vm.kernels import Kernel, cache_dir

EXIT_TIMEOUT = 124
GUEST_MODULES = ("tun", "wireguard", "sch_netem", "ifb", "nf_conntrack")


@dataclass
class VmOptions:
    cpus: int = 2
    memory: str = "2G"
    timeout: float = 1800.0
    kvm: str = "auto"  # auto | on | off
    cwd: Path = field(default_factory=Path.cwd)
    writable: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def _tools_dir() -> Path:
    """virtme-ng lives next to this Python (the project's venv)."""
    return Path(sys.executable).parent


def find_vng() -> str:
    vng = shutil.which("vng", path=f"{_tools_dir()}{os.pathsep}{os.environ.get('PATH', '')}")
    if vng is None:
        raise MissingCapability("virtme-ng is not installed: pip install virtme-ng (scripts/install.sh --vm)")
    for binary, package in (("qemu-system-x86_64", "qemu-system-x86"), ("busybox", "busybox-static"), ("udevadm", "udev")):
        if shutil.which(binary) is None and not Path(f"/bin/{binary}").exists():
            raise MissingCapability(f"{binary} is missing: apt-get install --no-install-recommends {package} (scripts/install.sh --vm)")
    return vng


def guest_script(command: list[str], options: VmOptions) -> str:
    """What runs inside: load the modules the harness may need, then the command in
    the same directory, with the project's tools first on PATH."""
    env = {
        "PATH": f"{_tools_dir()}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",  # the shared tree is read-only in the guest
        "PYTEST_ADDOPTS": "-p no:cacheprovider",
        "WGH_IN_VM": "1",
        **options.env,
    }
    modules = " ".join(GUEST_MODULES)
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return (
        f"for m in {modules}; do modprobe -q $m 2>/dev/null; done; "
        f"cd {shlex.quote(str(options.cwd))} && exec env {exports} {shlex.join(command)}"
    )


def vng_argv(vng: str, kernel: Kernel, command: list[str], options: VmOptions, use_kvm: bool) -> list[str]:
    argv = [vng, "--run", str(kernel.image), "--force-9p", "--cpus", str(options.cpus), "--memory", options.memory]
    if not use_kvm:
        argv.append("--disable-kvm")
    for directory in options.writable:
        argv += ["--rwdir", str(directory)]
    return argv + ["--exec", guest_script(command, options)]


# --- KVM ----------------------------------------------------------------------------


def _kvm_verdict_file() -> Path:
    return cache_dir() / "kvm.json"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def cached_kvm_verdict() -> bool | None:
    try:
        data = json.loads(_kvm_verdict_file().read_text())
    except (OSError, ValueError):
        return None
    return data.get("usable") if data.get("boot_id") == _boot_id() else None


def kvm_usable(vng: str, kernel: Kernel) -> bool:
    """/dev/kvm can exist and still fail (nested KVM here dies on its first MSR
    write): boot once with it and remember the verdict until the host reboots."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    verdict = cached_kvm_verdict()
    if verdict is not None:
        return verdict
    probe = vng_argv(vng, kernel, ["true"], VmOptions(cpus=1, memory="512M"), use_kvm=True)
    # a working KVM boots this in a few seconds; a broken one fails at once or hangs
    usable = run_group(probe, KVM_PROBE_TIMEOUT) == 0
    _kvm_verdict_file().parent.mkdir(parents=True, exist_ok=True)
    _kvm_verdict_file().write_text(json.dumps({"boot_id": _boot_id(), "usable": usable}))
    return usable


KVM_PROBE_TIMEOUT = 60.0


def run_group(argv: list[str], timeout: float) -> int | None:
    """Run a command quietly in its own session and return its exit code, or None if it
    ran past `timeout`. On a timeout, an error or Ctrl-C the whole group goes: vng's
    virtme-run and qemu children with it (killing vng alone leaves qemu to init)."""
    process = subprocess.Popen(
        argv, env=_host_env(), start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        return None
    except BaseException:
        _kill_group(process)
        raise
    finally:
        if process.returncode is not None:
            _kill_group(process)  # vng exited; anything it left in its group goes too


def _host_env() -> dict[str, str]:
    """vng calls virtme-run by name: the venv's bin must be on PATH."""
    return dict(os.environ, PATH=f"{_tools_dir()}{os.pathsep}{os.environ.get('PATH', '')}")


# --- running ------------------------------------------------------------------------


@dataclass
class VmRun:
    returncode: int
    accel: str
    boot_and_run_seconds: float
    timed_out: bool = False


def run_in_vm(kernel: Kernel, command: list[str], options: VmOptions, *, log=print) -> VmRun:
    vng = find_vng()
    if options.kvm == "on":
        use_kvm = True
    elif options.kvm == "off":
        use_kvm = False
    else:
        use_kvm = kvm_usable(vng, kernel)
        if not use_kvm and os.path.exists("/dev/kvm"):
            log("wgh vm: /dev/kvm is present but KVM does not work here (nested virtualisation?): using software emulation (TCG), 10-50x slower")
    accel = "kvm" if use_kvm else "tcg"
    log(f"wgh vm: booting {kernel.release or kernel.image} ({kernel.source}) with {accel}, {options.cpus} CPUs, {options.memory}")
    argv = vng_argv(vng, kernel, command, options, use_kvm)
    started = time.monotonic()
    # its own session: on timeout or Ctrl-C the whole group (vng, qemu) goes, nothing else.
    # Output goes through pipes we copy from: qemu reopens /proc/self/fd/2, which on a
    # regular file would truncate what was written before.
    process = subprocess.Popen(
        argv, env=_host_env(), start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    pumps = [_pump(process.stdout, sys.stdout), _pump(process.stderr, sys.stderr)]
    try:
        returncode = process.wait(timeout=options.timeout)
        for pump in pumps:
            pump.join(timeout=5)
        _kill_group(process)  # vng is gone; nothing of its group may outlive it
        return VmRun(returncode, accel, time.monotonic() - started)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        log(f"wgh vm: the guest did not finish within {options.timeout:g}s and was killed (exit {EXIT_TIMEOUT})")
        return VmRun(EXIT_TIMEOUT, accel, time.monotonic() - started, timed_out=True)
    except BaseException:
        _kill_group(process)
        raise


def _pump(source, target) -> threading.Thread:
    """Copy a child's output to ours as it comes (live streaming)."""

    def copy() -> None:
        out = getattr(target, "buffer", target)
        while True:
            chunk = os.read(source.fileno(), 65536)
            if not chunk:
                break
            out.write(chunk)
            out.flush()
        source.close()

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread


def _kill_group(process: subprocess.Popen) -> None:
    """SIGTERM then SIGKILL to the process group `process` leads (its own session)."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            # children (qemu) may outlive vng briefly: wait until the group is empty
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    os.killpg(process.pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)
        except subprocess.TimeoutExpired:
            continue
