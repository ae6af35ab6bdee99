"""podman for the tests: runc pinned, limits it can apply here, a Debian 12 base image
made from Debian's archive (no image registry is reachable here: debootstrap, then
`podman import`, kept in podman's storage for later runs), the project's image built
from the Containerfile on it."""

from __future__ import annotations

import resource
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/wgh-debian12-base:2"  # what docker.io/library/debian:12 is, made here
# docker.io/library/debian:12's sources: the release, its updates and security
DEBIAN_SOURCES = """Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def podman_command() -> tuple[list[str], list[str]]:
    missing = [tool for tool in ("podman", "runc", "debootstrap") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: scripts/install.sh --container")
    # Debian's default runtime (crun) cannot run privileged containers on every host, and
    # neither runtime may raise RLIMIT_NOFILE/NPROC here: pin both to what we have
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    return ["podman", "--runtime", "runc"], ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", "nproc=4096:4096"]


def run(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def ensure_base_image(podman: list[str], tmp_path: Path) -> None:
    if run([*podman, "image", "exists", BASE], 60).returncode == 0:
        return
    rootfs = tmp_path / "rootfs"
    made = run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), "http://deb.debian.org/debian"], 900)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(DEBIAN_SOURCES)
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)  # as the registry's image: no lists until apt-get update
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run([*podman, "import", "-", BASE], stdin=tar.stdout, capture_output=True, text=True, timeout=300)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    assert imported.returncode == 0, imported.stderr


def build_image(podman: list[str], limits: list[str], tag: str) -> None:
    """The project's image from the Containerfile, on the local base image."""
    # the host's CA bundle, for pip behind a TLS-intercepting proxy (the Containerfile's PIP_CERT)
    built = run(
        # --network host: the build's apt and pip go out as the host's own would; a private
        # network would make the runtime add a bridge, an address and NAT rules to the host
        [*podman, "build", "--pull=never", "--network", "host", *limits, "--volume", "/etc/ssl/certs/ca-certificates.crt:/run/proxy-ca.crt:ro",
         "--build-arg", "PIP_CERT=/run/proxy-ca.crt", "--build-arg", f"BASE={BASE}", "-f", "Containerfile", "-t", tag, str(ROOT)],
        1200,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
