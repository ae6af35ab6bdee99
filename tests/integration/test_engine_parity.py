"""Every engine means the same: the scenario library on the Mininet engine gives the
verdicts and diagnosis codes it gives on the netns engine, case by case, skips
included (an engine-specific limit must be declared as a skip with its reason, never
be silently different). On the host with wireguard-go; in the VM (pytest --vm-kernel)
with kernel WireGuard and netem, for the cases only a VM can run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.engines import DEFAULT, ENGINES
from harness.results.verdicts import differences, verdicts

pytestmark = pytest.mark.requires("root", "wireguard")

REPO = Path(__file__).resolve().parents[2]
# in the emulated VM (10-50x slower, the test sharing two CPUs with the other
# workers) what the host cannot show: netem (lossy-link), kernel WireGuard with
# wireguard-go in one network (interop), and NAT with DNS (dns-endpoint); the host
# runs the whole library
VM_FILES = ["scenarios/lossy-link.yaml", "scenarios/interop.yaml", "scenarios/dns-endpoint.yaml"]


def _library(wgh_cli, engine: str, backend: str, files: list[str]) -> dict:
    # in the VM this test shares the guest's two CPUs with the other pytest workers
    jobs = "2" if os.environ.get("WGH_IN_VM") else "auto"
    done = wgh_cli("run", "--no-results", "--json", "-j", jobs, "--engine", engine, "--backend", backend, *files, timeout=1800)
    assert done.returncode == 0, f"{engine}: exit {done.returncode}\n{done.stderr[-4000:]}"
    return verdicts(json.loads(done.stdout))


@pytest.mark.parametrize("engine", [name for name in ENGINES if name != DEFAULT])
def test_the_library_gives_the_same_verdicts_on_every_engine(wgh_cli, wgh_backend, engine):
    files = VM_FILES if os.environ.get("WGH_IN_VM") else ["scenarios/"]
    missing = [f for f in files if not (REPO / f).exists()]
    assert not missing, f"parity files renamed or gone: {missing}"
    reference = _library(wgh_cli, DEFAULT, wgh_backend, files)
    ran = [case for case, (status, _) in reference.items() if status != "skipped"]
    assert len(ran) >= (4 if os.environ.get("WGH_IN_VM") else 30), f"too few cases ran to compare: {ran}"
    assert any(cause for status, steps in reference.values() for _, cause in steps), "some case failed for a named cause"
    assert differences(reference, _library(wgh_cli, engine, wgh_backend, files)) == {}
