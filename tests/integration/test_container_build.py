"""The container image, built and run with podman: the scenarios pass in it when it runs
privileged, and with exactly the capabilities the Containerfile lists; without them
the entry point refuses and names each one. No image registry is reachable here, so
the base image is made from Debian's archive (debootstrap, then `podman import`) and
kept in podman's storage for later runs; the image built from the Containerfile is
removed afterwards."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .placement import host_only
from .podman import build_image, ensure_base_image, podman_command, run

pytestmark = [pytest.mark.requires("root"), host_only]

SUITE = ["scenarios/direct.yaml", "scenarios/nat.yaml", "scenarios/allowed-ips-mismatch.yaml"]
CAPABILITIES = ["--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW", "--cap-add", "SYS_ADMIN", "--security-opt", "systempaths=unconfined", "--device", "/dev/net/tun"]


def _statuses(results: Path) -> dict[str, str]:
    (document,) = [json.loads(p.read_text()) for p in results.glob("*/results.json")]
    return {s["id"]: s["status"] for s in document["scenarios"]}


def test_the_image_runs_the_scenarios_with_the_privileges_it_lists(tmp_path):
    """One test (one image build): privileged, with exactly the listed capabilities,
    and without them."""
    podman, limits = podman_command()
    ensure_base_image(podman, tmp_path / "base")
    tag = f"localhost/wgharness-test:{os.getpid()}"
    build_image(podman, limits, tag)
    try:
        for name, options in (("privileged", ["--privileged"]), ("capabilities", CAPABILITIES), ("unprivileged", [])):
            results = tmp_path / name
            results.mkdir()
            # --network none: the scenarios need no network outside the container's own namespaces
            done = run([*podman, "run", "--rm", "--network", "none", *limits, *options, "-v", f"{results}:/results", tag, "run", *SUITE], 600)
            if name == "unprivileged":
                assert done.returncode == 2, done.stderr
                for needed in ("--cap-add NET_ADMIN", "--cap-add NET_RAW", "--cap-add SYS_ADMIN", "systempaths=unconfined", "--device /dev/net/tun"):
                    assert needed in done.stderr, done.stderr
                assert not list(results.iterdir()), "nothing ran"
            else:
                assert done.returncode == 0, f"{name}: " + done.stdout[-3000:] + done.stderr[-3000:]
                assert _statuses(results) == {Path(f).stem: "passed" for f in SUITE}, name
    finally:
        run([*podman, "rmi", "--force", tag], 120)
