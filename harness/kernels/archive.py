"""What this host's apt offers, and fetching a package checked against the archive.

apt knows the archive's packages from its signed indexes (InRelease → Packages), whose
records give each .deb's size and SHA256. `apt-get download` checks them too; we check
again against the record we read, so a .deb that reaches the cache is the archive's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from harness.errors import MissingCapability
from harness.kernels.select import KernelSpecError

NAME_PREFIXES = ("linux-image-", "linux-modules-")  # Ubuntu's modules live apart from its images


@dataclass(frozen=True)
class PackageRecord:
    """One version of one package, as the archive's Packages index describes it."""

    package: str
    version: str
    filename: str  # pool/main/l/linux/linux-image-…_amd64.deb
    sha256: str
    size: int

    @property
    def deb_name(self) -> str:
        return Path(self.filename).name


def parse_records(text: str) -> list[PackageRecord]:
    """`apt-cache show` output (RFC 822 stanzas) → the records that name a file."""
    records = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue  # continuation lines (descriptions) carry nothing we need
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        if {"Package", "Version", "Filename", "SHA256", "Size"} <= fields.keys():
            records.append(PackageRecord(fields["Package"], fields["Version"], fields["Filename"], fields["SHA256"].lower(), int(fields["Size"])))
    return records


def _apt_cache(*args: str) -> str:
    if shutil.which("apt-cache") is None:
        raise KernelSpecError("apt-cache is missing: give the kernel as a path to an image, a .deb or a kernel build tree instead")
    result = subprocess.run(["apt-cache", *args], capture_output=True, text=True, timeout=120)
    return result.stdout


def package_names() -> list[str]:
    """Every kernel image and module package name apt knows (may include names with
    no installable version: records() tells)."""
    names: list[str] = []
    for prefix in NAME_PREFIXES:
        names += _apt_cache("pkgnames", prefix).splitlines()
    return names


def records(packages: list[str]) -> dict[str, list[PackageRecord]]:
    """The archive's records of these packages, by package (a name with none is absent)."""
    found: dict[str, list[PackageRecord]] = {}
    if packages:
        for record in parse_records(_apt_cache("show", *packages)):
            found.setdefault(record.package, []).append(record)
    return found


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(deb: Path, candidates: list[PackageRecord]) -> PackageRecord:
    """The record this downloaded .deb is, checked by size and SHA256; raises otherwise."""
    name = unquote(deb.name)  # apt-get download writes an epoch's ':' as %3a
    record = next((r for r in candidates if r.deb_name == name), None)
    if record is None:
        raise KernelSpecError(f"{deb.name}: the archive's index lists no such file ({', '.join(r.deb_name for r in candidates) or 'no records'})")
    size = deb.stat().st_size
    if size != record.size:
        raise KernelSpecError(f"{deb.name}: {size} bytes, but the archive's index says {record.size}: the download is damaged, not cached")
    digest = sha256_of(deb)
    if digest != record.sha256:
        raise KernelSpecError(f"{deb.name}: SHA256 {digest} does not match the archive's {record.sha256}: not cached")
    return record


def apt_download(package: str, into: Path) -> Path:
    """`apt-get download` one package into a directory; the .deb's path."""
    if shutil.which("apt-get") is None:
        raise MissingCapability("apt-get is needed to fetch kernel packages")
    os.chmod(into, 0o755)  # apt's sandbox user (_apt) writes here
    before = set(into.glob("*.deb"))
    result = subprocess.run(["apt-get", "download", "-q", package], cwd=into, capture_output=True, text=True, timeout=900)
    debs = sorted(set(into.glob("*.deb")) - before)
    if result.returncode != 0 or len(debs) != 1:
        raise KernelSpecError(f"apt-get download {package} failed: {result.stderr.strip()[-500:] or 'no .deb written'}")
    return debs[0]
