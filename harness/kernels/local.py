"""Kernels of the user's own: a .deb (or a folder of them: Ubuntu's image and module
packages), or a kernel build tree (`make`, or `vng --build`). Each is unpacked or
installed into the cache once, keyed by its content, so a rebuilt tree is taken anew."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from harness.errors import MissingCapability
from harness.kernels.archive import sha256_of
from harness.kernels.cache import Kernel, cached, finish, kernels_dir, release_from_image, unpack
from harness.kernels.select import KernelSpecError

BUILT_IMAGES = ("arch/x86/boot/bzImage", "arch/arm64/boot/Image")


def is_build_tree(path: Path) -> bool:
    return path.is_dir() and any((path / image).is_file() for image in BUILT_IMAGES)


def debs_of(path: Path) -> list[Path]:
    """The .deb a path names, or the .debs of a folder."""
    if path.is_file() and path.suffix == ".deb":
        return [path]
    if path.is_dir():
        return sorted(path.glob("*.deb"))
    return []


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(sha256_of(path).encode())
    return digest.hexdigest()[:16]


def from_debs(debs: list[Path]) -> Kernel:
    """Unpack the user's kernel packages (an image, and modules where they live apart)."""
    entry = f"deb-{_digest(debs)}"
    if (found := cached(entry)) is not None:
        return found
    target = kernels_dir() / entry
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    unpack(debs, target)
    images = sorted((target / "boot").glob("vmlinuz-*"))
    if len(images) != 1:
        shutil.rmtree(target, ignore_errors=True)
        raise KernelSpecError(f"{', '.join(d.name for d in debs)}: expected one boot/vmlinuz-<release>, found {len(images)}")
    release = release_from_image(images[0])
    assert release is not None  # the glob's pattern
    contents = [{"file": d.name, "sha256": sha256_of(d)} for d in debs]
    return finish(target, release, "deb:" + ",".join(d.name for d in debs), contents)


def _config(tree: Path) -> dict[str, str]:
    config = {}
    for line in (tree / ".config").read_text().splitlines() if (tree / ".config").is_file() else []:
        key, sep, value = line.partition("=")
        if sep and key.startswith("CONFIG_"):
            config[key] = value
    return config


def from_build_tree(tree: Path) -> Kernel:
    """A built kernel tree: its image, and its modules installed with
    `make modules_install` into the cache (where the tree has modules)."""
    image = next(tree / i for i in BUILT_IMAGES if (tree / i).is_file())
    release_file = tree / "include/config/kernel.release"
    if not release_file.is_file():
        raise KernelSpecError(f"{tree}: no include/config/kernel.release: is the tree built (make, or vng --build)?")
    release = release_file.read_text().strip()
    config = _config(tree)
    for option, feature in (("CONFIG_WIREGUARD", "WireGuard"), ("CONFIG_NET_SCH_NETEM", "netem")):
        if config and config.get(option) not in ("y", "m"):
            raise KernelSpecError(f"{tree}: {option} is not set: the harness needs {feature} (scripts/config -m {option[7:]}; make olddefconfig)")
    entry = f"build-{release}-{_digest([image])}"
    if (found := cached(entry)) is not None:
        return found
    target = kernels_dir() / entry
    shutil.rmtree(target, ignore_errors=True)
    (target / "boot").mkdir(parents=True)
    shutil.copy2(image, target / "boot" / f"vmlinuz-{release}")
    if config.get("CONFIG_MODULES") == "y" and (tree / "modules.order").is_file():
        if shutil.which("make") is None:
            raise MissingCapability("make is needed to install the tree's modules (apt-get install make)")
        result = subprocess.run(
            ["make", "-s", "-C", str(tree), "modules_install", f"INSTALL_MOD_PATH={target}", "INSTALL_MOD_STRIP=1"],
            capture_output=True, text=True, timeout=1800,
        )
        if result.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise KernelSpecError(f"{tree}: make modules_install failed: {result.stderr.strip()[-500:]}")
    return finish(target, release, f"build:{tree}", [{"file": str(image), "sha256": sha256_of(image)}])
