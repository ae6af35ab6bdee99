"""Boot a kernel with virtme-ng and run one command inside, sharing the host's
filesystem (read-only, except the directories given as writable). The guest's
output streams live; its exit code becomes ours; a hung guest is killed."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from harness.errors import MissingCapability
from harness.kernels.cache import Kernel, cache_dir

EXIT_TIMEOUT = 124
LINK_MAC_PREFIX = "52:54:00:77"  # a link's NIC: <prefix>:<link number>:<side>, locally administered
GUEST_MODULES = ("tun", "wireguard", "sch_netem", "ifb", "nf_conntrack", "vxlan", "virtio_net")  # the last two: links between VMs and hosts


@dataclass
class VmOptions:
    cpus: int = 2
    memory: str = "2G"
    timeout: float = 1800.0
    kvm: str = "auto"  # auto | on | off
    cwd: Path = field(default_factory=Path.cwd)
    writable: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cache_code: bool = True  # read Python, the venv and the harness through a cached mount
    hang_report: bool = True  # print the guest's processes and stacks shortly before the timeout
    links: tuple["VmLink", ...] = ()  # Ethernet to other VMs (in the guest: wghlink0, wghlink1, …)


@dataclass(frozen=True)
class VmLink:
    """An Ethernet between this VM and another, carried by two unix datagram sockets
    (QEMU's `dgram` netdev): this VM's at `local`, the other's at `remote`; the other
    VM is given the two the other way round. Nothing of it touches the host's network:
    the frames go from one QEMU process to the other through the file system."""

    local: Path
    remote: Path

    @classmethod
    def parse(cls, text: str) -> "VmLink":
        local, sep, remote = text.partition(":")
        if not sep or not _PLAIN_PATH.match(local) or not _PLAIN_PATH.match(remote) or local == remote:
            raise ValueError(f"--link {text!r}: expected LOCAL:REMOTE, two different absolute paths of plain characters")
        return cls(Path(local), Path(remote))

    def qemu_options(self, index: int) -> str:
        netdev = f"wghlink{index}"
        # locally administered MACs, distinct per side (the socket paths order them)
        mac = f"{LINK_MAC_PREFIX}:{index:02x}:{1 if str(self.local) < str(self.remote) else 2:02x}"
        return (
            f"-device virtio-net-pci,netdev={netdev},mac={mac} "
            f"-netdev dgram,id={netdev},local.type=unix,local.path={self.local},remote.type=unix,remote.path={self.remote}"
        )


# virtme-ng's root 9p mount has no cache: every stat and read is a round trip to the
# host, which under TCG made a bare `python -c pass` take 5 s and importing the harness
# 40 s, in every process the guest starts. The directories the guest only reads, and
# reads again in each process, are exported a second time and mounted over their own
# paths with cache=loose: read once, then from the guest's page cache (imports 3x
# faster, measured). Safe because nothing changes them while the guest runs.
CACHED_MOUNT = "trans=virtio,version=9p2000.L,msize=524288,cache=loose,ro"
_PLAIN_PATH = re.compile(r"^/[A-Za-z0-9_./+-]*$")  # vng passes QEMU's options through a shell


# virtme-ng mounts the guest kernel's modules here; a mount over it, or over a folder
# holding it, would leave modprobe (and the kernel's module autoloading) without them
GUEST_MODULES_DIR = Path("/usr/lib/modules")


def code_dirs() -> list[Path]:
    """Python's standard library, the venv and the harness's own package. Not Python's
    prefix: for the distribution's Python (Debian's, and any container's) that is /usr,
    which holds the guest's modules (GUEST_MODULES_DIR)."""
    import sysconfig

    import harness

    paths = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    return [Path(paths["stdlib"]), Path(paths["platstdlib"]), Path(sys.prefix), Path(harness.__file__).resolve().parent]


def cached_dirs(candidates: list[Path], writable: list[Path]) -> list[Path]:
    """The candidates worth a cached read-only mount: existing directories with plain
    names, none inside another (its mount covers them), none holding or inside a
    directory the guest writes (a read-only mount over it would hide or freeze it)."""
    resolved = sorted(
        {c.resolve() for c in candidates if c.is_dir() and _PLAIN_PATH.match(str(c.resolve())) and not GUEST_MODULES_DIR.is_relative_to(c.resolve())},
        key=lambda p: (len(p.parts), str(p)),
    )
    written = [w.resolve() for w in writable]
    chosen: list[Path] = []
    for directory in resolved:
        if any(directory.is_relative_to(parent) for parent in chosen):
            continue
        if any(w.is_relative_to(directory) or directory.is_relative_to(w) for w in written):
            continue
        chosen.append(directory)
    return chosen


def _tools_dir() -> Path:
    """virtme-ng lives next to this Python (the project's venv)."""
    return Path(sys.executable).parent


def find_vng() -> str:
    vng = shutil.which("vng", path=f"{_tools_dir()}{os.pathsep}{os.environ.get('PATH', '')}")
    if vng is None:
        raise MissingCapability("virtme-ng is not installed: pip install virtme-ng (scripts/install.sh --vm)")
    for binary, package in (("qemu-system-x86_64", "qemu-system-x86"), ("busybox", "busybox-static"), ("udevadm", "udev"), ("file", "file")):  # virtme-ng reads the kernel version with `file`
        if shutil.which(binary) is None and not Path(f"/bin/{binary}").exists():
            raise MissingCapability(f"{binary} is missing: apt-get install --no-install-recommends {package} (scripts/install.sh --vm)")
    return vng


# The guest is a throwaway machine of our own: it lifts the host limits a large run
# needs (harness.hostlimits checks them, and on a real host asks the user to), so a
# 1 000-node file runs there as it would on a prepared host: the hard open-files limit
# (4 096 in the guest) and the kernel's shared neighbour tables (1 024 entries)
GUEST_LIMITS = (
    "ulimit -Hn 1048576 2>/dev/null; "
    + "".join(
        f"sysctl -qw net.{ip}.neigh.default.gc_thresh3=16384 net.{ip}.neigh.default.gc_thresh2=8192 2>/dev/null; "
        for ip in ("ipv4", "ipv6")
    )
)


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
    # a cached mount that fails leaves the uncached view: slower, still right
    mounts = "".join(
        f"mount -t 9p -o {CACHED_MOUNT} {_cache_tag(index)} {directory} 2>/dev/null"
        f" || echo 'wgh vm: {directory} not cached (slower)' >&2; "
        for index, directory in enumerate(_cached(options))
    )
    # a guest still running shortly before the host's deadline says what it is doing
    after = hang_report_after(options.timeout)
    watch = (
        f"env {exports} {shlex.quote(sys.executable)} -m harness.vm.hang_report"
        f" --after {after:g} --within {max(options.timeout - after - 30, 10):g} </dev/null & "
        if options.hang_report else ""
    )
    # a link's NIC is named by udev after its PCI slot: renamed wghlink<N> (found by its MAC)
    links = "".join(
        f"d=$(ip -o link | awk -F': ' '/link\\/ether {LINK_MAC_PREFIX}:{index:02x}:/ {{print $2; exit}}'); "
        f"[ -n \"$d\" ] && ip link set \"$d\" name wghlink{index}; "
        for index in range(len(options.links))
    )
    settle = "udevadm settle 2>/dev/null; " if options.links else ""
    return (
        f"{mounts}for m in {modules}; do modprobe -q $m 2>/dev/null; done; {settle}{links}{GUEST_LIMITS}"
        f"cd {shlex.quote(str(options.cwd))} && {watch}exec env {exports} {shlex.join(command)}"
    )


def hang_report_after(timeout: float) -> float:
    """When the guest reports what it is doing: early enough before the host kills it
    (at `timeout`) for ps and py-spy to finish under emulation."""
    return round(max(timeout - max(60.0, min(300.0, timeout * 0.15)), timeout / 2))


def vng_argv(vng: str, kernel: Kernel, command: list[str], options: VmOptions, use_kvm: bool, script: Path | None = None) -> list[str]:
    """vng's command line; with `script`, the guest runs that file (where run_in_vm wrote
    guest_script): vng passes --exec on the kernel command line, which holds 2048 bytes
    in all, and a long pytest command with the mounts overflowed it (the guest then hung)."""
    argv = [vng, "--run", str(kernel.image), "--force-9p", "--cpus", str(options.cpus), "--memory", options.memory]
    if not use_kvm:
        argv.append("--disable-kvm")
    for directory in options.writable:
        argv += ["--rwdir", str(directory)]
    argv += ["--exec", f"sh {shlex.quote(str(script))}" if script else guest_script(command, options)]
    exports = [
        f"-fsdev local,id={_cache_tag(index)},path={directory},security_model=none,readonly=on "
        f"-device virtio-9p-pci,fsdev={_cache_tag(index)},mount_tag={_cache_tag(index)}"
        for index, directory in enumerate(_cached(options))
    ]
    exports += [link.qemu_options(index) for index, link in enumerate(options.links)]
    return argv + ([f"--qemu-opts={' '.join(exports)}"] if exports else [])  # vng: QEMU's options last


def _cached(options: VmOptions) -> list[Path]:
    return cached_dirs(code_dirs(), options.writable) if options.cache_code else []


def _cache_tag(index: int) -> str:
    return f"wghro{index}"


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
    # the host's temp dir: the guest sees it (virtme-ng overlays the host's /tmp), and
    # only root can read it (the script may carry the environment the caller passed)
    with tempfile.TemporaryDirectory(prefix="wgh-vm-") as private:
        script = Path(private) / "guest.sh"
        script.write_text(guest_script(command, options) + "\n")
        argv = vng_argv(vng, kernel, command, options, use_kvm, script)
        with _termination_raises():
            return _boot_and_wait(argv, accel, options, log)


def _boot_and_wait(argv: list[str], accel: str, options: VmOptions, log) -> VmRun:
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


@contextmanager
def _termination_raises() -> Iterator[None]:
    """SIGTERM and SIGHUP (a cancelled CI job, a closed terminal) end the guest as Ctrl-C
    does. Their default action would end this process at once and leave vng and qemu,
    in their own session, running on; a handler someone else installed (wgh's own, which
    raises KeyboardInterrupt) is kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    replaced = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) in (signal.SIG_DFL, None):
            replaced[signum] = signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, previous in replaced.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)


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
