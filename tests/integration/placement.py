"""Where an integration test runs: some are about the harness's own processes,
signals and records, which no kernel changes, so the emulated VM (10-50x slower)
would only repeat them at great cost."""

import os

import pytest

host_only = pytest.mark.skipif(
    bool(os.environ.get("WGH_IN_VM")), reason="kernel-independent (the harness's own processes and records): runs on the host"
)
