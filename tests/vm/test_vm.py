"""`wgh vm` for real: boots Debian's 6.1 kernel (fetched and cached on first use)
under virtme-ng. Slow under software emulation (~20 s a boot), so few boots."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from harness.kernels.resolve import resolve

pytestmark = pytest.mark.requires("root", "vm")
KERNEL = "6.1"


@pytest.fixture(scope="module")
def kernel():
    return resolve(KERNEL)


def test_guest_has_kernel_wireguard_and_netem_and_exit_code_propagates(wgh_cli, kernel):
    probe = "from harness import caps; assert caps.kernel_wireguard() and caps.netem(); print('inside', caps.resolve_backend('auto'))"
    result = wgh_cli("vm", "--kernel", KERNEL, "--", "sh", "-c", f"python -c \"{probe}\" && uname -r && exit 7", timeout=600)
    assert result.returncode == 7, result.stdout + result.stderr
    assert "inside kernel" in result.stdout
    assert kernel.release in result.stdout  # the guest runs the kernel we asked for
    assert "wgh vm: booting" in result.stderr


def test_timeout_kills_the_guest(wgh_cli, kernel):
    started = time.monotonic()
    process = subprocess.Popen(
        [wgh_cli.path, "vm", "--kernel", KERNEL, "--timeout", "15", "--", "sleep", "600"], stderr=subprocess.PIPE, text=True
    )
    guest = _guest_of(process)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 124
    assert "did not finish within 15s and was killed" in stderr
    assert time.monotonic() - started < 120
    time.sleep(0.5)
    left = _command_lines_of(guest)  # this run's own: other tests may boot guests meanwhile
    assert not left, f"guest still running: {left}"


def _guest_of(process: subprocess.Popen) -> set[int]:
    """The processes under `process` once its qemu is running (vng, virtme-run, qemu)."""
    deadline = time.monotonic() + 120
    while not any("qemu-system" in " ".join(argv) for _, argv in _command_lines_of(_descendants(process.pid))):
        assert time.monotonic() < deadline and process.poll() is None, "the guest never started"
        time.sleep(0.2)
    return _descendants(process.pid)


def _descendants(pid: int) -> set[int]:
    from harness.processes import command_lines, parent_of

    found, grew = {pid}, True
    while grew:
        children = {child for child, _ in command_lines() if parent_of(child) in found} - found
        found |= children
        grew = bool(children)
    return found - {pid}


@pytest.mark.parametrize(
    "entry, signum",
    [("pytest --vm-kernel", signal.SIGTERM), ("wgh vm", signal.SIGHUP)],
    ids=["pytest-sigterm", "wgh-vm-sighup"],
)
def test_a_signal_to_the_host_side_ends_the_guest(wgh_cli, kernel, tmp_path, entry, signum):
    """A cancelled CI job sends SIGTERM, a closed terminal SIGHUP: vng and qemu live in
    their own session, so we must end them, not leave them running (pytest leaves
    SIGTERM's default action in place: it used to end pytest alone)."""
    (tmp_path / "test_sleeps.py").write_text("import time\n\ndef test_sleeps():\n    time.sleep(600)\n")
    if entry == "wgh vm":
        argv = [wgh_cli.path, "vm", "--kernel", KERNEL, "--", "sleep", "600"]
    else:
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--vm-kernel", KERNEL, "test_sleeps.py"]
    process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        guest = _guest_of(process)
        process.send_signal(signum)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    time.sleep(0.5)
    left = _command_lines_of(guest)
    assert not left, f"still running after {signal.Signals(signum).name} to {entry}: {[(pid, argv[:1]) for pid, argv in left]}"
    assert process.returncode != 0


def _command_lines_of(pids: set[int]) -> list[tuple[int, list[str]]]:
    from harness.processes import command_lines

    return [(pid, argv) for pid, argv in command_lines() if pid in pids]


def test_unknown_kernel_spec_is_a_clear_error(wgh_cli):
    result = wgh_cli("vm", "--kernel", "9.99", "--", "true")
    assert result.returncode == 2
    assert "no kernel in the archive matches '9.99' (on offer, " in result.stderr  # and which are
    result = wgh_cli("vm", "--kernel", "6.1.0-47..6.1.0-57", "--", "true")
    assert result.returncode == 2 and "names several kernels" in result.stderr


def test_doctor_reports_cached_kernels_and_kvm(wgh_cli, kernel):
    out = wgh_cli("doctor").stdout
    line = next(line for line in out.splitlines() if "vm kernels" in line)
    assert kernel.release in line
    assert any(line.split()[1:2] == ["kvm"] for line in out.splitlines())
