"""A planted kernel regression, for wgh bisect's VM test (tests/vm/test_bisect_kernels.py).

Its check depends on the kernel's version: it fails on every kernel from
PLANTED_FIRST_BAD on, in the archive's release order, and passes on those before, as
a scenario would when a kernel update broke it. Besides, it checks what every kernel
of the range must give (kernel WireGuard), so each boot is a real one. Not a test of
the harness: its name has no test_ prefix, so pytest collects it only when named,
and it only runs inside a wgh vm guest."""

from __future__ import annotations

import os

import pytest

from harness import caps
from harness.kernels.names import release_key

PLANTED_FIRST_BAD = "6.1.0-53-amd64"


def test_the_kernel_predates_the_planted_regression():
    if os.environ.get("WGH_IN_VM") != "1":
        pytest.skip("a planted regression: runs only inside a wgh vm guest, booted by wgh bisect")
    release = os.uname().release
    assert caps.kernel_wireguard(), f"kernel {release} has no WireGuard module"
    assert release_key(release) < release_key(PLANTED_FIRST_BAD), (
        f"kernel {release} is at or after the planted regression ({PLANTED_FIRST_BAD})"
    )
