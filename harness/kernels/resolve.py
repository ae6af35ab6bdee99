"""Kernel specs → bootable kernels, fetched into the cache where needed.

A spec is a path to a kernel image, a .deb or a folder of .debs (an image and its
module packages), a kernel build tree, an installed release (/boot/vmlinuz-<release>),
or an archive term (see harness.kernels.select) resolved against what this host's apt
offers: Debian's archive on Debian, Ubuntu's on Ubuntu. Without package lists
(offline, no `apt-get update`) the kernels already cached are what is on offer.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from harness.kernels import archive
from harness.kernels.cache import Kernel, cached, cached_kernels, finish, kernels_dir, release_from_image, unpack
from harness.kernels.local import debs_of, from_build_tree, from_debs, is_build_tree
from harness.kernels.names import ArchiveKernel, archive_kernels
from harness.kernels.select import KernelSpecError, is_archive_term, select, split_terms

HOST = "host"  # `wgh matrix`: the host's own kernel, no VM


def debian_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def _cached_offer() -> list[ArchiveKernel]:
    found = {}
    for kernel in cached_kernels():
        distro, _, package = kernel.source.partition(":")
        if distro in ("debian", "ubuntu") and kernel.release:
            found[kernel.release] = ArchiveKernel(kernel.release, distro, (package,))
    return sorted(found.values(), key=lambda k: k.key)


def offer() -> list[ArchiveKernel]:
    """The kernels the archive offers this host (those with an installable image),
    oldest first; the cached ones when apt knows none."""
    try:
        candidates = archive_kernels(archive.package_names(), debian_arch())
        known = archive.records([k.image_package for k in candidates]) if candidates else {}
    except (KernelSpecError, OSError) as exc:
        candidates, known = [], {}
        if not _cached_offer():
            raise KernelSpecError(f"no kernel archive to look in ({exc}) and none cached") from exc
    offered = [k for k in candidates if k.image_package in known]
    return offered or _cached_offer()


def fetch(kernel: ArchiveKernel) -> Kernel:
    """Download the kernel's packages, check each against the archive's index (size,
    SHA256), unpack them side by side and index the modules. Nothing is cached unless
    every package checked out."""
    entry = kernel.image_package
    if (found := cached(entry)) is not None:
        return found
    known = archive.records(list(kernel.packages))
    missing = [p for p in kernel.packages if p not in known]
    if missing:
        raise KernelSpecError(f"the archive has no installable {', '.join(missing)} (run `apt-get update`)")
    kernels_dir().mkdir(parents=True, exist_ok=True)
    target = kernels_dir() / entry
    shutil.rmtree(target, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=kernels_dir(), prefix=".download-") as scratch:
        debs, contents = [], []
        for package in kernel.packages:
            deb = archive.apt_download(package, Path(scratch))
            record = archive.verify(deb, known[package])
            debs.append(deb)
            contents.append({"package": package, "version": record.version, "sha256": record.sha256, "size": record.size})
        target.mkdir(parents=True)
        try:
            unpack(debs, target)
            return finish(target, kernel.release, f"{kernel.distro}:{entry}", contents)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise


def _local(spec: str) -> Kernel | None:
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix != ".deb":
        return Kernel(path.resolve(), release_from_image(path), "path")
    if is_build_tree(path):
        return from_build_tree(path.resolve())
    debs = debs_of(path)
    if debs:
        return from_debs([d.resolve() for d in debs])
    if path.is_dir():
        raise KernelSpecError(f"{spec}: a folder, but neither a kernel build tree (arch/*/boot/bzImage) nor a folder of .debs")
    installed = Path("/boot") / f"vmlinuz-{spec}"
    if "/" not in spec and installed.is_file():
        return Kernel(installed, spec, "installed")
    return None


def _unknown(spec: str) -> KernelSpecError:
    return KernelSpecError(
        f"kernel spec {spec!r} is not a file, a .deb, a kernel build tree, an installed release (/boot/vmlinuz-{spec}), "
        "nor a version like '6.1', '6.1.0-53' or '6.12.115', 'latest', 'all' or a range such as 6.1.0-47..6.1.0-57"
    )


def resolve(spec: str, *, download: bool = True, offered: Callable[[], list[ArchiveKernel]] | None = None) -> Kernel:
    """The one kernel a spec names (a version: the newest that matches). `offered`
    gives what is on offer, asked only for an archive term: callers resolving several
    pass one that asks apt once (functools.cache(offer))."""
    local = _local(spec)
    if local is not None:
        return local
    if not is_archive_term(spec):
        raise _unknown(spec)
    if spec == "all" or ".." in spec:
        raise KernelSpecError(f"{spec!r} names several kernels: give one (`wgh matrix --kernels` takes several)")
    (chosen,) = select(spec, (offered or offer)())
    if not download and cached(chosen.image_package) is None:
        raise KernelSpecError(f"{chosen.image_package} is not cached yet (`wgh vm --kernel {spec} -- true` fetches it)")
    return fetch(chosen)


def expand(expression: str, offered: Callable[[], list[ArchiveKernel]] | None = None) -> list[str]:
    """A comma-separated kernel expression → one spec per kernel, in order, duplicates
    dropped: archive terms become releases ('all' every one on offer), paths and
    'host' stay as they are. Nothing is downloaded. `offered`: as for resolve()."""
    specs: list[str] = []
    for term in split_terms(expression):
        if term == HOST or _local_path(term):
            specs.append(term)
        elif is_archive_term(term):
            specs += [k.release for k in select(term, (offered or offer)())]
        else:
            raise _unknown(term)
    return list(dict.fromkeys(specs))



def _local_path(term: str) -> bool:
    path = Path(term).expanduser()
    return path.exists() or (Path("/boot") / f"vmlinuz-{term}").is_file()
