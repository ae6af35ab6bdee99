"""The kernel cache: each kernel unpacked into its own directory as virtme-ng expects
it (`boot/vmlinuz-<release>` beside `lib/modules/<release>`), never into /boot.

A directory counts only once `.complete` is written (the release on its first line),
so an interrupted fetch is fetched again rather than booted half-unpacked;
`.packages.json` says what went in (package, version, SHA256), for the record.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.errors import MissingCapability
from harness.kernels.select import KernelSpecError

COMPLETE = ".complete"
CONTENTS = ".packages.json"
# what the harness needs of a guest kernel, as modules or built in
NEEDED_MODULES = {"wireguard": "WireGuard", "sch_netem": "netem"}


@dataclass(frozen=True)
class Kernel:
    image: Path
    release: str | None
    source: str  # 'path' | 'installed' | 'debian:<package>' | 'ubuntu:<package>' | 'deb:<file>' | 'build:<tree>'

    @property
    def modules_dir(self) -> Path | None:
        if self.release is None:
            return None
        for base in (self.image.parent.parent / "lib/modules", self.image.parent.parent / "usr/lib/modules", Path("/lib/modules")):
            if (base / self.release).is_dir():
                return base / self.release
        return None

    def missing_features(self) -> list[str]:
        """What of WireGuard and netem this kernel has neither as a module nor built in
        (empty when its modules cannot be looked at: the guest will say)."""
        directory = self.modules_dir
        if directory is None:
            return []
        builtin = (directory / "modules.builtin").read_text() if (directory / "modules.builtin").is_file() else ""
        present = {re.sub(r"\.ko(\.\w+)?$", "", Path(line).name) for line in builtin.split()}
        for path in (directory / "kernel").rglob("*.ko*") if (directory / "kernel").is_dir() else []:
            present.add(re.sub(r"\.ko(\.\w+)?$", "", path.name))
        return [feature for module, feature in NEEDED_MODULES.items() if module not in present]


def cache_dir() -> Path:
    """Kernels are cached under ~/.cache, which the VM sees (its /var/cache is a tmpfs)."""
    base = os.environ.get("WGH_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "wgharness")
    return Path(base)


def kernels_dir() -> Path:
    return cache_dir() / "kernels"


def release_from_image(path: Path) -> str | None:
    match = re.match(r"^(?:vmlinuz|bzImage|Image)-(.+)$", path.name)
    return match.group(1) if match else None


def entry_source(entry: Path) -> str:
    try:
        return str(json.loads((entry / CONTENTS).read_text())["source"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"debian:{entry.name}"  # caches written before the record existed


def cached_kernels() -> list[Kernel]:
    kernels = []
    directory = kernels_dir()
    for entry in sorted(directory.iterdir()) if directory.is_dir() else []:
        if (entry / COMPLETE).exists():
            for image in sorted((entry / "boot").glob("vmlinuz-*")):
                kernels.append(Kernel(image, release_from_image(image), entry_source(entry)))
    return kernels


def cached(entry_name: str) -> Kernel | None:
    entry = kernels_dir() / entry_name
    if not (entry / COMPLETE).exists():
        return None
    images = sorted((entry / "boot").glob("vmlinuz-*"))
    return Kernel(images[0], release_from_image(images[0]), entry_source(entry)) if images else None


def unpack(debs: list[Path], target: Path) -> None:
    """dpkg -x each .deb into the target (image and module packages side by side)."""
    if shutil.which("dpkg") is None:
        raise MissingCapability("dpkg is needed to unpack kernel packages (apt-get install dpkg)")
    for deb in debs:
        subprocess.run(["dpkg", "-x", str(deb), str(target)], check=True, capture_output=True, timeout=600)


def finish(target: Path, release: str, source: str, contents: list[dict]) -> Kernel:
    """Check the image is there, index the modules (depmod) so they load in the guest,
    and mark the entry complete."""
    image = target / "boot" / f"vmlinuz-{release}"
    if not image.is_file():
        raise KernelSpecError(f"{source} holds no boot/vmlinuz-{release}")
    if not (target / "lib").exists() and (target / "usr/lib/modules").is_dir():
        (target / "lib").symlink_to("usr/lib")  # virtme-ng looks beside boot/ for lib/modules
    depmod = shutil.which("depmod") or "/sbin/depmod"
    if (target / "lib/modules" / release).is_dir() and os.path.exists(depmod):
        subprocess.run([depmod, "-a", "-b", str(target), release], capture_output=True, timeout=300)
    (target / CONTENTS).write_text(json.dumps({"source": source, "release": release, "packages": contents}, indent=2) + "\n")
    (target / COMPLETE).write_text(release + "\n")
    return Kernel(image, release, source)
