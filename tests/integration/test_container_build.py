"""The container image, built and run with podman: the scenarios pass in it when it runs
privileged, and with exactly the capabilities the Containerfile lists; without them
the entry point refuses and names each one. No image registry is reachable here, so
the base image is made from Debian's archive (debootstrap, then `podman import`) and
kept in podman's storage for later runs; the image built from the Containerfile is
removed afterwards."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from .placement import host_only

pytestmark = [pytest.mark.requires("root"), host_only]

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/wgh-debian12-base"
SUITE = ["scenarios/direct.yaml", "scenarios/nat.yaml", "scenarios/allowed-ips-mismatch.yaml"]
CAPABILITIES = ["--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW", "--cap-add", "SYS_ADMIN", "--security-opt", "systempaths=unconfined", "--device", "/dev/net/tun"]


def _podman() -> list[str]:
    missing = [tool for tool in ("podman", "runc", "debootstrap") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: scripts/install.sh --container")
    # Debian's default runtime (crun) cannot run privileged containers on every host, and
    # neither runtime may raise RLIMIT_NOFILE/NPROC here: pin both to what we have
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    return ["podman", "--runtime", "runc"], ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", "nproc=4096:4096"]


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _base_image(podman: list[str], tmp_path: Path) -> None:
    if _run([*podman, "image", "exists", BASE], 60).returncode == 0:
        return
    rootfs = tmp_path / "rootfs"
    made = _run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), "http://deb.debian.org/debian"], 900)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run([*podman, "import", "-", BASE], stdin=tar.stdout, capture_output=True, text=True, timeout=300)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    assert imported.returncode == 0, imported.stderr


def _build(podman: list[str], limits: list[str], tag: str) -> None:
    # the host's CA bundle, for pip behind a TLS-intercepting proxy (the Containerfile's PIP_CERT)
    built = _run(
        # --network host: the build's apt and pip go out as the host's own would; a private
        # network would make the runtime add a bridge, an address and NAT rules to the host
        [*podman, "build", "--pull=never", "--network", "host", *limits, "--volume", "/etc/ssl/certs/ca-certificates.crt:/run/proxy-ca.crt:ro",
         "--build-arg", "PIP_CERT=/run/proxy-ca.crt", "--build-arg", f"BASE={BASE}", "-f", "Containerfile", "-t", tag, str(ROOT)],
        1200,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]


def _statuses(results: Path) -> dict[str, str]:
    (document,) = [json.loads(p.read_text()) for p in results.glob("*/results.json")]
    return {s["id"]: s["status"] for s in document["scenarios"]}


def test_the_image_runs_the_scenarios_with_the_privileges_it_lists(tmp_path):
    """One test (one image build): privileged, with exactly the listed capabilities,
    and without them."""
    podman, limits = _podman()
    _base_image(podman, tmp_path / "base")
    tag = f"localhost/wgharness-test:{os.getpid()}"
    _build(podman, limits, tag)
    try:
        for name, options in (("privileged", ["--privileged"]), ("capabilities", CAPABILITIES), ("unprivileged", [])):
            results = tmp_path / name
            results.mkdir()
            # --network none: the scenarios need no network outside the container's own namespaces
            done = _run([*podman, "run", "--rm", "--network", "none", *limits, *options, "-v", f"{results}:/results", tag, "run", *SUITE], 600)
            if name == "unprivileged":
                assert done.returncode == 2, done.stderr
                for needed in ("--cap-add NET_ADMIN", "--cap-add NET_RAW", "--cap-add SYS_ADMIN", "systempaths=unconfined", "--device /dev/net/tun"):
                    assert needed in done.stderr, done.stderr
                assert not list(results.iterdir()), "nothing ran"
            else:
                assert done.returncode == 0, f"{name}: " + done.stdout[-3000:] + done.stderr[-3000:]
                assert _statuses(results) == {Path(f).stem: "passed" for f in SUITE}, name
    finally:
        _run([*podman, "rmi", "--force", tag], 120)
