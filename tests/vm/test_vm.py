"""`wgh vm` for real: boots Debian's 6.1 kernel (fetched and cached on first use)
under virtme-ng. Slow under software emulation (~20 s a boot), so few boots."""

from __future__ import annotations

import subprocess
import time

import pytest

from harness.vm.kernels import resolve

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
    result = wgh_cli("vm", "--kernel", KERNEL, "--timeout", "15", "--", "sleep", "600", timeout=300)
    assert result.returncode == 124
    assert "did not finish within 15s and was killed" in result.stderr
    assert time.monotonic() - started < 120
    time.sleep(0.5)
    qemus = subprocess.run(["pgrep", "-f", f"qemu-system.*{kernel.image}"], capture_output=True, text=True).stdout
    assert qemus.strip() == "", f"guest still running: {qemus}"


def test_unknown_kernel_spec_is_a_clear_error(wgh_cli):
    result = wgh_cli("vm", "--kernel", "9.99", "--", "true")
    assert result.returncode == 2
    assert "no Debian kernel package matches '9.99'" in result.stderr


def test_doctor_reports_cached_kernels_and_kvm(wgh_cli, kernel):
    out = wgh_cli("doctor").stdout
    line = next(line for line in out.splitlines() if "vm kernels" in line)
    assert kernel.release in line
    assert any(line.split()[1:2] == ["kvm"] for line in out.splitlines())
