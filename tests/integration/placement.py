"""Where an integration test runs: some are about the harness's own processes,
signals and records, which no kernel changes, so the emulated VM (10-50x slower)
would only repeat them at great cost."""

import os

import pytest

host_only = pytest.mark.skipif(
    bool(os.environ.get("WGH_IN_VM")), reason="kernel-independent (the harness's own processes and records): runs on the host"
)

# what imported config files mean, and how a broken set is diagnosed, is the harness's
# logic over either backend; the VM runs the networkd + wg-quick pair with kernel WireGuard
config_logic_host_only = pytest.mark.skipif(
    bool(os.environ.get("WGH_IN_VM")), reason="config import and diagnosis do not depend on the kernel: runs on the host"
)
