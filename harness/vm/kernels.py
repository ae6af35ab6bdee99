"""Kernel specs → bootable kernel images.

A spec is a path to a kernel image, an installed release (/boot/vmlinuz-<release>),
or a version such as '6.1' or '6.12.111' that resolves to Debian's newest matching
generic kernel package. Packages are downloaded with apt into a cache (never into
/boot) and unpacked there; virtme-ng finds their modules next to the image.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, MissingCapability

# Debian's generic kernels; -cloud kernels lack 9p and cannot boot under virtme-ng,
# -rt kernels are a different scheduler; both are excluded.
PACKAGE_RE = re.compile(r"^linux-image-(?P<release>(?P<version>\d+\.\d+(?:\.\d+)?)(?:[-+][\w.+-]*)?-(?P<arch>amd64|arm64))-unsigned$")
VERSION_SPEC_RE = re.compile(r"^\d+\.\d+(?:[.\-+][\w.+-]*)?$")


class KernelSpecError(HarnessError, ValueError):
    """The spec names no kernel we can find or fetch; the message says what to do."""


@dataclass(frozen=True)
class Kernel:
    image: Path
    release: str | None
    source: str  # 'path' | 'installed' | 'debian:<package>'

    @property
    def modules_dir(self) -> Path | None:
        if self.release is None:
            return None
        for base in (self.image.parent.parent / "lib/modules", self.image.parent.parent / "usr/lib/modules", Path("/lib/modules")):
            if (base / self.release).is_dir():
                return base / self.release
        return None


def cache_dir() -> Path:
    """Kernels are cached under ~/.cache, which the VM sees (its /var/cache is a tmpfs)."""
    base = os.environ.get("WGH_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "wgharness")
    return Path(base)


def kernels_dir() -> Path:
    return cache_dir() / "kernels"


def release_from_image(path: Path) -> str | None:
    match = re.match(r"^(?:vmlinuz|bzImage|Image)-(.+)$", path.name)
    return match.group(1) if match else None


def debian_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def available_packages(names: list[str], arch: str) -> list[tuple[str, str]]:
    """(package, release) of the generic kernels among `names` for `arch`."""
    found = []
    for name in names:
        match = PACKAGE_RE.match(name.strip())
        if match and match.group("arch") == arch and "-rt-" not in name and "-cloud-" not in name:
            found.append((name.strip(), match.group("release")))
    return found


def _version_key(release: str) -> tuple:
    return tuple(int(n) for n in re.findall(r"\d+", release))


def pick_package(spec: str, packages: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The newest package whose release starts with `spec` at a version boundary:
    '6.1' matches 6.1.0-47 but not 6.12.x; '6.12.111' matches 6.12.111+deb12."""
    matching = [
        (name, release)
        for name, release in packages
        if release == spec or (release.startswith(spec) and release[len(spec)] in ".-+")
    ]
    return max(matching, key=lambda p: _version_key(p[1])) if matching else None


def _apt_package_names() -> list[str]:
    if shutil.which("apt-cache") is None:
        raise KernelSpecError("apt-cache is missing: give the kernel as a path to an image instead")
    out = subprocess.run(["apt-cache", "pkgnames", "linux-image-"], capture_output=True, text=True, timeout=60)
    return out.stdout.splitlines()


def cached_kernels() -> list[Kernel]:
    kernels = []
    directory = kernels_dir()
    for entry in sorted(directory.iterdir()) if directory.is_dir() else []:
        if (entry / ".complete").exists():
            for image in sorted((entry / "boot").glob("vmlinuz-*")):
                kernels.append(Kernel(image, release_from_image(image), f"debian:{entry.name}"))
    return kernels


def resolve(spec: str, *, download: bool = True) -> Kernel:
    """Find (and if needed fetch) the kernel a spec names."""
    path = Path(spec).expanduser()
    if path.is_file():
        return Kernel(path.resolve(), release_from_image(path), "path")
    installed = Path("/boot") / f"vmlinuz-{spec}"
    if installed.is_file():
        return Kernel(installed, spec, "installed")
    if not VERSION_SPEC_RE.match(spec):
        raise KernelSpecError(
            f"kernel spec {spec!r} is not a file, not an installed release (/boot/vmlinuz-{spec}), "
            "and not a version like '6.1' or '6.12'"
        )
    arch = debian_arch()
    cached = {k.source.removeprefix("debian:"): k for k in cached_kernels()}
    try:
        names = _apt_package_names()
    except (KernelSpecError, subprocess.SubprocessError, OSError):
        names = []
    package = pick_package(spec, available_packages(names, arch))
    if package is None:
        # no package lists (offline, no apt-get update): the newest cached match will do
        offline = pick_package(spec, [(name, k.release) for name, k in cached.items() if k.release])
        if offline is not None:
            return cached[offline[0]]
        raise KernelSpecError(
            f"no Debian kernel package matches {spec!r} for {arch} (looked for linux-image-{spec}*-{arch}-unsigned): "
            "run `apt-get update`, check `apt-cache search linux-image-`, or give a path to a kernel image"
        )
    if package[0] in cached:
        return cached[package[0]]
    if not download:
        raise KernelSpecError(f"{package[0]} is not cached yet (`wgh vm --kernel {spec} -- true` fetches it)")
    return fetch(package[0], package[1])


def fetch(package: str, release: str) -> Kernel:
    """apt-get download + dpkg -x into the cache; depmod so modules load in the guest."""
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise MissingCapability(f"{tool} is needed to fetch kernel packages")
    target = kernels_dir() / package
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=kernels_dir()) as tmp:
        os.chmod(tmp, 0o755)  # apt's sandbox user may write here
        result = subprocess.run(["apt-get", "download", "-q", package], cwd=tmp, capture_output=True, text=True, timeout=900)
        debs = list(Path(tmp).glob("*.deb"))
        if result.returncode != 0 or not debs:
            raise KernelSpecError(f"apt-get download {package} failed: {result.stderr.strip()[-500:]}")
        subprocess.run(["dpkg", "-x", str(debs[0]), str(target)], check=True, timeout=600)
    image = target / "boot" / f"vmlinuz-{release}"
    if not image.is_file():
        raise KernelSpecError(f"{package} holds no boot/vmlinuz-{release}")
    depmod = shutil.which("depmod") or "/sbin/depmod"
    for base in (target, target / "usr"):
        if (base / "lib/modules" / release).is_dir() and os.path.exists(depmod):
            subprocess.run([depmod, "-a", "-b", str(base), release], capture_output=True, timeout=300)
    (target / ".complete").write_text(release + "\n")
    return Kernel(image, release, f"debian:{package}")
