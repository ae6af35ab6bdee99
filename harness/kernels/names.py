"""Kernel package names → the kernels an archive offers (pure: no apt, no files).

Debian names its images `linux-image-<release>` (signed) and
`linux-image-<release>-unsigned`, with releases such as `6.1.0-47-amd64` or
`6.12.107+deb12-amd64`; the image package also holds the modules. Ubuntu names them
`linux-image-unsigned-<release>` (and signed `linux-image-<release>`) with releases
such as `6.8.0-51-generic`, and keeps the modules apart: `linux-modules-<release>`
(WireGuard among them) and `linux-modules-extra-<release>` (sch_netem among them).
Signed and unsigned images of one release are the same kernel to QEMU: the unsigned
one is preferred where both exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# -cloud kernels lack 9p and cannot boot under virtme-ng, -rt ones are a different
# scheduler, metapackages (linux-image-amd64, linux-image-6.12-amd64) hold no kernel:
# a release has a full x.y.z version, and its flavour is the generic one
_DEBIAN = re.compile(r"^linux-image-(?P<release>\d+\.\d+\.\d+(?:-\d+|\+deb\d+)-(?P<arch>amd64|arm64))(?P<unsigned>-unsigned)?$")
_UBUNTU = re.compile(r"^linux-image-(?P<unsigned>unsigned-)?(?P<release>\d+\.\d+\.\d+-\d+-generic)$")
_UBUNTU_MODULES = ("linux-modules-{release}", "linux-modules-extra-{release}")
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:-(\d+))?")
SPEC_RE = re.compile(r"^\d+\.\d+(?:[.\-+][\w.+-]*)?$")


def release_key(release: str) -> tuple[int, int, int, int, str]:
    """Orders releases as versions: 6.1.0-9 < 6.1.0-47 < 6.12.100+deb12 < 6.12.107+deb12."""
    match = _VERSION.match(release)
    if not match:
        return (0, 0, 0, 0, release)
    major, minor, patch, abi = (int(g) if g else 0 for g in match.groups())
    return (major, minor, patch, abi, release)


@dataclass(frozen=True)
class ArchiveKernel:
    """One kernel release an archive offers, and the packages that make it up: the
    image package first, then (Ubuntu) the module packages."""

    release: str
    distro: str  # 'debian' | 'ubuntu'
    packages: tuple[str, ...]

    @property
    def image_package(self) -> str:
        return self.packages[0]

    @property
    def key(self) -> tuple:
        return release_key(self.release)


def archive_kernels(names: list[str], arch: str) -> list[ArchiveKernel]:
    """The bootable kernels among `names` (package names apt knows) for `arch`, oldest first."""
    known = {name.strip() for name in names if name.strip()}
    images: dict[str, tuple[str, str, bool]] = {}  # release → (distro, package, unsigned)
    for name in known:
        debian = _DEBIAN.match(name)
        if debian and debian.group("arch") == arch:
            candidate = ("debian", name, bool(debian.group("unsigned")))
        else:
            ubuntu = _UBUNTU.match(name)
            if not ubuntu or arch not in ("amd64", "arm64"):
                continue
            candidate = ("ubuntu", name, bool(ubuntu.group("unsigned")))
        release = (debian or ubuntu).group("release")
        if release not in images or (candidate[2] and not images[release][2]):
            images[release] = candidate
    found = []
    for release, (distro, image, _) in images.items():
        packages = [image]
        if distro == "ubuntu":
            packages += [p for pattern in _UBUNTU_MODULES if (p := pattern.format(release=release)) in known]
        found.append(ArchiveKernel(release, distro, tuple(packages)))
    return sorted(found, key=lambda k: k.key)


def matches(spec: str, release: str) -> bool:
    """A spec names a release, or its start up to a version boundary: '6.1' matches
    6.1.0-47-amd64 but not 6.12.x; '6.1.0-5' does not match 6.1.0-53."""
    return release == spec or (release.startswith(spec) and release[len(spec)] in ".-+")
